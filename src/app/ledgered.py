"""The ledger's part of an export: skip what a target already holds unchanged, record what was sent.

The ledger is a cache: a skip is trusted only for the jobs the sink confirms its destination still
holds (``still_holds``); the others are sent again, and a note says so. The fingerprint compared
is the one the service put on each item (:attr:`ExportItem.fingerprint`), never recomputed here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from evalport.app.plan import ExportPlan
from evalport.domain.fingerprint import unsigned
from evalport.domain.model import JobState
from evalport.domain.ports import ExportItem, ExportLedger, LedgerEntry, ResultSink
from evalport.domain.report import Outcome, Status

log = logging.getLogger("evalport.service")

Send = Callable[[ResultSink, list[ExportItem]], list[Outcome]]


class LedgeredExport:
    """Runs one sink's export through the ledger (``ledger=None``: everything is sent, nothing kept)."""

    def __init__(self, ledger: ExportLedger | None, send: Send) -> None:
        self.ledger = ledger
        self.send = send

    def export(
        self,
        sink: ResultSink,
        items: list[ExportItem],
        plan: ExportPlan,
        notes: list[str],
        signatures: Mapping[str, str] | None = None,
        gone: dict[str, int] | None = None,
    ) -> list[Outcome]:
        """Skips what the ledger says this target holds unchanged, unless ``force``; in a dry run,
        says what would be sent and what the ledger would skip, and sends nothing.

        ``signatures`` (job id -> the job's source signature, taken before it was read) are stored
        beside the fingerprints, so that the next export can skip these jobs without reading them.

        ``gone`` (destination -> count), when given, adds up the ledger skips the destination no
        longer holds instead of noting them, so a run sent in batches says so once (:func:`gone_note`).
        """
        signatures = signatures or {}
        target = sink.target_key()
        prints = {i.result.job_id: i.fingerprint for i in items}
        held = self.held_unchanged(sink, target, prints, plan.force, notes, gone)
        outcomes = {j: _unchanged(j, sink, e, plan.dry_run) for j, e in held.items()}
        fresh = [i for i in items if i.result.job_id not in held]
        if plan.dry_run:
            outcomes.update((i.result.job_id, _planned(i, sink)) for i in fresh)
            return [outcomes[i.result.job_id] for i in items]
        self.remember_signatures(
            [
                replace(e, signature=signatures[j])
                for j, e in held.items()
                if signatures.get(j) and e.signature != signatures[j]
            ]
        )
        sent = self.send(sink, fresh) if fresh else []
        outcomes.update((o.job_id, o) for o in sent)
        self.record(
            [
                LedgerEntry(
                    o.job_id,
                    target,
                    sink.destination,
                    prints[o.job_id],
                    o.status.value,
                    o.reason,
                    o.location,
                    signature=signatures.get(o.job_id, "") if Status(o.status).delivered else "",
                )
                for o in sent
                if o.job_id in prints
            ]
        )
        return [outcomes[i.result.job_id] for i in items]

    def signed_everywhere(
        self, sinks: Sequence[ResultSink], job_ids: Sequence[str]
    ) -> tuple[set[str], Mapping[tuple[str, str], LedgerEntry]]:
        """The jobs every sink's target holds delivered with a stored signature (the only ones a
        signature taken now can skip), and the ledger entries looked up to tell (one lookup)."""
        if self.ledger is None or not job_ids or not sinks:
            return set(), {}
        targets = [sink.target_key() for sink in sinks]
        prior = self.ledger.lookup((j, t) for t in targets for j in job_ids)
        signed_jobs = set(job_ids)
        for target in targets:
            signed_jobs = {j for j in signed_jobs if _signed_entry(prior.get((j, target)))}
        return signed_jobs, prior

    def held_by_signature(
        self,
        sinks: Sequence[ResultSink],
        signatures: Mapping[str, str],
        admits: Callable[[str, JobState], bool],
        prior: Mapping[tuple[str, str], LedgerEntry] | None = None,
    ) -> list[dict[str, LedgerEntry]]:
        """Per sink (in order), the entries of the jobs that *every* sink holds unchanged by
        signature: delivered, stored with this very signature and a state ``admits`` accepts, and
        confirmed by the sink (``still_holds``). One ledger lookup for all jobs and targets (none
        when ``prior``, from :meth:`signed_everywhere`, has them); a job any sink doubts is left out
        of all (it is read, and the fingerprint decides)."""
        if self.ledger is None or not signatures or not sinks:
            return []
        targets = [sink.target_key() for sink in sinks]
        if prior is None:
            prior = self.ledger.lookup((j, t) for t in targets for j in signatures)
        jobs = set(signatures)
        per_sink: list[dict[str, LedgerEntry]] = []
        for target in targets:
            entries = {}
            for job_id in jobs:
                entry = prior.get((job_id, target))
                if entry is None or not entry.fingerprint or not Status(entry.status).delivered:
                    continue
                signature, state = unsigned(entry.signature)
                if signature and signature == signatures[job_id] and _admitted(job_id, state, admits):
                    entries[job_id] = entry
            per_sink.append(entries)
            jobs &= set(entries)
        for sink, entries in zip(sinks, per_sink, strict=True):
            if not jobs:
                break
            jobs &= confirmed_holdings(sink, {j: entries[j].location for j in jobs})
        if not jobs:
            return []
        return [{j: e for j, e in entries.items() if j in jobs} for entries in per_sink]

    def unchanged(
        self, sink: ResultSink, entries: Mapping[str, LedgerEntry], plan: ExportPlan
    ) -> list[Outcome]:
        """The "unchanged" outcomes of jobs skipped by signature (as the fingerprint would say)."""
        return [_unchanged(j, sink, e, plan.dry_run) for j, e in sorted(entries.items())]

    def remember_signatures(self, entries: list[LedgerEntry]) -> None:
        if self.ledger is None or not entries:
            return
        try:
            self.ledger.remember_signatures(entries)
        except Exception as exc:  # a cache: never fail an export over it
            log.warning("could not record signatures in the ledger: %s", exc)

    def held_unchanged(
        self,
        sink: ResultSink,
        target: str,
        prints: Mapping[str, str],
        force: bool,
        notes: list[str],
        gone: dict[str, int] | None = None,
    ) -> dict[str, LedgerEntry]:
        """The ledger's entries for jobs this target holds unchanged, as the sink confirms."""
        if self.ledger is None or force or not prints:
            return {}
        prior = self.ledger.lookup((j, target) for j in prints)
        candidates: dict[str, LedgerEntry] = {}
        for job_id, print_ in prints.items():
            entry = prior.get((job_id, target))
            if entry is not None and entry.fingerprint == print_ and Status(entry.status).delivered:
                candidates[job_id] = entry
        if not candidates:
            return {}
        held = confirmed_holdings(sink, {j: e.location for j, e in candidates.items()})
        lost = len(candidates) - len(held)
        if lost and gone is not None:
            gone[sink.destination] = gone.get(sink.destination, 0) + lost
        elif lost:
            notes.append(gone_note(sink.destination, lost))
        return {j: e for j, e in candidates.items() if j in held}

    def record(self, entries: list[LedgerEntry]) -> None:
        if self.ledger is None or not entries:
            return
        try:
            self.ledger.record(entries)
        except Exception as exc:  # the ledger is a cache of what happened; never fail an export over it
            log.warning("could not record exports in the ledger: %s", exc)

    def record_failed_reads(self, failed: Sequence[tuple[ResultSink, Outcome]]) -> None:
        """A job that could not be read is a failed delivery too: the ledger's retry backoff (and
        ``evalport history``) then know of it, so ``watch`` does not re-read it on every poll."""
        self.record(
            [
                LedgerEntry(o.job_id, sink.target_key(), o.destination, "", o.status.value, o.reason)
                for sink, o in failed
            ]
        )


def gone_note(destination: str, count: int) -> str:
    return (
        f"{destination}: the ledger said {count} job(s) were exported unchanged, but the "
        "destination no longer holds them; exported again"
    )


def _admitted(job_id: str, state: str, admits: Callable[[str, JobState], bool]) -> bool:
    try:
        return admits(job_id, JobState(state))
    except ValueError:  # a state this version does not know: read the job
        return False


def _unchanged(job_id: str, sink: ResultSink, entry: LedgerEntry, dry_run: bool) -> Outcome:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.updated_at))
    skip = "a real run skips it" if dry_run else "pass --force to send it again"
    reason = f"already exported on {when} (ledger); {skip}"
    if dry_run:
        reason += "; pass --force to send it again"
    return Outcome(job_id, sink.destination, Status.UNCHANGED, reason, entry.location)


def _planned(item: ExportItem, sink: ResultSink) -> Outcome:
    return Outcome(
        item.result.job_id,
        sink.destination,
        Status.PLANNED,
        f"would export {len(item.result.flat_metrics())} metrics, "
        f"{len(item.artifacts)} artifacts, {len(item.logs)} logs to {sink.describe()}",
    )


def _signed_entry(entry: LedgerEntry | None) -> bool:
    return (
        entry is not None
        and bool(entry.fingerprint)
        and Status(entry.status).delivered
        and bool(unsigned(entry.signature)[0])
    )


def confirmed_holdings(sink: ResultSink, located: Mapping[str, str]) -> set[str]:
    """The jobs ``sink`` confirms its destination still holds; none when it cannot tell (it raised)."""
    try:
        return set(sink.still_holds(located)) & set(located)
    except Exception:
        log.debug("sink %s could not confirm what it holds", sink.destination, exc_info=True)
        return set()
