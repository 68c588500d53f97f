"""The MLflow sink: one run per task (or per invocation), found again by a run-key tag and upserted.

Talks to MLflow through ``MlflowClient`` only (the fluent API keeps global state). Per job it
makes one lookup, at most one ``create_run``, batched ``log_batch`` calls, one directory upload
and one ``set_terminated``; nothing is written when nothing differs (:mod:`.plan` decides what).
mlflow is imported lazily.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.base import BaseSink
from evalport.adapters.sinks.mlflow.client import TrackingStore, mlflow_http_settings
from evalport.adapters.sinks.mlflow.config import MlflowSinkConfig
from evalport.adapters.sinks.mlflow.contents import (
    RUN_KEY_TAG,
    is_multi_task,
    job_metrics,
    job_tag,
    names_file,
    wanted_run,
)
from evalport.adapters.sinks.mlflow.errors import MLFLOW_RULES, explain
from evalport.adapters.sinks.mlflow.layout import launcher_config_file, uploads
from evalport.adapters.sinks.mlflow.names import stored_run_key
from evalport.adapters.sinks.mlflow.plan import (
    LAUNCHER_JOB_TAG,
    FoundRun,
    RunState,
    choose_run,
    holds_job,
    outcome_status,
    plan_run_delta,
)
from evalport.adapters.sinks.mlflow.run_samples import JobSamples
from evalport.adapters.sinks.mlflow.runs import RunWriter
from evalport.adapters.sinks.mlflow.samples import Spool
from evalport.adapters.sinks.remote import (
    CallFailed,
    Destination,
    Staged,
    one_line,
    stage_for_upload,
)
from evalport.domain.errors import ResultError
from evalport.domain.identity import RunIdentity
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities
from evalport.domain.report import Outcome, Status

__all__ = ["MlflowSink"]

# The run id in a location this sink returned (``runs:/<id>`` or ``.../runs/<id>``).
_LOCATED_RUN = re.compile(r"(?:^runs:/|/runs/)([0-9A-Za-z_-]{1,64})$")
#: Longest wait between two tries of one call, and the most time spent on one call.
MAX_WAIT, CALL_TIMEOUT = 4.0, 30.0

Units = list[dict[str, list[int]]]  # per invocation: run key -> indices of its items


class MlflowSink(BaseSink):
    """MLflow tracking (server or sqlite): runs per task or invocation, upserted by a run-key tag."""

    name: ClassVar[str] = "mlflow"
    extra: ClassVar[str | None] = "mlflow"
    requires: ClassVar[tuple[str, ...]] = ("mlflow",)
    Config = MlflowSinkConfig
    # MLflow keeps NaN but stores +-inf as +-1.797e308 (its SQL stores clamp them): not faithful.
    capabilities = SinkCapabilities(
        artifacts=True, logs=True, multi_task=True, non_finite_values=False, samples=True
    )
    config: MlflowSinkConfig

    #: Seconds MLflow's HTTP client waits for a response (unless MLFLOW_HTTP_REQUEST_TIMEOUT is set).
    http_timeout: ClassVar[int] = 15
    #: Jobs exported concurrently against an HTTP tracking server (sqlite stores go one at a time).
    workers: ClassVar[int] = 4

    def __init__(
        self, config: MlflowSinkConfig | dict[str, Any] | None = None, *, workers: int | None = None
    ):
        super().__init__(config)
        self._workers = workers or type(self).workers
        self._store = TrackingStore.resolve(self.config.tracking_uri)
        self._client_cache: Any = None

    @property
    def tracking_uri(self) -> str:
        return self._store.uri

    def describe(self) -> str:
        """Where results went and how to look at them (printed by the CLI after an export)."""
        return self._store.describe(self.config.experiment_name)

    def _client(self) -> Any:
        if self._client_cache is None:
            self._client_cache = self._store.open_client()
        return self._client_cache

    def _writer(self, policy: RetryPolicy | None = None) -> RunWriter:
        """A writer for one export (or one question): its own view of whether MLflow is down."""
        where = self._store.shown
        dest = Destination(
            policy or self.config.retry_policy(MAX_WAIT, CALL_TIMEOUT),
            MLFLOW_RULES,
            explain=lambda failure: explain(where, failure),
        )
        return RunWriter(self._client(), dest, self._store, self.config.experiment_name)

    def _outcome(self, item: ExportItem, status: Status, reason: str = "", location: str = "") -> Outcome:
        return Outcome(item.result.job_id, self.destination, status, reason, location)

    # ---- export ---------------------------------------------------------------------------------
    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        if not items:
            return []
        # invocation -> run key -> item indices: one run lookup per invocation, one run per key.
        by_invocation: dict[str, dict[str, list[int]]] = {}
        for index, item in enumerate(items):
            key = RunIdentity.for_result(item.result, self.config.log_mode).key
            by_invocation.setdefault(item.result.invocation_id, {}).setdefault(key, []).append(index)
        outcomes: list[Outcome | None] = [None] * len(items)
        with (
            mlflow_http_settings(self.http_timeout),
            tempfile.TemporaryDirectory(prefix="evalport-mlflow-") as tmp,
        ):
            try:
                writer = self._writer()
                experiment_id, fresh = writer.experiment_id()
            except CallFailed as failure:
                return [self._outcome(i, Status.FAILED, failure.reason) for i in items]
            except Exception as exc:  # a malformed URI, a missing driver...
                reason = f"cannot use MLflow tracking URI {self._store.shown}: {one_line(exc)}"
                return [self._outcome(i, Status.FAILED, reason) for i in items]

            def export_unit(groups: dict[str, list[int]]) -> None:
                with writer.locked_for_unit() as unit_writer:
                    done = self._export_unit(unit_writer, experiment_id, fresh, groups, items, Path(tmp))
                for index, outcome in done.items():
                    outcomes[index] = outcome

            self._run_units(export_unit, list(by_invocation.values()))
        return [
            o if o is not None else self._outcome(items[i], Status.FAILED, "mlflow: no outcome recorded")
            for i, o in enumerate(outcomes)
        ]

    def _run_units(self, export_unit: Callable[[dict[str, list[int]]], None], units: Units) -> None:
        """Invocations concurrently against a server (a sqlite store takes one writer at a time)."""
        workers = min(self._workers, len(units)) if self._store.is_http else 1
        if workers <= 1:
            for groups in units:
                export_unit(groups)
            return
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evalport-mlflow")
        try:
            for future in [pool.submit(export_unit, groups) for groups in units]:
                future.result()
        except BaseException:  # a stop signal: drop the queued jobs, finish only those in hand
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _export_unit(
        self,
        writer: RunWriter,
        experiment_id: str,
        fresh: bool,
        groups: dict[str, list[int]],
        items: Sequence[ExportItem],
        tmp: Path,
    ) -> dict[int, Outcome]:
        """One invocation's items: one search for their runs by run key (none in a new experiment
        unless the writer holds the sqlite store's lock), one more for the launcher's runs of jobs
        no run key names; then each run."""
        indices = [i for group in groups.values() for i in group]
        if writer.dest.down:
            return {i: self._outcome(items[i], Status.FAILED, writer.dest.not_tried) for i in indices}
        multi = is_multi_task(self.config)
        job_of = {key: None if multi else items[group[0]].result.job_id for key, group in groups.items()}
        # In an experiment made by this export another process may have made runs since: a writer
        # that will not look again under its lock must look now.
        skip_search = fresh and not writer.searched_under_lock
        try:
            runs = [] if skip_search else writer.existing_runs(experiment_id, job_of)
        except CallFailed as failure:
            return {i: self._outcome(items[i], Status.FAILED, failure.reason) for i in indices}
        by_id = {run.info.run_id: run for run in runs}
        by_tag: dict[tuple[str, str], list[FoundRun]] = {}
        for found in map(FoundRun.of, by_id.values()):
            for tag in (RUN_KEY_TAG, LAUNCHER_JOB_TAG):
                if tag in found.tags:
                    by_tag.setdefault((tag, found.tags[tag]), []).append(found)
        out: dict[int, Outcome] = {}
        for key, group in groups.items():
            stored, job_id = stored_run_key(key), job_of[key]
            candidates = by_tag.get((RUN_KEY_TAG, stored), []) + (
                by_tag.get((LAUNCHER_JOB_TAG, job_id), []) if job_id is not None else []
            )
            choice = choose_run(candidates, key_tag=RUN_KEY_TAG, stored_key=stored, job_id=job_id)
            run = by_id[choice.run_id] if choice is not None else None
            note = choice.reason if choice is not None else ""
            done = self._export_run(writer, experiment_id, key, run, [items[i] for i in group], tmp, note)
            out.update(zip(group, done, strict=True))
        return out

    def _export_run(
        self,
        writer: RunWriter,
        experiment_id: str,
        key: str,
        run: Any,
        items: list[ExportItem],
        tmp: Path,
        note: str = "",
    ) -> list[Outcome]:
        """The items sharing one run (one item per_task; an invocation's tasks in multi_task).
        ``note``: what the outcomes say about the run chosen (adopted, one of several)."""
        state = None if run is None else RunState.of(run)
        out: list[Outcome] = []
        for item in items:
            if writer.dest.down:  # known down: fail at once, nothing staged or sent
                out.append(self._outcome(item, Status.FAILED, writer.dest.not_tried))
                continue
            try:
                state, outcome = self._export_item(writer, experiment_id, key, state, item, tmp)
                if note:
                    outcome = replace(outcome, reason="; ".join(r for r in (note, outcome.reason) if r))
                out.append(outcome)
            except CallFailed as failure:
                out.append(self._outcome(item, Status.FAILED, failure.reason))
            except ResultError as error:  # its samples cannot be read: named, with the file and line
                out.append(
                    self._outcome(item, Status.FAILED, f"{error}; fix the file or export with samples: none")
                )
            except OSError as exc:
                where = getattr(exc, "filename", None) or item.directory
                out.append(self._outcome(item, Status.FAILED, f"cannot stage {where}: {exc.strerror or exc}"))
        return out

    def _export_item(
        self,
        writer: RunWriter,
        experiment_id: str,
        key: str,
        state: RunState | None,
        item: ExportItem,
        tmp: Path,
    ) -> tuple[RunState | None, Outcome]:
        """Writes what differs between the job and its run (creating the run when there is none)."""
        result = item.result
        multi = is_multi_task(self.config)
        tag = job_tag(result)
        known = holds_job(state, tag, multi)
        if self.config.skip_existing and known:
            assert state is not None
            return state, self._skipped(item, state)
        work = Path(tempfile.mkdtemp(prefix="samples-", dir=tmp))
        try:
            # Read first: a broken samples file fails this job before anything of it is written.
            samples = JobSamples(item, self.sample_options, self.metric_filter, multi, work)
            rows = samples.spool()
            return self._write_item(writer, experiment_id, key, state, item, tmp, samples, rows)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write_item(
        self,
        writer: RunWriter,
        experiment_id: str,
        key: str,
        state: RunState | None,
        item: ExportItem,
        tmp: Path,
        samples: JobSamples,
        rows: Spool | None,
    ) -> tuple[RunState | None, Outcome]:
        result = item.result
        multi = is_multi_task(self.config)
        tag = job_tag(result)
        known = holds_job(state, tag, multi)
        launcher = self.config.compat == "launcher"
        metrics, renamed = job_metrics(result, self.config.compat)
        extra = names_file(renamed)
        if launcher:
            extra.update(launcher_config_file(result, item.directory))
        staged, digest = self._files_digest(item, tmp, extra)
        wanted = wanted_run(self.config, result, key, metrics, digest)
        if state is None:
            state, created = writer.find_or_create(experiment_id, key, wanted)
            if not created:  # another process made it meanwhile: update it like any found run
                known = holds_job(state, tag, multi)
                if self.config.skip_existing and known:
                    return state, self._skipped(item, state)
        delta = plan_run_delta(state, wanted)
        if delta.upload and staged is None:  # told by the export's fingerprint: staged only when sent
            staged = stage_for_upload(item, tmp, extra, digest=False)
        files = uploads(staged.directory, result, launcher=launcher, multi_task=multi) if staged else []
        delta, files = samples.added(writer, experiment_id, state, delta, files, rows)
        delta = writer.write(state, delta, files)
        state = state.applied(delta)
        sampled = rows.notes if rows else ()
        note = "; ".join(n for n in (delta.note(), staged.note if staged else "", *sampled) if n)
        return state, self._outcome(
            item, outcome_status(known, delta), note, self._store.location(state.run_id)
        )

    @staticmethod
    def _files_digest(
        item: ExportItem, tmp: Path, extra: dict[str, bytes]
    ) -> tuple[Staged | None, str | None]:
        """(the files staged now, or None; what the run's digest tag is to hold, None: no files).

        The export's fingerprint (the ledger's) stands for the files when the item has one: nothing
        is read to hash them, and they are staged only if they are to be sent. An item built
        without one is staged now and its content digest compared.
        """
        fingerprint = item.fingerprint
        if fingerprint:
            return None, fingerprint if item.artifact_paths() or extra else None
        staged = stage_for_upload(item, tmp, extra)
        return staged, staged.digest if staged else None

    def _skipped(self, item: ExportItem, state: RunState) -> Outcome:
        reason = f"already in MLflow run {state.run_id}; skip_existing is set"
        return self._outcome(item, Status.SKIPPED, reason, self._store.location(state.run_id))

    # ---- is it still there? ---------------------------------------------------------------------
    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """The jobs whose recorded run still exists, is active and finished (one search per 100 runs).

        A sqlite store that is gone, an experiment deleted or missing: nothing is held. Nothing is
        created on the way (no store, no experiment). Raises when the server cannot be asked.
        """
        run_of = {job: m[1] for job, where in located.items() if (m := _LOCATED_RUN.search(where or ""))}
        db = self._store.sqlite_path
        if not run_of or (db is not None and not db.is_file()):
            return set()
        with mlflow_http_settings(self.http_timeout):
            writer = self._writer()
            experiment = writer.lookup_experiment()
            if experiment is None or experiment.lifecycle_stage == "deleted":
                return set()
            alive = writer.finished_runs(experiment.experiment_id, run_of.values())
        return {job for job, run_id in run_of.items() if run_id in alive}

    # ---- doctor -------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Can the tracking store be reached, and does the experiment exist? Answers within seconds."""
        uri = self._store.shown
        name = self.config.experiment_name
        db = self._store.sqlite_path
        if db is not None and not db.exists():
            parent = db.resolve().parent
            if parent.is_dir() and os.access(parent, os.W_OK):
                return CheckResult(
                    True,
                    f"mlflow: {uri} does not exist yet; the first export creates it (experiment {name!r})",
                )
            return CheckResult(False, f"mlflow: cannot create {db}: {parent} is not a writable directory")
        try:
            with mlflow_http_settings(timeout=3):
                experiment = self._writer(RetryPolicy(attempts=1)).lookup_experiment()
        except CallFailed as failure:
            return CheckResult(False, f"mlflow: {failure.reason}")
        except Exception as exc:
            return CheckResult(False, f"mlflow: cannot use tracking URI {uri}: {one_line(exc)}")
        if experiment is None:
            return CheckResult(
                True,
                f"mlflow: reached {uri}; experiment {name!r} does not exist yet and "
                "will be created on the first export",
            )
        if experiment.lifecycle_stage == "deleted":
            return CheckResult(
                False,
                f"mlflow: experiment {name!r} at {uri} is deleted; restore it or "
                "choose another experiment_name",
            )
        exp_id = experiment.experiment_id
        return CheckResult(
            True,
            f"mlflow: reached {uri}; experiment {name!r} exists (id {exp_id})",
            {"experiment_id": exp_id},
        )
