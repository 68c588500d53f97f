"""Session-wide MLflow backends for the MLflow tests (load with ``pytest_plugins``).

One real ``mlflow server`` per test session (it takes several seconds to start) and one sqlite
tracking store; tests isolate themselves with an experiment of their own (``experiment_name``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_mlflow_server(mlflow_server: MlflowServer) -> MlflowServer:
    """The session server, started again if an earlier test stopped it."""
    return mlflow_server.start()


@pytest.fixture(scope="session")
def mlflow_sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow-sqlite') / 'mlflow.db'}"


@pytest.fixture
def experiment_name(request: pytest.FixtureRequest) -> str:
    """A fresh experiment per test, so tests sharing a server never see each other's runs."""
    return f"{request.node.name[:60]}-{uuid.uuid4().hex[:8]}"


def store_dir(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///")).parent


@pytest.fixture
def no_ambient_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MLFLOW_* variable of the user's leaks in (short retries: pass ``mlflow_server.FAST_RETRIES`` options)."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
