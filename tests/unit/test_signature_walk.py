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
