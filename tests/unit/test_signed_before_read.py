"""A job's source signature is taken before it is read, and only then: jobs read where they are are
signed batch by batch while the batches before are read, the others before anything is staged.

The service with fakes (a recording source and reader, an in-memory ledger), as in
test_export_in_batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from dependency_injector import providers

from evalport.app.container import build_container
from evalport.app.registry import Registry
from evalport.app.request import ExportRequest
from evalport.domain.fingerprint import unsigned
from evalport.domain.model import Job, JobState, TaskResult
from tests.unit.test_export_in_batches import (
    INVOCATIONS,
    JOBS,
    BatchSink,
    FakeLedger,
    FakeSource,
    RecordingReader,
)


class SigningSource(FakeSource):
    """Signs a job as ``<job>@<version>``; ``events`` gets ``sign <n>`` per call."""

    def __init__(self, jobs: Sequence[Job], events: list[str], *, in_place: bool = True) -> None:
        super().__init__(jobs)
        self.events = events
        self.version = dict.fromkeys(self.jobs, 0)
        self.in_place = in_place
        self.state_calls = 0
        self.turns_failed: set[str] = set()

    def signatures(self, jobs, policy) -> dict[str, str]:
        self.events.append(f"sign {len(jobs)}")
        return {j.job_id: f"{j.job_id}@{self.version[j.job_id]}" for j in jobs}

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]:
        self.state_calls += 1
        first = self.state_calls == 1
        return {
            j.job_id: JobState.FAILED if j.job_id in self.turns_failed and not first else JobState.SUCCEEDED
            for j in jobs
        }


class InPlaceSource(SigningSource):
    def read_in_place(self, jobs: Sequence[Job]) -> set[str]:
        return {j.job_id for j in jobs}


class ChangingReader(RecordingReader):
    """Reads as RecordingReader does; each job's files change as it is read (a new version)."""

    def __init__(self, events: list[str], source: SigningSource) -> None:
        super().__init__(events)
        self.source = source

    def read(self, job: Job, directory: Path, state: JobState) -> TaskResult:
        self.source.version[job.job_id] += 1
        return super().read(job, directory, state)


@pytest.fixture
def world():
    events: list[str] = []
    BatchSink.events = events
    BatchSink.calls = {}
    registry = Registry("evalport.test-signing-sinks", "destination")
    registry.register(BatchSink.name, BatchSink)
    ledger = FakeLedger()
    container = build_container()
    container.ledger.override(providers.Object(ledger))
    container.sinks.override(providers.Object(registry))

    def run(source: SigningSource, reader: RecordingReader | None = None, **request):
        container.source.override(providers.Object(source))
        container.reader.override(providers.Object(reader or RecordingReader(events)))
        return container.service().execute(ExportRequest(**{"ids": INVOCATIONS, **request}))

    return run, events, ledger


def _kinds(events: list[str]) -> list[str]:
    return [e.split()[0] for e in events if e.startswith(("sign", "read"))]


def test_jobs_read_in_place_are_signed_batch_by_batch_each_before_it_is_read(world):
    run, events, _ = world
    report = run(InPlaceSource(JOBS, events), destinations=["batched"])
    assert report.ok and report.counts() == {"exported": len(JOBS)}
    kinds = _kinds(events)
    assert kinds[0] == "sign" and kinds.count("read") > 1
    assert kinds == ["sign", "read"] * kinds.count("read")
    signed = [int(e.split()[1]) for e in events if e.startswith("sign")]
    read = [int(e.split()[1]) for e in events if e.startswith("read")]
    assert signed == read and sum(signed) == len(JOBS)


def test_a_source_that_does_not_say_it_reads_in_place_has_every_job_signed_before_anything_is_read(world):
    run, events, _ = world
    run(SigningSource(JOBS, events), destinations=["batched"])
    kinds = _kinds(events)
    assert kinds[0] == "sign" and "sign" not in kinds[1:]
    assert events[0] == f"sign {len(JOBS)}"


def test_the_signature_stored_is_the_one_taken_before_the_read_so_a_file_changed_while_read_reads_again(
    world,
):
    run, events, ledger = world
    source = InPlaceSource(JOBS, events)
    run(source, ChangingReader(events, source), destinations=["batched"])
    assert all(unsigned(e.signature)[0] for e in ledger.entries.values())
    events.clear()
    run(source, RecordingReader(events), destinations=["batched"])
    assert sum(int(e.split()[1]) for e in events if e.startswith("read")) == len(JOBS)


def test_an_unchanged_re_export_reads_nothing_and_signs_every_job_once_up_front(world):
    run, events, _ = world
    source = InPlaceSource(JOBS, events)
    run(source, destinations=["batched"])
    events.clear()
    report = run(source, destinations=["batched"])
    assert report.counts() == {"unchanged": len(JOBS)}
    assert [e for e in events if e.startswith(("sign", "read"))] == [f"sign {len(JOBS)}"]


def test_a_job_whose_state_reads_differently_when_it_is_signed_keeps_no_signature(world):
    run, events, ledger = world
    source = InPlaceSource(JOBS, events)
    changed = JOBS[7].job_id
    source.turns_failed = {changed}
    report = run(source, destinations=["batched"])
    assert report.counts() == {"exported": len(JOBS)}
    signatures = {e.job_id: e.signature for e in ledger.entries.values()}
    assert signatures[changed] == ""
    assert all(unsigned(s)[0] for j, s in signatures.items() if j != changed)


def test_a_job_whose_state_the_caller_gives_is_signed_up_front(world):
    run, events, _ = world
    run(InPlaceSource(JOBS, events), destinations=["batched"], states={JOBS[0].job_id: JobState.SUCCEEDED})
    first_sign = next(e for e in events if e.startswith("sign"))
    assert first_sign == "sign 1"
    assert _kinds(events)[1] == "sign"
