"""Each file is read once: the reader secret-scans the files it sends from the bytes it parsed, and
staging trusts that scan only for the very file that was scanned (else it scans again).

Real job directories from the test factory; real files in tmp_path.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from evalport.adapters import staging
from evalport.adapters.formats.nemo_evaluator import NemoEvaluatorReader, read_task_result
from evalport.adapters.sources.local import LocalSource
from evalport.adapters.staging import stage_item
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.model import JobState, TaskResult
from evalport.domain.ports import ExportItem
from evalport.testing.factory import write_launcher_home

TOKEN = "nvapi-CANARY_r2Xb9kLmQ4tYz7Wv1Pc3Nd5Ef8Gh0"


def _job_dir(tmp_path: Path) -> tuple[object, Path]:
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=1, seed=3)
    job = LocalSource(home.exec_db).list_jobs()[0]
    return job, Path(job.location.path)


def _read(job, directory: Path) -> TaskResult:
    return read_task_result(job, directory, JobState.SUCCEEDED, ArtifactPolicy())


def _item(result: TaskResult, directory: Path) -> ExportItem:
    policy = ArtifactPolicy()
    return ExportItem(
        result,
        directory,
        tuple(policy.select_artifacts(result.artifacts)),
        tuple(policy.select_logs(result.logs)),
    )


def _record_streaming_scans(monkeypatch) -> list[Path]:
    scanned: list[Path] = []
    real = staging._scan

    def record(fd, dst, *args, **kwargs):
        scanned.append(dst)
        return real(fd, dst, *args, **kwargs)

    monkeypatch.setattr(staging, "_scan", record)
    return scanned


def test_the_readers_verdict_on_each_file_it_sends_is_what_streaming_staging_would_do(tmp_path):
    job, directory = _job_dir(tmp_path)
    result = _read(job, directory)
    sent = {f"artifacts/{a}" for a in ArtifactPolicy().select_artifacts(result.artifacts)}
    assert "artifacts/results.yml" in sent
    assert set(result.scans) == sent
    out = tmp_path / "out"
    stage_item(_item(replace(result, scans={}), directory), out)
    for rel, scan in result.scans.items():
        assert scan.clean == ((out / rel).read_bytes() == (directory / rel).read_bytes()), rel


def test_a_clean_scanned_file_is_staged_without_being_read_again_and_keeps_its_bytes(tmp_path, monkeypatch):
    job, directory = _job_dir(tmp_path)
    result = _read(job, directory)
    clean = [rel for rel, scan in result.scans.items() if scan.clean]
    assert "artifacts/results.yml" in clean
    scanned = _record_streaming_scans(monkeypatch)
    out = tmp_path / "out"
    staged = stage_item(_item(result, directory), out)
    assert staged.withheld == ()
    assert not {out / rel for rel in clean} & set(scanned)
    for rel in clean:
        assert (out / rel).read_bytes() == (directory / rel).read_bytes()


def test_a_file_rewritten_with_a_secret_after_the_scan_is_scanned_again_and_masked(tmp_path):
    job, directory = _job_dir(tmp_path)
    result = _read(job, directory)
    progress = directory / "artifacts" / "progress"
    assert result.scans["artifacts/progress"].clean
    before = os.stat(progress)
    progress.write_text(f"token: {TOKEN}\n")
    os.utime(progress, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with its old mtime back
    out = tmp_path / "out"
    stage_item(_item(result, directory), out)
    assert TOKEN not in (out / "artifacts" / "progress").read_text()
    assert "***" in (out / "artifacts" / "progress").read_text()


def test_a_file_with_a_secret_is_masked_though_the_reader_scanned_it(tmp_path):
    job, directory = _job_dir(tmp_path)
    (directory / "artifacts" / "progress").write_text(f"calling with {TOKEN}\nline two\n")
    result = _read(job, directory)
    assert not result.scans["artifacts/progress"].clean
    out = tmp_path / "out"
    stage_item(_item(result, directory), out)
    text = (out / "artifacts" / "progress").read_text()
    assert TOKEN not in text and text.endswith("line two\n")


def test_a_secret_in_results_yml_is_found_from_the_bytes_the_reader_parsed(tmp_path):
    job, directory = _job_dir(tmp_path)
    results = directory / "artifacts" / "results.yml"
    results.write_text(results.read_text() + f"# api_key: {TOKEN}\n")
    result = _read(job, directory)
    assert not result.scans["artifacts/results.yml"].clean
    out = tmp_path / "out"
    stage_item(_item(result, directory), out)
    assert TOKEN not in (out / "artifacts" / "results.yml").read_text()


def test_the_kernel_copy_of_a_clean_file_keeps_its_bytes_and_mtime(tmp_path):
    src = tmp_path / "src.bin"
    data = os.urandom(300_000) + b"\nend\n"
    src.write_bytes(data)
    st = os.stat(src)
    dst = tmp_path / "dst.bin"
    fd = os.open(src, os.O_RDONLY)
    try:
        staging._copy_temp(dst, fd, st, staging.CHUNK_BYTES)
    finally:
        os.close(fd)
    assert dst.read_bytes() == data
    assert os.stat(dst).st_mtime_ns == st.st_mtime_ns
    assert not os.path.samefile(src, dst)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


@pytest.mark.parametrize("workers", [1, 2])
def test_read_many_returns_the_scans_from_worker_processes_too(tmp_path, workers):
    home = write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=4)
    jobs = LocalSource(home.exec_db).list_jobs()
    requests = [(j, Path(j.location.path), JobState.SUCCEEDED) for j in jobs]
    reader = NemoEvaluatorReader(workers=workers, parallel_threshold=1)
    got = reader.read_many(requests, scan=ArtifactPolicy())
    assert all(isinstance(r, TaskResult) and "artifacts/results.yml" in r.scans for r in got)
    assert all(not r.scans for r in reader.read_many(requests) if isinstance(r, TaskResult))
