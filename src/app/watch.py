"""Watch mode: poll the sources for jobs that newly succeeded and export each once per destination.

The ledger is the memory: a job already delivered to a target is never sent again, so a restarted
watcher picks up where it stopped; a failed delivery is retried on later cycles with exponential
backoff. A stop request (SIGINT/SIGTERM) lets the job in hand finish, then the loop ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evalport.app.service import ExportService, target_key
from evalport.domain.model import JobState
from evalport.domain.ports import ResultSink
from evalport.domain.report import Outcome, Status


@dataclass
class Watcher:
    """``make_service`` gives a service whose source is read afresh (called once per cycle)."""

    make_service: Callable[[], ExportService]
    sinks: Sequence[ResultSink]
    interval: float = 30.0
    include_failed: bool = False
    max_backoff: float = 600.0
    on_outcome: Callable[[Outcome], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def due(self, attempts: int, updated_at: float, now: float) -> bool:
        wait = min(self.interval * 2 ** max(attempts - 1, 0), self.max_backoff)
        return now >= updated_at + wait

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
        targets = {target_key(s): s for s in self.sinks}
        known = service.ledger.lookup((j.job_id, t) for j in finished for t in targets)
        now = time.time()
        outcomes: list[Outcome] = []
        for job in sorted(finished, key=lambda j: (j.timestamp or 0, j.job_id)):
            if self.stop.is_set():
                break
            pending = []
            for target, sink in targets.items():
                entry = known.get((job.job_id, target))
                if entry is None or (
                    not Status(entry.status).delivered and self.due(entry.attempts, entry.updated_at, now)
                ):
                    pending.append(sink)
            if not pending:
                continue
            report = service.export_to([job.job_id], pending, include_failed=self.include_failed, force=True)
            for outcome in report.outcomes:
                outcomes.append(outcome)
                if self.on_outcome:
                    self.on_outcome(outcome)
        return outcomes

    def run(self, max_cycles: int | None = None) -> None:
        cycles = 0
        while not self.stop.is_set():
            self.cycle()
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                return
            self.stop.wait(self.interval)
