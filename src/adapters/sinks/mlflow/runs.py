"""The MLflow calls an export makes, each through the export's :class:`Destination` (retries).

:class:`RunWriter` finds runs by their run-key tag (and the launcher's by its ``job_id`` tag),
creates a run under the run key's lock, and
writes a :class:`~evalport.adapters.sinks.mlflow.plan.RunDelta`: one directory upload, as few
``log_batch`` calls as MLflow's limits allow, one ``set_terminated``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from evalport.adapters.sinks.mlflow.client import TrackingStore
from evalport.adapters.sinks.mlflow.contents import RUN_KEY_TAG
from evalport.adapters.sinks.mlflow.errors import ExperimentDeleted
from evalport.adapters.sinks.mlflow.layout import Upload
from evalport.adapters.sinks.mlflow.locks import held, run_lock_path, store_lock_path
from evalport.adapters.sinks.mlflow.names import (
    mlflow_metric_key,
    stored_run_key,
    tag_equals_filter,
    tag_prefix_filter,
)
from evalport.adapters.sinks.mlflow.plan import LAUNCHER_JOB_TAG, RunDelta, RunState, WantedRun
from evalport.adapters.sinks.remote import CallFailed, Destination

# MLflow's per-call limits for log_batch.
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
#: Runs asked about per search (``attributes.run_id IN (...)``).
RUNS_PER_SEARCH = 100


@dataclass
class RunWriter:
    client: Any
    dest: Destination
    store: TrackingStore
    experiment: str
    #: The caller holds the run lock since its search (a sqlite store, locked for an invocation):
    #: a run that search did not find is created without looking again.
    searched_under_lock: bool = False

    # ---- the experiment -----------------------------------------------------------------------
    def lookup_experiment(self) -> Any:
        name = self.experiment
        return self.dest.call(
            f"look up experiment {name!r}", lambda: self.client.get_experiment_by_name(name)
        )

    def experiment_id(self) -> tuple[str, bool]:
        """(id, created now): looked up once per export call, created when missing."""
        name = self.experiment
        experiment = self.lookup_experiment()
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise self.dest.failure(f"use experiment {name!r}", ExperimentDeleted())
            return experiment.experiment_id, False
        location = None
        db = self.store.sqlite_path
        if db is not None:
            # Without this MLflow puts artifacts in ./mlruns of whatever directory the export ran in.
            slug = mlflow_metric_key(name).replace("/", "_").replace(" ", "_")
            location = (db.resolve().parent / "mlartifacts" / slug).as_uri()

        def create() -> tuple[str, bool]:
            from mlflow.exceptions import MlflowException

            try:
                return self.client.create_experiment(name, artifact_location=location), True
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return self.client.get_experiment_by_name(name).experiment_id, False  # created concurrently

        return self.dest.call(f"create experiment {name!r}", create)

    # ---- finding and creating runs --------------------------------------------------------------
    def find_runs(self, experiment_id: str, keys: list[str]) -> list[Any]:
        """The active runs carrying any of ``keys`` as their run key, oldest first (one search).

        Runs carry ``stored_run_key(key)``: the key itself, or its hash when it is too long for a tag.
        """
        return self._find_by_tag(experiment_id, RUN_KEY_TAG, [stored_run_key(k) for k in keys])

    def find_launcher_runs(self, experiment_id: str, job_ids: list[str]) -> list[Any]:
        """The active runs whose ``job_id`` tag (the launcher's) is one of ``job_ids`` (one search)."""
        return self._find_by_tag(experiment_id, LAUNCHER_JOB_TAG, job_ids) if job_ids else []

    def existing_runs(self, experiment_id: str, job_of: dict[str, str | None]) -> list[Any]:
        """The runs an invocation's jobs may go into: those with their run keys (``job_of``'s keys),
        and (per_task) the launcher's runs of the jobs no run key names, by their ``job_id`` tag."""
        runs = self.find_runs(experiment_id, list(job_of))
        held = {run.data.tags.get(RUN_KEY_TAG) for run in runs}
        unnamed = [job for key, job in job_of.items() if job is not None and stored_run_key(key) not in held]
        return runs + self.find_launcher_runs(experiment_id, unnamed)

    def _find_by_tag(self, experiment_id: str, tag: str, values: list[str]) -> list[Any]:
        """The active runs whose ``tag`` is one of ``values``, oldest first: one search by the exact
        value or by the values' common prefix (then compared exactly), else one search per value."""
        wanted = set(values)
        if len(wanted) == 1:
            flt: str | None = tag_equals_filter(tag, values[0])[0]
        else:
            prefix = os.path.commonprefix(sorted(wanted))  # noqa: RUF071 - a string prefix for LIKE is meant
            flt = tag_prefix_filter(tag, prefix) if prefix else None
            if flt is None:
                found = [r for one in sorted(wanted) for r in self._find_by_tag(experiment_id, tag, [one])]
                return sorted(found, key=lambda r: (r.info.start_time or 0, r.info.run_id))
        out: list[Any] = []
        token = None
        while True:
            page = self.dest.call(
                "search runs",
                partial(
                    self.client.search_runs,
                    [experiment_id],
                    flt,
                    max_results=1000,
                    order_by=["attributes.start_time ASC"],
                    page_token=token,
                ),
            )
            # LIKE (and a superset filter) may match more than asked: compare exactly
            out.extend(run for run in page if run.data.tags.get(tag) in wanted)
            token = page.token
            if not token:
                return out

    def find_or_create(self, experiment_id: str, key: str, wanted: WantedRun) -> tuple[RunState, bool]:
        """(the run for ``key``, created now): looked up again and created under the run key's lock.

        The export's first search found no run, but another process may have created one since;
        the lock makes "search, then create" one step for every evalport process on this machine.
        A writer that has held the lock since its own search (:meth:`locked_for_unit`) just creates.
        """
        if self.searched_under_lock:
            return self._create_run(experiment_id, wanted.creation_tags(MAX_TAGS)), True
        with held(run_lock_path(self.store.uri, self.experiment, key, self.store.sqlite_path)):
            runs = self.find_runs(experiment_id, [key])
            if runs:
                return RunState.of(runs[0]), False
            return self._create_run(experiment_id, wanted.creation_tags(MAX_TAGS)), True

    def _create_run(self, experiment_id: str, tags: dict[str, str]) -> RunState:
        """A new run carrying the run key and the first job's tags (one log_batch transaction fewer)."""
        name = tags.pop("mlflow.runName")
        run = self.dest.call(
            "create a run",
            lambda: self.client.create_run(
                experiment_id, start_time=int(time.time() * 1000), tags=tags, run_name=name
            ),
        )
        return RunState(run.info.run_id, run.info.artifact_uri, False, {}, {}, dict(run.data.tags))

    @contextlib.contextmanager
    def locked_for_unit(self) -> Iterator[RunWriter]:
        """A sqlite store: its lock held for an invocation's search and writes, and a writer that
        knows it (one search per invocation instead of one more per new run). Others: this writer.

        sqlite takes one writer at a time anyway, so holding its lock longer costs no concurrency;
        a tracking server keeps its per-run-key locks, held only around a find-or-create.
        """
        db = self.store.sqlite_path
        if db is None:
            yield self
            return
        with held(store_lock_path(db)) as locked:
            yield replace(self, searched_under_lock=True) if locked else self

    # ---- writing a delta ----------------------------------------------------------------------
    def write(self, state: RunState, delta: RunDelta, files: Sequence[Upload]) -> RunDelta:
        """Uploads, logs and finishes as ``delta`` says; returns the delta as written."""
        if delta.upload:
            assert files
            self._upload(state, files)
        if delta.logs:
            sent = self._log_batch_once_more(state.run_id, delta)
            delta = replace(delta, params={k: delta.params[k] for k in sent})
        if delta.finish:
            run_id = state.run_id
            self.dest.call("finish the run", lambda: self.client.set_terminated(run_id, "FINISHED"))
        return delta

    def _upload(self, state: RunState, files: Sequence[Upload]) -> None:
        """One upload per staged folder (one per job in evalport's layout), or file."""
        if self.store.uri.startswith("databricks"):
            client, run_id = self.client, state.run_id

            def put(path: str, where: str | None) -> None:
                client.log_artifacts(run_id, path, where)

            def put_file(path: str, where: str | None) -> None:
                client.log_artifact(run_id, path, where)
        else:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            repo = get_artifact_repository(state.artifact_uri, tracking_uri=self.store.uri)
            put, put_file = repo.log_artifacts, repo.log_artifact
        for path, where in files:
            send = put if path.is_dir() else put_file
            self.dest.call("upload artifacts", partial(send, str(path), where))

    def _log_batch_once_more(self, run_id: str, delta: RunDelta) -> list[str]:
        """log_batch; when MLflow refuses it, once more without the params the run holds by now.

        Another process exporting the same job at the same moment writes the same params into the
        same run (the lock covers only find-or-create), and MLflow refuses a param logged twice.
        Returns the keys of the params sent.
        """
        params = list(delta.params)
        try:
            self._log_batch(run_id, delta, params)
            return params
        except CallFailed as failure:
            if failure.transient or not params:
                raise
            held_now = self.dest.call("read the run", lambda: self.client.get_run(run_id)).data.params
            rest = [k for k in params if k not in held_now]
            self._log_batch(run_id, delta, rest)
            return rest

    def _log_batch(self, run_id: str, delta: RunDelta, param_keys: Iterable[str]) -> None:
        """As few log_batch calls as MLflow's limits allow (1000 metrics, 100 params, 100 tags each)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in delta.metrics.items()]
        params = [Param(k, delta.params[k]) for k in param_keys]
        tags = [RunTag(k, v) for k, v in delta.tags.items()]
        while metrics or params or tags:
            p, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
            t, tags = tags[:MAX_TAGS], tags[MAX_TAGS:]
            room = min(MAX_METRICS, MAX_ENTITIES - len(p) - len(t))
            m, metrics = metrics[:room], metrics[room:]
            self.dest.call(
                "log metrics, params and tags",
                partial(self.client.log_batch, run_id, metrics=m, params=p, tags=t, synchronous=True),
            )

    # ---- is it still there? -------------------------------------------------------------------
    def finished_runs(self, experiment_id: str, run_ids: Iterable[str]) -> set[str]:
        """Which of ``run_ids`` are active, finished runs of the experiment (one search per 100)."""
        ids = sorted(set(run_ids))
        alive: set[str] = set()
        for start in range(0, len(ids), RUNS_PER_SEARCH):
            chunk = ids[start : start + RUNS_PER_SEARCH]
            flt = "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in chunk) + ")"
            runs = self.dest.call(
                "search runs",
                partial(self.client.search_runs, [experiment_id], flt, max_results=1000),
            )
            alive.update(r.info.run_id for r in runs if r.info.status == "FINISHED")
        return alive
