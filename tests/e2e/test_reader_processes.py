"""Forked reader workers: they end with their parent, and one that dies fails only its own jobs."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evalport.adapters.formats.nemo_evaluator import NemoEvaluatorReader, _read_chunk
from evalport.adapters.sources.local import LocalSource
from evalport.domain.errors import ResultError
from evalport.domain.model import JobState, TaskResult
from evalport.testing.factory import write_launcher_home

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; PDEATHSIG is Linux"
)


def children_of(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.add(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def many_slow_jobs(tmp_path):
    """300 jobs whose results.yml is one large (hard-linked) file, so each read takes a while."""
    home = write_launcher_home(tmp_path / "launcher", invocations=100, tasks_per_invocation=3, seed=1)
    first = home.jobs[0].directory / "artifacts" / "results.yml"
    big = tmp_path / "big-results.yml"
    text = first.read_text()
    extra = "".join(f"  padding_{i}: {{a: [1, 2, 3], b: {{c: 'text {i}'}}}}\n" for i in range(20000))
    big.write_text(text + "padding:\n" + extra)
    for job in home.jobs:
        target = job.directory / "artifacts" / "results.yml"
        target.unlink()
        os.link(big, target)
    return home


@pytest.mark.timeout(180)
def test_killing_the_exporting_process_ends_its_reader_workers(many_slow_jobs, tmp_path):
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from evalport.adapters.formats.nemo_evaluator import NemoEvaluatorReader
        from evalport.adapters.sources.local import LocalSource
        from evalport.domain.model import JobState
        source = LocalSource({str(many_slow_jobs.exec_db)!r})
        jobs = source.list_jobs()
        requests = [(j, Path(j.location.path), JobState.SUCCEEDED) for j in jobs]
        print(len(requests), flush=True)
        NemoEvaluatorReader(workers=2, parallel_threshold=10).read_many(requests)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    workers: set[int] = set()
    try:
        assert int(proc.stdout.readline()) >= 300
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = {p for p in children_of(proc.pid) if alive(p)}
            time.sleep(0.01)
        assert len(workers) == 2, "the reader never started its workers"
        time.sleep(0.3)  # well inside the first chunk
        assert all(alive(p) for p in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in workers if alive(p)], "reader workers outlived their parent"
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def _read_or_die(requests):
    """Reads like the real reader, but the process that meets a job ``<inv>.1`` dies (as a worker
    killed by the OOM killer would): once in all, or every time when the marker folder says so."""
    marker_dir = Path(os.environ["EVALPORT_TEST_MARKERS"])
    for job, _directory, _state in requests:
        if job.job_id.endswith(".1"):
            died = marker_dir / "died"
            if (marker_dir / "always").exists() or not died.exists():
                died.touch()
                os._exit(9)
    return _read_chunk(requests)


def requests_of(home):
    jobs = LocalSource(home.exec_db).list_jobs()
    return [(j, Path(j.location.path), JobState.SUCCEEDED) for j in jobs]


@pytest.mark.timeout(120)
def test_a_worker_that_dies_once_costs_nothing_its_jobs_are_read_again(tmp_path, monkeypatch):
    home = write_launcher_home(tmp_path / "launcher", invocations=4, tasks_per_invocation=3, seed=2)
    monkeypatch.setenv("EVALPORT_TEST_MARKERS", str(tmp_path))
    from evalport.adapters.formats.read_pool import read_in_workers

    requests = requests_of(home)
    got = read_in_workers(_read_or_die, requests, 2, job_id=lambda r: r[0].job_id)
    assert [r.job_id for r in got] == [j.job_id for j, _, _ in requests]
    assert all(isinstance(r, TaskResult) for r in got)


@pytest.mark.timeout(120)
def test_a_job_that_kills_its_reader_every_time_fails_alone_and_is_named(tmp_path, monkeypatch):
    home = write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=3, seed=2)
    monkeypatch.setenv("EVALPORT_TEST_MARKERS", str(tmp_path))
    (tmp_path / "always").touch()
    from evalport.adapters.formats.read_pool import read_in_workers

    requests = requests_of(home)
    got = read_in_workers(_read_or_die, requests, 2, job_id=lambda r: r[0].job_id)
    failed = {r.job_id: str(r) for r in got if isinstance(r, ResultError)}
    assert set(failed) == {j.job_id for j, _, _ in requests if j.job_id.endswith(".1")}
    assert all("reader process died" in reason for reason in failed.values())
    assert sum(isinstance(r, TaskResult) for r in got) == len(requests) - len(failed)


def test_an_unexpected_exception_reading_one_job_is_that_jobs_error(tmp_path):
    """The safety net: whatever raises while reading a job (here a Job built with no data mapping)
    becomes that job's ResultError naming the exception, and the next job is read."""
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=2, seed=2)
    requests = requests_of(home)
    job, directory, state = requests[0]
    requests[0] = (dataclasses.replace(job, data=None), directory, state)
    got = NemoEvaluatorReader(workers=1).read_many(requests)
    assert isinstance(got[0], ResultError)
    assert job.job_id in str(got[0]) and "AttributeError" in str(got[0])
    assert isinstance(got[1], TaskResult)


@pytest.mark.timeout(120)
def test_batches_queued_after_a_worker_died_are_read_job_by_job_each_after_its_before_batch(
    tmp_path, monkeypatch
):
    home = write_launcher_home(tmp_path / "launcher", invocations=4, tasks_per_invocation=3, seed=2)
    monkeypatch.setenv("EVALPORT_TEST_MARKERS", str(tmp_path))
    (tmp_path / "always").touch()
    from evalport.adapters.formats.read_pool import stream_in_workers

    requests = requests_of(home)
    prepared: list[int] = []
    batches = list(
        stream_in_workers(
            _read_or_die,
            requests,
            [3, 3, 3, 3],
            2,
            job_id=lambda r: r[0].job_id,
            before_batch=prepared.append,
        )
    )
    assert prepared == [0, 1, 2, 3]
    got = [r for batch in batches for r in batch]
    assert [r.job_id for r in got] == [j.job_id for j, _, _ in requests]
    failed = {r.job_id for r in got if isinstance(r, ResultError)}
    assert failed == {j.job_id for j, _, _ in requests if j.job_id.endswith(".1")}


class _Token:
    """A result that can be weakly referenced (a TaskResult has slots and no __weakref__)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id


def _tokens(requests):
    return [_Token(job.job_id) for job, _directory, _state in requests]


@pytest.mark.timeout(120)
def test_a_batch_handed_over_is_no_longer_held_by_the_pool(tmp_path):
    import gc
    import weakref

    from evalport.adapters.formats.read_pool import stream_in_workers

    home = write_launcher_home(tmp_path / "launcher", invocations=4, tasks_per_invocation=4, seed=2)
    requests = requests_of(home)
    batches = stream_in_workers(_tokens, requests, [4, 4, 4, 4], 2, job_id=lambda r: r[0].job_id)
    first = next(batches)
    held = [weakref.ref(token) for token in first]
    del first
    second = next(batches)
    gc.collect()
    assert len(second) == 4
    assert [ref() for ref in held] == [None] * 4
    batches.close()


def _where_each_request_lives(requests):
    """Per request: the id of its job object in the worker and whether its config is that object's own."""
    return [(id(job), id(job.config)) for job, _directory, _state in requests]


@pytest.mark.timeout(120)
def test_a_worker_reads_copies_sent_to_it_never_the_jobs_in_this_process_memory(tmp_path):
    """A forked worker that read this process's jobs would write to the pages it shares with this
    process (reference counts) and end up holding its own copy of them: each chunk is sent instead."""
    from evalport.adapters.formats.read_pool import read_in_workers

    home = write_launcher_home(tmp_path / "launcher", invocations=4, tasks_per_invocation=4, seed=2)
    requests = requests_of(home)
    here = {(id(job), id(job.config)) for job, _directory, _state in requests}
    there = read_in_workers(_where_each_request_lives, requests, 2, job_id=lambda r: r[0].job_id)
    assert len(there) == len(requests)
    assert not here & set(there)
