"""`evalport.export_results` used the way launcher code uses it, against the real launcher's own call.

The launcher's ``export_results`` runs in its venv (``reference_launcher.python_call``) on the same
jobs; evalport's must return the same dict in the same situation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evalport
from evalport.app.api import LauncherResult
from evalport.testing.factory import LauncherHome, write_launcher_home

CALL = """
import json
from nemo_evaluator_launcher.api.functional import export_results
print(json.dumps(export_results({ids!r}, "local", {config!r})))
"""


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=21)


def theirs(reference_launcher, home: LauncherHome, ids: list[str], config: dict) -> dict:
    out = reference_launcher.python_call(home.root, CALL.format(ids=ids, config=config)).stdout
    return json.loads(out.strip().splitlines()[-1])


def ours(home: LauncherHome, ids: list[str], config: dict, monkeypatch) -> LauncherResult:
    monkeypatch.setenv("EVALPORT_EXEC_DB", str(home.exec_db))
    return evalport.export_results(ids, "local", config)


def test_launcher_code_reads_the_result_as_it_reads_the_launchers(home, tmp_path, monkeypatch):
    result = ours(home, list(home.invocation_ids), {"output_dir": str(tmp_path / "o")}, monkeypatch)
    if not result["success"]:
        raise AssertionError(result["metadata"])
    assert result["metadata"]["successful_jobs"] == len(home.jobs)
    assert result["metadata"]["failed_jobs"] == 0 and result["metadata"]["skipped_jobs"] == 0
    assert json.loads(json.dumps(result)) == result, "the result is a plain JSON-ready dict"


def test_the_same_situation_gives_the_same_dict_as_the_launchers(
    reference_launcher, home, tmp_path, monkeypatch
):
    ids = list(home.invocation_ids)
    their_config = {"output_dir": str(tmp_path / "theirs")}
    our_config = {"output_dir": str(tmp_path / "ours"), "compat": "launcher"}
    situations = [
        ("all good", ids),
        ("a re-export", ids),
        ("one unknown id", [*ids, "ffffffffffffffff"]),
        ("only unknown ids", ["ffffffffffffffff", "eeeeeeeeeeeeeeee"]),
    ]
    for what, call_ids in situations:
        want = theirs(reference_launcher, home, call_ids, their_config)
        got = ours(home, call_ids, our_config, monkeypatch)
        assert dict(got) == want, what


def test_a_configuration_error_is_the_launchers_error_dict(reference_launcher, home, tmp_path, monkeypatch):
    config = {"output_dir": str(tmp_path / "o"), "no_such_option": 1}
    want = theirs(reference_launcher, home, list(home.invocation_ids), config)
    got = ours(home, list(home.invocation_ids), config, monkeypatch)
    assert want["success"] is False and set(want["metadata"]) == {"error"}
    assert got["success"] is False and set(got["metadata"]) == {"error"}
    assert got["metadata"]["error"].startswith("Export failed: ") and want["metadata"]["error"].startswith(
        "Export failed: "
    )
    assert "no_such_option" in got["metadata"]["error"]
