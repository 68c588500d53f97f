import pytest

pytest.register_assert_rewrite("evalport.testing")

pytest_plugins = ["tests.support.reference_launcher"]


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Each test gets its own evalport state directory (the export ledger) and no real exec DB."""
    monkeypatch.setenv("EVALPORT_STATE_DIR", str(tmp_path_factory.mktemp("evalport-state")))
    monkeypatch.delenv("EVALPORT_EXEC_DB", raising=False)
