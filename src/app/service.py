"""The use case: one ExportPlan in, one ExportReport out, for any number of destinations.

Every entry point (the CLI's export, watch, doctor and report, auto-export, the Python API)
builds an :class:`~evalport.app.request.ExportRequest`, asks :meth:`ExportService.plan` for a plan
and hands it to :meth:`ExportService.run`. The service sees only ports: a source, a reader, the
sinks the plan built, a ledger and an observer; the container wires the adapters behind them.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evalport.app.batches import Tally, batch_sizes, by_invocation
from evalport.app.conform import source_reads_in_place, source_signatures
from evalport.app.items import emptied_count, prepare_item, result_notes
from evalport.app.ledgered import LedgeredExport
from evalport.app.observers import CallbackObserver, ExportObserver, NullObserver
from evalport.app.plan import ExportPlan, Planner
from evalport.app.reading import NOT_FINISHED, JobReading
from evalport.app.request import ExportRequest
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.collector import fewer_collections
from evalport.domain.errors import UsageError
from evalport.domain.fingerprint import ConfigDigests, item_fingerprint, job_signature, signed
from evalport.domain.model import Job, JobState, TaskResult
from evalport.domain.ports import (
    ExportItem,
    ExportLedger,
    ReadRequest,
    ResultReader,
    ResultSink,
    ResultSource,
)
from evalport.domain.redact import redact_text
from evalport.domain.report import ExportReport, Outcome, Status

log = logging.getLogger("evalport.service")


class ExportService(JobReading):
    """Resolves ids through a ResultSource, reads results once, and sends them to every sink."""

    def __init__(
        self,
        source: ResultSource,
        reader: ResultReader,
        planner: Planner,
        ledger: ExportLedger | None = None,
        fingerprint: Callable[[ExportItem], str] = item_fingerprint,
    ) -> None:
        self.source = source
        self.reader = reader
        self.planner = planner
        self.ledger = ledger
        #: Called once per item per export; its value is what the ledger stores and sinks compare.
        self.fingerprint = fingerprint
        self.ledgered = LedgeredExport(ledger, self._export_one)

    # -- planning --------------------------------------------------------------------------------
    def plan(self, request: ExportRequest, *, lenient: bool = False) -> ExportPlan:
        """The request's destinations validated and their sinks built; raises for usage errors."""
        return self.planner.plan(request, lenient=lenient)

    def build_sink(self, destination: str, raw_config: Mapping[str, Any] | None = None) -> ResultSink:
        return self.planner.sinks.build(destination, raw_config)

    def build_sinks(self, settings: Any) -> list[ResultSink]:
        return [self.build_sink(d, settings.configs.get(d)) for d in settings.destinations]

    def execute(self, request: ExportRequest, observer: ExportObserver | None = None) -> ExportReport:
        """Plans ``request`` and runs the plan."""
        return self.run(self.plan(request), observer)

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
        on_outcome: Any = None,
    ) -> ExportReport:
        """Exports ``ids`` to each destination; raises only for usage or configuration errors."""
        request = ExportRequest(
            ids=ids,
            destinations=destinations,
            config=configs,
            overrides=overrides,
            flags=flags or {},
            include_failed=include_failed,
            dry_run=dry_run,
            force=force,
        )
        return self.execute(request, CallbackObserver(on_outcome) if on_outcome else None)

    def export_to(
        self,
        ids: Sequence[str],
        sinks: Sequence[ResultSink],
        *,
        include_failed: bool = False,
        dry_run: bool = False,
        force: bool = False,
        states: Mapping[str, JobState] | None = None,
        on_outcome: Any = None,
    ) -> ExportReport:
        """Exports to already-built sinks (a plan without planning)."""
        plan = ExportPlan(
            ids=tuple(ids),
            sinks=tuple(sinks),
            include_failed=include_failed,
            dry_run=dry_run,
            force=force,
            states=dict(states or {}),
        )
        return self.run(plan, CallbackObserver(on_outcome) if on_outcome else None)

    def run(self, plan: ExportPlan, observer: ExportObserver | None = None) -> ExportReport:
        """Runs ``plan``: resolve -> state -> stage -> read once -> each sink (ledger first)."""
        sinks = list(plan.sinks)
        if not sinks:
            raise UsageError("no destination given; pass --dest (local, mlflow, wandb, gsheets, ...)")
        observer = observer or NullObserver()
        report = ExportReport()
        report.notes.extend(plan.notes)
        jobs, errors = self.resolve_or_raise(plan.ids)
        report.problems.extend(str(e) for e in errors)
        observer.started(len(jobs), len(sinks), [s.destination for s in sinks])

        def emit(outcomes: Sequence[Outcome]) -> None:
            report.add(outcomes)
            for o in outcomes:
                observer.outcome(o)

        try:
            with fewer_collections():
                self._run(plan, sinks, jobs, report, emit)
        finally:
            report.notes.extend(self.source.warnings)
            if self.ledger is not None:
                report.notes.extend(self.ledger.take_warnings())
            self.source.close()
            for sink in sinks:
                sink.close()
            observer.finished(report)
        return report

    def _run(
        self,
        plan: ExportPlan,
        sinks: list[ResultSink],
        jobs: list[Job],
        report: ExportReport,
        emit: Any,
    ) -> None:
        policy = ArtifactPolicy.covering(s.policy for s in sinks)
        signing = _Signing(self, policy)
        signed_before, prior = (
            (set(), {}) if plan.force else self.ledgered.signed_everywhere(sinks, [j.job_id for j in jobs])
        )
        in_place = source_reads_in_place(self.source, jobs)
        # Signed now: what the ledger may skip, every job staged by copy (before the copy) and every
        # job whose state the caller gave. The others are signed batch by batch, each just before
        # it is read, while the reader reads the batches before it.
        now = signed_before | {j.job_id for j in jobs if j.job_id not in in_place or j.job_id in plan.states}
        signing.sign([j for j in jobs if j.job_id in now])
        by_signature = signing.signatures
        held = self._held_by_signature(plan, sinks, jobs, by_signature, prior)
        for sink, entries in zip(sinks, held, strict=False):
            emit(self.ledgered.unchanged(sink, entries, plan))
        skipped = set(held[0]) if held else set()
        jobs = [j for j in jobs if j.job_id not in skipped]
        if not jobs:
            return
        by_id = {j.job_id: j for j in jobs}
        batched = [s for s in sinks if getattr(s.capabilities, "batches", False)]
        at_end = [s for s in sinks if s not in batched]
        later: list[tuple[TaskResult, Path]] = []
        later_signatures: dict[str, str] = {}
        tally = Tally()
        with tempfile.TemporaryDirectory(prefix="evalport-stage-") as workdir:
            left_out, requests = self._requests(jobs, policy, Path(workdir), plan.include_failed, plan.states)
            self._fail_unread(left_out, sinks, plan, emit)
            requests = by_invocation(requests)
            sizes = batch_sizes(requests) if batched else [len(requests)]
            batches = self._read_batches(requests, policy, sizes, signing.before_batch(requests, sizes))
            with contextlib.closing(batches):
                for read in batches:
                    ready = self._fail_unread(read, sinks, plan, emit, report.notes)
                    signatures = {
                        r.job_id: signed(by_signature.get(r.job_id, ""), r.state)
                        for r, _ in ready
                        if r.job_id in by_id
                    }
                    for sink in batched:
                        self._send(sink, ready, plan, signatures, emit, tally)
                    if at_end:
                        later.extend(ready)
                        later_signatures.update(signatures)
            for sink in at_end:
                self._send(sink, later, plan, later_signatures, emit, tally)
        report.notes.extend(tally.notes(sinks))

    def _fail_unread(
        self,
        read: list[tuple[Job, tuple[TaskResult, Path] | str]],
        sinks: list[ResultSink],
        plan: ExportPlan,
        emit: Any,
        notes: list[str] | None = None,
    ) -> list[tuple[TaskResult, Path]]:
        """The results read; each job left out gets its outcome for every sink (a failed read is
        recorded in the ledger), and the reader's notes of each result go to ``notes``."""
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
                if notes is not None:
                    notes.extend(result_notes(got[0]))
        if not plan.dry_run:
            self.ledgered.record_failed_reads(unreadable)
        return ready

    def _send(
        self,
        sink: ResultSink,
        ready: list[tuple[TaskResult, Path]],
        plan: ExportPlan,
        signatures: Mapping[str, str],
        emit: Any,
        tally: Tally,
    ) -> None:
        """One batch to one sink, through the ledger."""
        items = [prepare_item(result, directory, sink, self.fingerprint) for result, directory in ready]
        if not items:
            return
        tally.count(sink, emptied_count(sink, ready, items), len(items))
        emit(self.ledgered.export(sink, items, plan, tally.extra, signatures, tally.gone))

    def _held_by_signature(
        self,
        plan: ExportPlan,
        sinks: list[ResultSink],
        jobs: list[Job],
        signatures: Mapping[str, str],
        prior: Mapping[tuple[str, str], Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Per sink (in order), the ledger entries of the jobs every sink holds unchanged by signature: their
        files and record are as when they were last sent (so is its state, which the source's
        signature covers: the state stored with it decides, as ``--include-failed`` says), and
        each sink confirms it still holds them. Such a job is neither staged nor read. Any doubt
        leaves a job out (it is read as before). ``signatures``: job id -> :func:`job_signature`
        (a job without one is read)."""
        signatures = {j: s for j, s in signatures.items() if s}
        if plan.force or self.ledger is None or not signatures:
            return []

        def admits(job_id: str, state: JobState) -> bool:
            known = plan.states.get(job_id)
            if known is not None and known is not state:
                return False
            return state is JobState.SUCCEEDED or (plan.include_failed and state not in NOT_FINISHED)

        return self.ledgered.held_by_signature(sinks, signatures, admits, prior)

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


class _Signing:
    """The source signatures of one export's jobs, each taken before the job is read (a file
    changed meanwhile then reads as changed next time, never as unchanged)."""

    def __init__(self, service: ExportService, policy: ArtifactPolicy) -> None:
        self.service, self.policy = service, policy
        self.reader = f"{type(service.reader).__module__}.{type(service.reader).__qualname__}"
        self.reader += (
            f"+{getattr(service.fingerprint, '__module__', '')}."
            f"{getattr(service.fingerprint, '__qualname__', '')}"
        )
        #: Job id -> its signature ('' when the source cannot vouch for its files).
        self.signatures: dict[str, str] = {}
        self._digests: ConfigDigests = {}

    def sign(self, jobs: Sequence[Job]) -> list[Job]:
        """Signs the jobs not signed yet, their files as they are now; returns those."""
        todo = [j for j in jobs if j.job_id not in self.signatures]
        if not todo:
            return todo
        files = source_signatures(self.service.source, todo, self.policy)
        for job in todo:
            self.signatures[job.job_id] = job_signature(
                job, files.get(job.job_id, ""), self.reader, self._digests
            )
        return todo

    def before_batch(self, requests: Sequence[ReadRequest], sizes: Sequence[int]) -> Callable[[int], None]:
        """What the reader calls before it reads batch ``k`` of ``requests``: signs its jobs.

        Their states were read before (to choose what to read), and the signature covers what the
        state is read from: a job whose state reads differently now keeps no signature, so that a
        job that changed state in between is read again next time rather than skipped."""
        starts = [0]
        for count in sizes:
            starts.append(starts[-1] + count)

        def sign_batch(k: int) -> None:
            batch = requests[starts[k] : starts[k + 1]]
            try:
                self._sign_batch(batch)
            except Exception:  # a signature only spares a later read: never fail an export over one
                log.debug("signing batch %d failed", k, exc_info=True)
                self.signatures.update((job.job_id, "") for job, _d, _s in batch)

        return sign_batch

    def _sign_batch(self, batch: Sequence[ReadRequest]) -> None:
        signed_now = {j.job_id for j in self.sign([job for job, _directory, _state in batch])}
        if not signed_now:
            return
        now = self.service.source.job_states([job for job, _d, _s in batch if job.job_id in signed_now])
        for job, _directory, state in batch:
            if job.job_id in signed_now and now.get(job.job_id) is not state:
                self.signatures[job.job_id] = ""
