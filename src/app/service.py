"""The application service: ids in, one ExportReport out, for any number of destinations."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evalport.app.registry import Registry, sink_registry
from evalport.app.settings import ExportSettings, build_settings, validate_sink_config
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError, UsageError
from evalport.domain.filters import MetricFilter
from evalport.domain.model import Job, JobState, TaskResult
from evalport.domain.ports import ExportItem, ExportLedger, ResultReader, ResultSink, ResultSource, StagedJob
from evalport.domain.redact import redact_text
from evalport.domain.report import ExportReport, Outcome, Status

log = logging.getLogger("evalport.service")

OutcomeCallback = Callable[[Outcome], None]
_NOT_FINISHED = (JobState.RUNNING, JobState.PENDING)


def _skip_reason(state: JobState) -> str:
    if state in _NOT_FINISHED:
        return f"job is {state.value}; export it once it has finished"
    return f"job {state.value}; pass --include-failed to export what it produced"


class ExportService:
    """Resolves ids through a ResultSource, reads results once, and sends them to every sink."""

    def __init__(
        self,
        source: ResultSource,
        reader: ResultReader,
        sinks: Registry | None = None,
        ledger: ExportLedger | None = None,
    ) -> None:
        self.source = source
        self.reader = reader
        self.sinks = sinks or sink_registry()
        self.ledger = ledger

    # -- building sinks -------------------------------------------------------------------------
    def build_sink(self, destination: str, raw_config: Mapping[str, Any] | None = None) -> ResultSink:
        sink_cls = self.sinks.get(destination)
        config = validate_sink_config(sink_cls, destination, raw_config or {})
        return sink_cls(config)

    def build_sinks(self, settings: ExportSettings) -> list[ResultSink]:
        return [self.build_sink(d, settings.configs.get(d)) for d in settings.destinations]

    # -- reading ---------------------------------------------------------------------------------
    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        return self.source.resolve(ids)

    def read_results(
        self, ids: Sequence[str], *, include_failed: bool = True
    ) -> tuple[list[TaskResult], ExportReport]:
        """Results of the named jobs (for ``show`` and reports); problems land in the report."""
        report = ExportReport()
        results: list[TaskResult] = []
        jobs, errors = self.source.resolve(ids)
        report.problems.extend(str(e) for e in errors)
        with tempfile.TemporaryDirectory(prefix="evalport-stage-") as workdir:
            for job, got in self._read(jobs, ArtifactPolicy(False), Path(workdir), include_failed):
                if isinstance(got, str):
                    report.problems.append(f"job {job.job_id}: {got}")
                else:
                    results.append(got[0])
                    report.notes.extend(_result_notes(got[0]))
        return results, report

    def _read(
        self,
        jobs: Sequence[Job],
        policy: ArtifactPolicy,
        workdir: Path,
        include_failed: bool,
        known_states: Mapping[str, JobState] | None = None,
    ) -> list[tuple[Job, tuple[TaskResult, Path] | str]]:
        """Each job with (result, staged dir) or a reason it cannot be exported."""
        states = {**self.source.job_states(jobs), **(known_states or {})}
        out: list[tuple[Job, tuple[TaskResult, Path] | str]] = []
        wanted: list[Job] = []
        for job in jobs:
            state = states.get(job.job_id, JobState.UNKNOWN)
            if state is JobState.SUCCEEDED or (include_failed and state not in _NOT_FINISHED):
                wanted.append(job)
            else:
                out.append((job, "skip:" + _skip_reason(state)))
        staged = self.source.stage(wanted, policy, workdir) if wanted else {}
        requests = []
        for job in wanted:
            got = staged.get(job.job_id)
            if isinstance(got, StagedJob):
                requests.append((job, got.directory, states.get(job.job_id, JobState.UNKNOWN)))
            else:
                out.append((job, str(got or f"job {job.job_id}: the source staged nothing")))
        for (job, directory, _state), result in zip(requests, self._read_many(requests), strict=True):
            out.append((job, str(result) if isinstance(result, EvalportError) else (result, directory)))
        return out

    def _read_many(self, requests: list[tuple[Job, Path, JobState]]) -> list[TaskResult | EvalportError]:
        read_many = getattr(self.reader, "read_many", None)
        if read_many is not None:
            return read_many(requests)
        out: list[TaskResult | EvalportError] = []
        for job, directory, state in requests:
            try:
                out.append(self.reader.read(job, directory, state))
            except EvalportError as exc:
                out.append(exc)
        return out

    # -- exporting -------------------------------------------------------------------------------
    def export(
        self,
        ids: Sequence[str],
        destinations: Sequence[str] | str = (),
        configs: Mapping[str, Any] | str | None = None,
        *,
        overrides: Sequence[str] = (),
        flags: Mapping[str, Any] | None = None,
        include_failed: bool = False,
        dry_run: bool = False,
        force: bool = False,
        on_outcome: OutcomeCallback | None = None,
    ) -> ExportReport:
        """Exports ``ids`` to each destination; raises only for usage or configuration errors."""
        from evalport.app.settings import load_document

        if isinstance(destinations, str):
            destinations = [destinations]
        doc = load_document(configs) if not _is_per_dest(configs, destinations) else {"export": dict(configs)}
        settings = build_settings(doc, destinations, flags=flags, overrides=overrides)
        sinks = self.build_sinks(settings)
        return self.export_to(
            ids, sinks, include_failed=include_failed, dry_run=dry_run, force=force, on_outcome=on_outcome
        )

    def export_to(
        self,
        ids: Sequence[str],
        sinks: Sequence[ResultSink],
        *,
        include_failed: bool = False,
        dry_run: bool = False,
        force: bool = False,
        states: Mapping[str, JobState] | None = None,
        on_outcome: OutcomeCallback | None = None,
    ) -> ExportReport:
        """Exports to already-built sinks. ``states`` overrides the source's view of job states
        (auto-export knows its own job's exit code before the launcher writes it down)."""
        if not sinks:
            raise UsageError("no destination given; pass --dest (local, mlflow, wandb, gsheets, ...)")
        report = ExportReport()
        jobs, errors = self.source.resolve(ids)
        report.problems.extend(str(e) for e in errors)
        if errors and not jobs:
            raise UsageError("; ".join(str(e) for e in errors))

        def emit(outcomes: Sequence[Outcome]) -> None:
            report.add(outcomes)
            if on_outcome:
                for o in outcomes:
                    on_outcome(o)

        policy = ArtifactPolicy.covering(s.policy for s in sinks)
        with tempfile.TemporaryDirectory(prefix="evalport-stage-") as workdir:
            read = self._read(jobs, policy, Path(workdir), include_failed, states)
            ready: list[tuple[TaskResult, Path]] = []
            unreadable: list[tuple[ResultSink, Outcome]] = []
            for job, got in read:
                if isinstance(got, str):
                    status = Status.SKIPPED if got.startswith("skip:") else Status.FAILED
                    reason = got.removeprefix("skip:")
                    outcomes = [Outcome(job.job_id, s.destination, status, reason) for s in sinks]
                    emit(outcomes)
                    if status is Status.FAILED:
                        unreadable.extend(zip(sinks, outcomes, strict=True))
                else:
                    ready.append(got)
                    report.notes.extend(_result_notes(got[0]))
            if not dry_run:
                self._record_failed_reads(unreadable)
            for sink in sinks:
                items = [prepare_item(result, directory, sink) for result, directory in ready]
                if not items:
                    continue
                emptied = _emptied_by_filter(sink, ready, items)
                if emptied:
                    report.notes.append(emptied)
                if dry_run:
                    describe = getattr(sink, "describe", None)
                    where = describe() if describe else sink.destination
                    emit(
                        [
                            Outcome(
                                i.result.job_id,
                                sink.destination,
                                Status.PLANNED,
                                f"would export {len(i.result.flat_metrics())} metrics, "
                                f"{len(i.artifacts)} artifacts, {len(i.logs)} logs to {where}",
                            )
                            for i in items
                        ]
                    )
                    continue
                emit(self._export_with_ledger(sink, items, force, report.notes))
        report.notes.extend(getattr(self.source, "warnings", []))
        take_warnings = getattr(self.ledger, "take_warnings", None)
        if take_warnings is not None:
            report.notes.extend(take_warnings())
        self.source.close()
        for sink in sinks:
            close = getattr(sink, "close", None)
            if close:
                close()
        return report

    def _export_with_ledger(
        self, sink: ResultSink, items: list[ExportItem], force: bool, notes: list[str]
    ) -> list[Outcome]:
        """Skips what the ledger says this target already holds unchanged, unless ``force``.

        The ledger is a cache: a skip is trusted only for the jobs the sink confirms its
        destination still holds (``still_holds``); the others are sent again, and a note says so.
        """
        if self.ledger is None:
            return self._export_one(sink, items)
        from evalport.adapters.ledger import LedgerEntry

        target = target_key(sink)
        prints = {i.result.job_id: fingerprint(i) for i in items}
        prior = {} if force else self.ledger.lookup((j, target) for j in prints)
        candidates = {}
        for item in items:
            job_id = item.result.job_id
            entry = prior.get((job_id, target))
            if entry is not None and entry.fingerprint == prints[job_id] and Status(entry.status).delivered:
                candidates[job_id] = entry
        held = _confirmed(sink, {j: e.location for j, e in candidates.items()}) if candidates else set()
        gone = len(candidates) - len(held)
        if gone:
            notes.append(
                f"{sink.destination}: the ledger said {gone} job(s) were exported unchanged, but the "
                "destination no longer holds them; exported again"
            )
        outcomes: dict[str, Outcome] = {}
        fresh = []
        for item in items:
            job_id = item.result.job_id
            entry = candidates.get(job_id)
            if entry is not None and job_id in held:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.updated_at))
                reason = f"already exported on {when} (ledger); pass --force to send it again"
                outcomes[job_id] = Outcome(job_id, sink.destination, Status.UNCHANGED, reason, entry.location)
            else:
                fresh.append(item)
        sent = self._export_one(sink, fresh) if fresh else []
        outcomes.update((o.job_id, o) for o in sent)
        try:
            self.ledger.record(
                [
                    LedgerEntry(
                        o.job_id,
                        target,
                        sink.destination,
                        prints[o.job_id],
                        o.status.value,
                        o.reason,
                        o.location,
                    )
                    for o in sent
                    if o.job_id in prints
                ]
            )
        except Exception as exc:  # the ledger is a cache of what happened; never fail an export over it
            log.warning("could not record exports in the ledger: %s", exc)
        return [outcomes[i.result.job_id] for i in items]

    def _record_failed_reads(self, failed: Sequence[tuple[ResultSink, Outcome]]) -> None:
        """A job that could not be read is a failed delivery too: the ledger's retry backoff (and
        ``evalport history``) then know of it, so ``watch`` does not re-read it on every poll."""
        if self.ledger is None or not failed:
            return
        from evalport.adapters.ledger import LedgerEntry

        entries = [
            LedgerEntry(o.job_id, target_key(sink), o.destination, "", o.status.value, o.reason)
            for sink, o in failed
        ]
        try:
            self.ledger.record(entries)
        except Exception as exc:  # the ledger is a cache; never fail an export over it
            log.warning("could not record exports in the ledger: %s", exc)

    def _export_one(self, sink: ResultSink, items: list[ExportItem]) -> list[Outcome]:
        try:
            outcomes = list(sink.export(items))
        except Exception as exc:  # one failing destination never stops the others
            log.debug("sink %s raised", sink.destination, exc_info=True)
            reason = redact_text(f"{sink.destination} failed: {type(exc).__name__}: {exc}")
            return [Outcome(i.result.job_id, sink.destination, Status.FAILED, reason) for i in items]
        missing = {i.result.job_id for i in items} - {o.job_id for o in outcomes}
        outcomes += [
            Outcome(
                j, sink.destination, Status.FAILED, f"{sink.destination} reported no outcome for this job"
            )
            for j in sorted(missing)
        ]
        return [
            o
            if not o.reason
            else Outcome(o.job_id, o.destination, o.status, redact_text(o.reason), o.location)
            for o in outcomes
        ]


def _confirmed(sink: ResultSink, located: Mapping[str, str]) -> set[str]:
    """The jobs ``sink`` confirms its destination still holds; none when it cannot tell (it raised)."""
    still_holds = getattr(sink, "still_holds", None)
    if still_holds is None:  # a sink written before the port had it: trust the ledger, as before
        return set(located)
    try:
        return set(still_holds(located)) & set(located)
    except Exception:
        log.debug("sink %s could not confirm what it holds", sink.destination, exc_info=True)
        return set()


def _emptied_by_filter(
    sink: ResultSink, ready: Sequence[tuple[TaskResult, Path]], items: Sequence[ExportItem]
) -> str:
    """A note when the sink's metric filter left jobs that had metrics with none, else ''."""
    metric_filter = getattr(sink, "metric_filter", None)
    patterns = getattr(metric_filter, "patterns", ())
    if not patterns:
        return ""
    emptied = sum(
        1
        for (result, _), item in zip(ready, items, strict=True)
        if result.metrics and not item.result.metrics
    )
    if not emptied:
        return ""
    return (
        f"{sink.destination}: the metric filter log_metrics={','.join(patterns)} matches no metric of "
        f"{emptied} of {len(items)} job(s); they are exported without metrics (check the patterns "
        "against `evalport show <job>`)"
    )


def _result_notes(result: TaskResult) -> list[str]:
    """What the reader left out of a job on purpose (a symlinked logs/ folder, a FIFO), per job."""
    return [f"job {result.job_id}: {note}" for note in result.notes]


def fingerprint(item: ExportItem) -> str:
    """What was sent, as a short hash: the result's summary and the files (names, sizes, mtimes)."""
    import hashlib
    import json

    from evalport.adapters.staging import file_signatures

    body = json.dumps([item.result.summary(), file_signatures(item)], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def target_key(sink: ResultSink) -> str:
    """A destination with its settings: ``mlflow@<hash of the redacted config>``."""
    import hashlib
    import json

    from evalport.domain.redact import redact

    config = getattr(sink, "config", None)
    dump = config.model_dump(mode="json") if hasattr(config, "model_dump") else repr(config)
    digest = hashlib.sha256(json.dumps(redact(dump), sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{sink.destination}@{digest}"


def _is_per_dest(configs: Any, destinations: Sequence[str]) -> bool:
    """``export(ids, ["local", "mlflow"], {"local": {...}, "mlflow": {...}})``: configs by destination."""
    return (
        isinstance(configs, Mapping)
        and bool(configs)
        and all(k in destinations and isinstance(v, Mapping) for k, v in configs.items())
    )


def prepare_item(result: TaskResult, directory: Path | None, sink: ResultSink) -> ExportItem:
    """The item a sink receives: the sink's metric filter applied, its artifact policy's files chosen."""
    metric_filter: MetricFilter = getattr(sink, "metric_filter", None) or MetricFilter()
    policy = sink.policy
    return ExportItem(
        result=metric_filter.apply_to(result),
        directory=directory,
        artifacts=tuple(policy.select_artifacts(result.artifacts)),
        logs=tuple(policy.select_logs(result.logs)),
    )
