"""ExportService with fakes for every port (a source, a reader, sinks and a ledger): no files, no servers.

The fakes are plain objects in the style of cosmicpython's FakeUnitOfWork; the container wires them
in with ``container.<provider>.override(...)``, exactly as an embedding launcher would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dependency_injector import providers

from evalport.app.container import build_container
from evalport.app.registry import Registry
from evalport.app.request import ExportRequest
from evalport.domain.errors import EvalportError, UsageError
from evalport.domain.ids import resolve_ids
from evalport.domain.model import Job, JobState, LocalLocation, Metric, TaskResult
from evalport.domain.ports import ExportItem, LedgerEntry, ReadRequest, StagedJob
from evalport.plugin import BaseSink, Outcome, SinkConfig, Status

JOBS = [
    Job(f"aaaa1111bbbb2222.{i}", "aaaa1111bbbb2222", f"task{i}", "fake", LocalLocation(f"/x/{i}"))
    for i in range(3)
]


class FakeSource:
    name = "fake"

    def __init__(self, jobs: Sequence[Job], states: Mapping[str, JobState] | None = None) -> None:
        self.jobs = {j.job_id: j for j in jobs}
        self.states = dict(states or {})
        self.warnings: list[str] = []
        self.closed = 0

    def list_jobs(self) -> list[Job]:
        return list(self.jobs.values())

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        found, errors = resolve_ids(ids, {j.invocation_id for j in self.jobs.values()}, self.jobs)
        return [self.jobs[j] for j in found], list(errors)

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]:
        return {j.job_id: self.states.get(j.job_id, JobState.SUCCEEDED) for j in jobs}

    def stage(self, jobs, policy, workdir) -> dict[str, StagedJob | EvalportError]:
        return {j.job_id: StagedJob(j, Path("/nonexistent") / j.job_id) for j in jobs}

    def close(self) -> None:
        self.closed += 1


class FakeReader:
    def __init__(self) -> None:
        self.reads = 0

    def read(self, job: Job, directory: Path, state: JobState) -> TaskResult:
        self.reads += 1
        metrics = (Metric(f"{job.task_name}_score", 0.5), Metric(f"{job.task_name}_time", 3.0))
        return TaskResult(
            job.job_id, job.invocation_id, job.task_name, "h", "m", "fake", metrics, state=state
        )

    def read_many(self, requests: Sequence[ReadRequest]) -> list[TaskResult | EvalportError]:
        return [self.read(*r) for r in requests]


class FakeLedger:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], LedgerEntry] = {}

    def lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        return {k: self.entries[k] for k in keys if k in self.entries}

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        self.entries.update(((e.job_id, e.target), e) for e in entries)

    def history(self, job_ids=None, limit=200):
        return []

    def known_job_ids(self) -> list[str]:
        return sorted({j for j, _ in self.entries})

    def take_warnings(self) -> list[str]:
        return []


class FakeConfig(SinkConfig):
    label: str = ""


class FakeSink(BaseSink):
    """Keeps what it receives per destination name; ``holds`` is what ``still_holds`` confirms."""

    name: ClassVar[str] = "fake"
    Config = FakeConfig
    received: ClassVar[dict[str, list[ExportItem]]] = {}
    holds: ClassVar[set[str] | None] = None

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        self.received.setdefault(self.destination, []).extend(items)
        return [Outcome(i.result.job_id, self.destination, Status.EXPORTED, location="here") for i in items]

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        return set(located) if self.holds is None else set(located) & self.holds


class OtherSink(FakeSink):
    name: ClassVar[str] = "other"


class DownSink(FakeSink):
    name: ClassVar[str] = "down"

    def export(self, items):
        raise ConnectionError("refused")


@pytest.fixture
def world():
    FakeSink.received = {}
    FakeSink.holds = None
    registry = Registry("evalport.test-sinks", "destination")
    for cls in (FakeSink, OtherSink, DownSink):
        registry.register(cls.name, cls)
    source, reader, ledger = FakeSource(JOBS), FakeReader(), FakeLedger()
    container = build_container()
    container.source.override(providers.Object(source))
    container.reader.override(providers.Object(reader))
    container.ledger.override(providers.Object(ledger))
    container.sinks.override(providers.Object(registry))

    class World:
        pass

    w = World()
    w.container, w.source, w.reader, w.ledger, w.registry = container, source, reader, ledger, registry

    def run(**request: Any):
        return container.service().execute(ExportRequest(**{"ids": ["aaaa1111bbbb2222"], **request}))

    w.run = run
    return w


def _statuses(report, destination: str) -> list[str]:
    """The statuses in the jobs' order."""
    by_job = {o.job_id: o.status.value for o in report.for_destination(destination)}
    return [by_job[j.job_id] for j in JOBS if j.job_id in by_job]


def test_several_destinations_each_receive_every_job_read_once(world):
    report = world.run(destinations=["fake", "other"])
    assert report.ok and report.counts() == {"exported": 6}
    assert [len(FakeSink.received[d]) for d in ("fake", "other")] == [3, 3]
    assert world.reader.reads == 3
    assert world.source.closed == 1


def test_a_failing_destination_fails_only_its_own_outcomes(world):
    report = world.run(destinations=["down", "fake"])
    assert report.exit_code() == 1
    assert _statuses(report, "down") == ["failed"] * 3
    assert all("refused" in o.reason for o in report.for_destination("down"))
    assert _statuses(report, "fake") == ["exported"] * 3


def test_the_ledger_skips_what_the_target_still_holds_unchanged(world):
    world.run(destinations=["fake"])
    FakeSink.received = {}
    report = world.run(destinations=["fake"])
    assert _statuses(report, "fake") == ["unchanged"] * 3
    assert FakeSink.received == {}


def test_a_ledger_skip_is_not_trusted_for_jobs_the_destination_no_longer_holds(world):
    world.run(destinations=["fake"])
    FakeSink.received, FakeSink.holds = {}, {JOBS[0].job_id}
    report = world.run(destinations=["fake"])
    assert _statuses(report, "fake") == ["unchanged", "exported", "exported"]
    assert [i.result.job_id for i in FakeSink.received["fake"]] == [j.job_id for j in JOBS[1:]]
    assert any("no longer holds them" in n for n in report.notes)


def test_force_sends_again_what_the_ledger_holds(world):
    world.run(destinations=["fake"])
    report = world.run(destinations=["fake"], force=True)
    assert _statuses(report, "fake") == ["exported"] * 3


def test_a_dry_run_sends_nothing_records_nothing_and_names_the_ledger_skips(world):
    world.run(ids=[JOBS[0].job_id], destinations=["fake"])
    FakeSink.received = {}
    before = dict(world.ledger.entries)
    report = world.run(destinations=["fake"], dry_run=True)
    assert _statuses(report, "fake") == ["unchanged", "planned", "planned"]
    unchanged = [o for o in report.for_destination("fake") if o.status is Status.UNCHANGED]
    assert "a real run skips it" in unchanged[0].reason
    assert FakeSink.received == {} and world.ledger.entries == before


def test_failed_jobs_are_skipped_unless_include_failed(world):
    world.source.states[JOBS[1].job_id] = JobState.FAILED
    report = world.run(destinations=["fake"])
    assert _statuses(report, "fake") == ["exported", "skipped", "exported"]
    skipped = [o for o in report.for_destination("fake") if o.status is Status.SKIPPED]
    assert [o.job_id for o in skipped] == [JOBS[1].job_id] and "--include-failed" in skipped[0].reason
    again = world.run(destinations=["fake"], include_failed=True, force=True)
    assert _statuses(again, "fake") == ["exported"] * 3


def test_each_destination_gets_its_own_metric_filter(world):
    world.run(destinations=["fake", "other"], config={"fake": {"log_metrics": ["score"]}})
    assert {k for i in FakeSink.received["fake"] for k in i.result.flat_metrics()} == {
        f"task{i}_score" for i in range(3)
    }
    assert len(FakeSink.received["other"][0].result.metrics) == 2


def test_a_filter_that_matches_nothing_is_a_note(world):
    report = world.run(destinations=["fake"], flags={"log_metrics": ["nomatch"]})
    assert any("matches no metric" in n for n in report.notes)


def test_an_unknown_id_is_a_usage_error_and_nothing_is_sent(world):
    with pytest.raises(UsageError, match="ffff0000"):
        world.run(ids=["ffff0000"], destinations=["fake"])
    assert FakeSink.received == {}


def test_the_ledger_records_what_each_target_received(world):
    world.run(destinations=["fake", "down"])
    by_status = {(j, t.split("@")[0]): e.status for (j, t), e in world.ledger.entries.items()}
    assert by_status[(JOBS[0].job_id, "fake")] == "exported"
    assert by_status[(JOBS[0].job_id, "down")] == "failed"


def test_a_registry_instance_keeps_its_registrations_to_itself(world):
    from evalport.app.registry import sink_registry

    assert "down" in world.registry.names()
    assert "down" not in sink_registry().names()
    world.registry.unregister("down")
    assert "down" not in world.registry.names()


def test_each_item_is_fingerprinted_once_and_the_ledger_records_that_value(world):
    calls: list[str] = []

    def counting(item: ExportItem) -> str:
        calls.append(item.result.job_id)
        return f"print-of-{item.result.job_id}"

    world.container.fingerprint.override(providers.Object(counting))
    world.run(destinations=["fake", "other"])
    assert sorted(calls) == sorted([j.job_id for j in JOBS] * 2)  # once per item: one item per sink
    assert {i.fingerprint for i in FakeSink.received["fake"]} == {f"print-of-{j.job_id}" for j in JOBS}
    assert {e.fingerprint for e in world.ledger.entries.values()} == {f"print-of-{j.job_id}" for j in JOBS}
