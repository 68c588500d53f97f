"""A sqlite store's lock covers an invocation: one search for its runs, none more per new run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock, Timeout

from evalport.adapters.sinks.mlflow import MlflowSink
from evalport.adapters.sinks.mlflow.locks import store_lock_path
from evalport.app.service import prepare_item
from evalport.domain.report import Status
from evalport.testing.factory import write_launcher_home
from evalport.testing.sink_contract import _load as load_results
from tests.support.mlflow_server import FAST_RETRIES


class RecordingClient:
    """A real MlflowClient, with each search and create noted (and whether the lock was held)."""

    def __init__(self, uri: str, lock: Path) -> None:
        from mlflow import MlflowClient

        self._client = MlflowClient(tracking_uri=uri)
        self._lock = lock
        self.calls: list[tuple[str, bool]] = []

    def _lock_is_held(self) -> bool:
        try:
            FileLock(str(self._lock), timeout=0, thread_local=False).acquire().lock.release()
        except Timeout:
            return True
        return False

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("search", self._lock_is_held()))
        return self._client.search_runs(*args, **kwargs)

    def create_run(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("create", self._lock_is_held()))
        return self._client.create_run(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def two_invocations(tmp_path):
    home = write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=3, seed=4)
    return load_results(home)


def recording_sink(tmp_path: Path) -> tuple[MlflowSink, RecordingClient]:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir(exist_ok=True)
    uri = f"sqlite:///{db}"
    sink = MlflowSink({"tracking_uri": uri, **FAST_RETRIES})
    client = RecordingClient(uri, store_lock_path(db))
    sink._client_cache = client
    return sink, client


def test_each_invocation_is_searched_once_under_the_lock_and_its_runs_created_without_another_look(
    tmp_path, two_invocations
):
    sink, client = recording_sink(tmp_path)
    items = [prepare_item(r, d, sink) for r, d in two_invocations]

    outcomes = sink.export(items)

    assert {o.status for o in outcomes} == {Status.EXPORTED}
    searches = [held for what, held in client.calls if what == "search"]
    creates = [held for what, held in client.calls if what == "create"]
    assert len(creates) == len(items)
    assert all(searches) and all(creates), "the store's lock is held for each search and create"
    # A new experiment: per invocation one search by run key and one for the launcher's job_id tags.
    assert len(searches) == 2 * 2, client.calls


def test_an_existing_experiments_new_runs_cost_no_search_beyond_the_invocations(tmp_path, two_invocations):
    sink, client = recording_sink(tmp_path)
    first, rest = two_invocations[:3], two_invocations[3:]
    sink.export([prepare_item(r, d, sink) for r, d in first])
    client.calls.clear()

    outcomes = sink.export([prepare_item(r, d, sink) for r, d in rest])

    assert {o.status for o in outcomes} == {Status.EXPORTED}
    assert [what for what, _ in client.calls].count("search") == 2, client.calls
    assert [what for what, _ in client.calls].count("create") == len(rest)


def test_a_tracking_servers_writer_is_not_locked_for_an_invocation(tmp_path):
    sink = MlflowSink({"tracking_uri": "http://127.0.0.1:9", **FAST_RETRIES})
    sink._client_cache = object()
    writer = sink._writer()
    with writer.locked_for_unit() as unit_writer:
        assert unit_writer is writer and not unit_writer.searched_under_lock
