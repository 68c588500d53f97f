"""Watch mode: poll the sources for jobs that newly succeeded and export each once per destination.

The ledger is the memory: a job already delivered to a target is never sent again, so a restarted
watcher picks up where it stopped; a failed delivery is retried on later cycles with exponential
backoff. A stop request (SIGINT/SIGTERM) lets the job in hand finish, then the loop ends.

A watcher runs for days, so nothing one job or one poll does may end it: a job whose export raises
is a warning naming it and waits out the same backoff as a failed delivery (kept in memory, as the
ledger may not have heard of it), and a poll that raises is a warning, then the next poll runs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalport.app.ledgered import confirmed_holdings
from evalport.app.plan import ExportPlan
from evalport.app.service import ExportService
from evalport.domain.errors import UsageError
from evalport.domain.model import Job, JobState
from evalport.domain.ports import ResultSink
from evalport.domain.redact import redact_text
from evalport.domain.report import Outcome, Status

log = logging.getLogger("evalport.watch")


def check_interval(interval: float) -> None:
    """A poll interval must be a positive number of seconds (0 or less would poll in a tight loop)."""
    if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
        raise UsageError(f"--interval {interval!r}: give a positive number of seconds between polls, e.g. 30")


def _one_line(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {' '.join(str(exc).split()) or '(no message)'}")


@dataclass
class Watcher:
    """``make_service`` gives a service whose source is read afresh (called once per cycle)."""

    make_service: Callable[[], ExportService]
    sinks: Sequence[ResultSink]
    interval: float = 30.0
    include_failed: bool = False
    max_backoff: float = 600.0
    on_outcome: Callable[[Outcome], None] | None = None
    on_warning: Callable[[str], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    # job id -> (attempts, time of the last attempt) for exports that raised instead of reporting
    _crashes: dict[str, tuple[int, float]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_interval(self.interval)

    def due(self, attempts: int, updated_at: float, now: float) -> bool:
        wait = min(self.interval * 2 ** max(attempts - 1, 0), self.max_backoff)
        return now >= updated_at + wait

    def warn(self, message: str) -> None:
        if self.on_warning:
            self.on_warning(message)
        else:
            log.warning("%s", message)

    def cycle(self) -> list[Outcome]:
        """One poll: every finished job not yet delivered (or due for a retry) to some target."""
        service = self.make_service()
        if service.ledger is None:
            raise RuntimeError("watch needs the export ledger")
        jobs = service.source.list_jobs()
        states = service.source.job_states(jobs)
        wanted = {JobState.SUCCEEDED} | (
            {JobState.FAILED, JobState.CANCELLED} if self.include_failed else set()
        )
        finished = [j for j in jobs if states.get(j.job_id) in wanted]
        targets = {s.target_key(): s for s in self.sinks}
        known = dict(service.ledger.lookup((j.job_id, t) for j in finished for t in targets))
        self._forget_what_destinations_lost(known, targets)
        now = time.time()
        outcomes: list[Outcome] = []
        for job in sorted(finished, key=lambda j: (j.timestamp or 0, j.job_id)):
            if self.stop.is_set():
                break
            crashed = self._crashes.get(job.job_id)
            if crashed is not None and not self.due(*crashed, now):
                continue
            pending = []
            for target, sink in targets.items():
                entry = known.get((job.job_id, target))
                if entry is None or (
                    not Status(entry.status).delivered and self.due(entry.attempts, entry.updated_at, now)
                ):
                    pending.append(sink)
            if pending:
                outcomes.extend(self._export(service, job, pending))
        return outcomes

    def _forget_what_destinations_lost(
        self, known: dict[tuple[str, str], Any], targets: dict[str, ResultSink]
    ) -> None:
        """Drops ledger entries whose destination no longer holds the job, so the job is sent again.

        The ledger is a cache: a deleted output folder, store or run must not stay "delivered".
        One cheap confirmation per target and cycle, by the same rule as an export's ledger skip.
        """
        for target, sink in targets.items():
            located = {
                job_id: entry.location
                for (job_id, t), entry in known.items()
                if t == target and Status(entry.status).delivered
            }
            if not located:
                continue
            for job_id in set(located) - confirmed_holdings(sink, located):
                del known[(job_id, target)]

    def _export(self, service: ExportService, job: Job, sinks: list[ResultSink]) -> list[Outcome]:
        try:
            plan = ExportPlan(
                ids=(job.job_id,), sinks=tuple(sinks), include_failed=self.include_failed, force=True
            )
            report = service.run(plan)
        except Exception as exc:
            attempts = self._crashes.get(job.job_id, (0, 0.0))[0] + 1
            self._crashes[job.job_id] = (attempts, time.time())
            wait = min(self.interval * 2 ** (attempts - 1), self.max_backoff)
            self.warn(f"job {job.job_id} could not be exported: {_one_line(exc)}; trying again in {wait:g}s")
            return []
        self._crashes.pop(job.job_id, None)
        for outcome in report.outcomes:
            if self.on_outcome:
                self.on_outcome(outcome)
        return list(report.outcomes)

    def run(self, max_cycles: int | None = None) -> None:
        cycles = 0
        while not self.stop.is_set():
            try:
                self.cycle()
            except Exception as exc:
                self.warn(f"this poll failed: {_one_line(exc)}; polling again in {self.interval:g}s")
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                return
            self.stop.wait(self.interval)
