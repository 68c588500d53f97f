"""A job directory's file signature, taken with one clock reading for many jobs."""

from __future__ import annotations

import os
import time

from evalport.adapters.sources.signatures import directory_signature, racy_after_ns


def _job(tmp_path, age_s: float = 60.0):
    job = tmp_path / "job"
    (job / "artifacts" / "sub").mkdir(parents=True)
    (job / "logs").mkdir()
    for rel in ("artifacts/results.yml", "artifacts/sub/x.json", "logs/stage.exit"):
        (job / rel).write_text(rel)
    past = time.time() - age_s
    for path in [*job.rglob("*"), job]:
        os.utime(path, (past, past), follow_symlinks=False)
    return job


def test_a_string_path_and_a_shared_clock_reading_give_the_same_signature(tmp_path):
    job = _job(tmp_path)
    alone = directory_signature(job)
    assert alone and directory_signature(str(job), racy_after=racy_after_ns()) == alone


def test_a_file_written_after_the_shared_clock_reading_is_racy(tmp_path):
    job = _job(tmp_path)
    racy_after = racy_after_ns()
    (job / "artifacts" / "sub" / "x.json").write_text("rewritten")
    assert directory_signature(str(job), racy_after=racy_after) == ""


def test_a_file_rewritten_with_a_new_size_changes_the_signature(tmp_path):
    job = _job(tmp_path)
    before = directory_signature(job)
    (job / "artifacts" / "sub" / "x.json").write_text("longer than before")
    past = time.time() - 30
    os.utime(job / "artifacts" / "sub" / "x.json", (past, past))
    assert directory_signature(job) not in ("", before)


def _aged(path, age_s: float = 30.0) -> None:
    past = time.time() - age_s
    os.utime(path, (past, past), follow_symlinks=False)


def test_a_log_that_grows_changes_the_signature_only_when_logs_are_sent(tmp_path):
    job = _job(tmp_path)
    before = (directory_signature(job, logs=False), directory_signature(job, logs=True))
    (job / "logs" / "client_stdout.log").write_text("a new line\n")
    _aged(job / "logs" / "client_stdout.log")
    assert directory_signature(job, logs=False) == before[0]
    assert directory_signature(job, logs=True) != before[1]


def test_a_rewritten_exit_marker_or_a_new_running_marker_changes_the_signature_without_logs(tmp_path):
    job = _job(tmp_path)
    before = directory_signature(job, logs=False)
    assert before
    (job / "logs" / "stage.exit").write_text("2026-01-01T00:00:00Z 1\n")
    _aged(job / "logs" / "stage.exit")
    rewritten = directory_signature(job, logs=False)
    assert rewritten and rewritten != before
    (job / "logs" / "stage.running").write_text("")
    _aged(job / "logs" / "stage.running")
    assert directory_signature(job, logs=False) not in ("", rewritten)


def test_a_marker_written_just_now_is_racy_without_logs_too(tmp_path):
    job = _job(tmp_path)
    (job / "logs" / "stage.exit").write_text("2026-01-01T00:00:00Z 0\n")
    assert directory_signature(job, logs=False) == ""


def test_the_signature_without_logs_differs_from_the_one_with_them(tmp_path):
    job = _job(tmp_path)
    assert directory_signature(job, logs=False) != directory_signature(job, logs=True)
