"""A large run is read and sent in batches of whole invocations: a sink that takes batches writes
one while the rest is read; a sink that does not gets every item in one call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dependency_injector import providers

from evalport.app.batches import batch_sizes, by_invocation
from evalport.app.container import build_container
from evalport.app.registry import Registry
from evalport.app.request import ExportRequest
from evalport.domain.errors import EvalportError, ResultError
from evalport.domain.ids import resolve_ids
from evalport.domain.model import Job, JobState, LocalLocation, Metric, TaskResult
from evalport.domain.ports import ExportItem, LedgerEntry, ReadRequest, SinkCapabilities, StagedJob
from evalport.plugin import BaseSink, Outcome, SinkConfig, Status

INVOCATIONS = [f"{i:04d}aaaabbbbcccc" for i in range(40)]
JOBS = [
    Job(f"{inv}.{t}", inv, f"task{t}", "fake", LocalLocation(f"/x/{inv}/{t}"))
    for inv in INVOCATIONS
    for t in range(5)
]


class FakeSource:
    name = "fake"

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = {j.job_id: j for j in jobs}
        self.warnings: list[str] = []

    def list_jobs(self) -> list[Job]:
        return list(self.jobs.values())

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        found, errors = resolve_ids(ids, {j.invocation_id for j in self.jobs.values()}, self.jobs)
        return [self.jobs[j] for j in found], list(errors)

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]:
        return {j.job_id: JobState.SUCCEEDED for j in jobs}

    def stage(self, jobs, policy, workdir) -> dict[str, StagedJob | EvalportError]:
        return {j.job_id: StagedJob(j, Path("/nonexistent") / j.job_id) for j in jobs}

    def close(self) -> None:
        pass


class RecordingReader:
    """Reads each batch when asked (``read_many``), writing the order of events into ``events``."""

    def __init__(self, events: list[str], unreadable: Iterable[str] = ()) -> None:
        self.events = events
        self.unreadable = set(unreadable)

    def read(self, job: Job, directory: Path, state: JobState) -> TaskResult:
        if job.job_id in self.unreadable:
            raise ResultError("results.yml is missing", job_id=job.job_id)
        return TaskResult(
            job.job_id,
            job.invocation_id,
            job.task_name,
            "h",
            "m",
            "fake",
            (Metric("score", 0.5),),
            state=state,
        )

    def read_many(self, requests: Sequence[ReadRequest]) -> list[TaskResult | EvalportError]:
        self.events.append(f"read {len(requests)}")
        out: list[TaskResult | EvalportError] = []
        for request in requests:
            try:
                out.append(self.read(*request))
            except EvalportError as exc:
                out.append(exc)
        return out


class FakeLedger:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], LedgerEntry] = {}

    def lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        return {k: self.entries[k] for k in keys if k in self.entries}

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        self.entries.update(((e.job_id, e.target), e) for e in entries)

    def remember_signatures(self, entries: Sequence[LedgerEntry]) -> None:
        self.record(entries)

    def history(self, job_ids=None, limit=200):
        return []

    def known_job_ids(self) -> list[str]:
        return []

    def take_warnings(self) -> list[str]:
        return []


class Config(SinkConfig):
    pass


class BatchSink(BaseSink):
    """Takes batches; records each export call (its invocations) in the shared event list."""

    name: ClassVar[str] = "batched"
    Config = Config
    capabilities = SinkCapabilities(batches=True)
    events: ClassVar[list[str]] = []
    calls: ClassVar[dict[str, list[list[ExportItem]]]] = {}

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        self.events.append(f"{self.destination} {len(items)}")
        self.calls.setdefault(self.destination, []).append(list(items))
        return [Outcome(i.result.job_id, self.destination, Status.EXPORTED, location="here") for i in items]


class WholeSink(BatchSink):
    name: ClassVar[str] = "whole"
    capabilities = SinkCapabilities()


class BrokenBatchSink(BatchSink):
    name: ClassVar[str] = "broken"

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        super().export(items)
        raise ConnectionError("refused")


@pytest.fixture
def world():
    events: list[str] = []
    BatchSink.events = events
    BatchSink.calls = {}
    registry = Registry("evalport.test-batch-sinks", "destination")
    for cls in (BatchSink, WholeSink, BrokenBatchSink):
        registry.register(cls.name, cls)
    container = build_container()
    container.source.override(providers.Object(FakeSource(JOBS)))
    container.ledger.override(providers.Object(FakeLedger()))
    container.sinks.override(providers.Object(registry))

    def run(reader: RecordingReader | None = None, **request: Any):
        container.reader.override(providers.Object(reader or RecordingReader(events)))
        return container.service().execute(ExportRequest(**{"ids": INVOCATIONS, **request}))

    return run, events


def test_the_first_batch_is_exported_before_the_last_is_read(world):
    run, events = world
    report = run(destinations=["batched"])
    assert report.ok and report.counts() == {"exported": len(JOBS)}
    reads = [i for i, e in enumerate(events) if e.startswith("read")]
    exports = [i for i, e in enumerate(events) if e.startswith("batched")]
    assert len(reads) > 1 and exports[0] < reads[-1]
    assert sum(int(events[i].split()[1]) for i in exports) == len(JOBS)


def test_every_batch_holds_whole_invocations(world):
    run, _ = world
    run(destinations=["batched"])
    seen: set[str] = set()
    for call in BatchSink.calls["batched"]:
        invocations = {i.result.invocation_id for i in call}
        assert not invocations & seen
        seen |= invocations
    assert seen == set(INVOCATIONS)


def test_a_sink_that_does_not_take_batches_gets_every_job_in_one_call(world):
    run, _ = world
    report = run(destinations=["batched", "whole"])
    assert report.ok and report.counts() == {"exported": 2 * len(JOBS)}
    assert len(BatchSink.calls["batched"]) > 1
    assert [len(call) for call in BatchSink.calls["whole"]] == [len(JOBS)]


def test_a_sink_that_raises_on_a_batch_fails_only_its_own_outcomes(world):
    run, _ = world
    report = run(destinations=["broken", "batched"])
    assert {o.status for o in report.for_destination("broken")} == {Status.FAILED}
    assert len(report.for_destination("broken")) == len(JOBS)
    assert {o.status for o in report.for_destination("batched")} == {Status.EXPORTED}


def test_a_job_that_cannot_be_read_in_a_late_batch_fails_alone_with_one_outcome_per_destination(world):
    run, events = world
    bad = JOBS[-1].job_id
    report = run(RecordingReader(events, unreadable=[bad]), destinations=["batched", "whole"])
    failed = [(o.job_id, o.destination) for o in report.failed]
    assert sorted(failed) == [(bad, "batched"), (bad, "whole")]
    assert len(report.outcomes) == 2 * len(JOBS)


def test_a_dry_run_in_batches_sends_nothing_and_plans_every_job(world):
    run, _ = world
    report = run(destinations=["batched"], dry_run=True)
    assert report.counts() == {"planned": len(JOBS)}
    assert BatchSink.calls == {}


def test_batches_never_split_an_invocation_and_cover_every_request():
    requests = by_invocation([(j, Path("/x"), JobState.SUCCEEDED) for j in reversed(JOBS)])
    sizes = batch_sizes(requests)
    assert sum(sizes) == len(JOBS) and len(sizes) > 1
    start = 0
    for size in sizes:
        batch = requests[start : start + size]
        start += size
        assert batch[-1][0].invocation_id != (
            requests[start][0].invocation_id if start < len(requests) else ""
        )


def test_the_first_batch_of_a_large_run_is_smaller_so_that_the_sinks_start_sooner():
    jobs = [
        Job(f"inv{i // 5:04d}.{i % 5}", f"inv{i // 5:04d}", "task", "local", LocalLocation(""))
        for i in range(2000)
    ]
    sizes = batch_sizes([(j, Path("/x"), JobState.SUCCEEDED) for j in jobs])
    assert sum(sizes) == 2000
    assert sizes[0] * 4 <= sizes[1] and all(size % 5 == 0 for size in sizes)
