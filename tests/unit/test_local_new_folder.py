"""A job's new folder is staged privately and appears complete, in one rename."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evalport.adapters.sinks import local_files
from evalport.adapters.sinks.local import LocalSink
from evalport.adapters.staging import stage_item
from evalport.domain.model import Metric, TaskResult
from evalport.domain.ports import ExportItem
from evalport.domain.report import Status


def _job(root: Path, secret: bool = False) -> Path:
    (root / "artifacts").mkdir(parents=True)
    (root / "artifacts" / "results.yml").write_text("results: {}\n")
    (root / "artifacts" / "run_config.yml").write_text(
        "api_key: sk-abcdefghijklmnopqrstuvwxyz012345\n" if secret else "model: m\n"
    )
    return root


def _item(directory: Path, job_id: str = "inv1.0") -> ExportItem:
    result = TaskResult(
        job_id=job_id,
        invocation_id="inv1",
        task="gsm8k",
        model_id="m",
        harness="simple_evals",
        executor="local",
        metrics=(Metric("gsm8k.accuracy", 0.5),),
        artifacts=("results.yml", "run_config.yml"),
    )
    return ExportItem(result, directory, artifacts=result.artifacts)


def _names(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_a_new_jobs_folder_appears_complete_with_no_temp_file_left_anywhere(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out"})
    [outcome] = sink.export([_item(_job(tmp_path / "job", secret=True))])
    assert outcome.status is Status.EXPORTED
    assert _names(tmp_path / "out") == {
        "inv1",
        "inv1/inv1.0",
        "inv1/inv1.0/result.json",
        "inv1/inv1.0/artifacts",
        "inv1/inv1.0/artifacts/results.yml",
        "inv1/inv1.0/artifacts/run_config.yml",
        "results.json",
        "results.json.lock",
    }
    staged = tmp_path / "out" / "inv1" / "inv1.0" / "artifacts"
    assert "sk-abcdefghijklmnopqrstuvwxyz012345" not in (staged / "run_config.yml").read_text()
    source = tmp_path / "job" / "artifacts" / "results.yml"
    assert os.stat(staged / "results.yml").st_mtime_ns == os.stat(source).st_mtime_ns


def test_a_job_that_fails_while_staged_leaves_no_folder_and_names_the_file_the_user_knows(tmp_path):
    job = _job(tmp_path / "job")
    (job / "artifacts" / "run_config.yml").unlink()
    sink = LocalSink({"output_dir": tmp_path / "out"})
    [outcome] = sink.export([_item(job)])
    assert outcome.status is Status.FAILED
    assert str(job / "artifacts" / "run_config.yml") in outcome.reason
    assert ".partial" not in outcome.reason
    assert list((tmp_path / "out" / "inv1").iterdir()) == []


def test_a_folder_made_by_another_export_meanwhile_is_staged_into_in_place(tmp_path, monkeypatch):
    job = _job(tmp_path / "job")
    out = tmp_path / "out"
    real_publish = local_files.publish_twin

    def someone_else_first(twin: Path, job_dir: Path) -> bool:
        job_dir.mkdir()
        (job_dir / "theirs.txt").write_text("another export's file\n")
        return real_publish(twin, job_dir)

    monkeypatch.setattr(local_files, "publish_twin", someone_else_first)
    [outcome] = LocalSink({"output_dir": out}).export([_item(job)])
    assert outcome.status is Status.EXPORTED
    assert _names(out / "inv1") == {
        "inv1.0",
        "inv1.0/theirs.txt",
        "inv1.0/result.json",
        "inv1.0/artifacts",
        "inv1.0/artifacts/results.yml",
        "inv1.0/artifacts/run_config.yml",
    }


def test_an_existing_jobs_folder_is_updated_file_by_file(tmp_path):
    job = _job(tmp_path / "job")
    out = tmp_path / "out"
    sink = LocalSink({"output_dir": out})
    sink.export([_item(job)])
    mine = out / "inv1" / "inv1.0" / "notes.txt"
    mine.write_text("kept\n")
    (job / "artifacts" / "results.yml").write_text("results: {changed: 1}\n")
    [outcome] = LocalSink({"output_dir": out}).export([_item(job)])
    assert outcome.status is Status.UPDATED
    assert mine.read_text() == "kept\n"
    assert (out / "inv1" / "inv1.0" / "artifacts" / "results.yml").read_text() == "results: {changed: 1}\n"


def test_staging_into_a_private_folder_writes_each_file_at_its_name(tmp_path):
    job = _job(tmp_path / "job", secret=True)
    into = tmp_path / "private"
    into.mkdir()
    result = stage_item(_item(job), into, private=True)
    assert result.changed == 2
    assert _names(into) == {"artifacts", "artifacts/results.yml", "artifacts/run_config.yml"}
    assert "sk-abcdefghijklmnopqrstuvwxyz012345" not in (into / "artifacts" / "run_config.yml").read_text()


@pytest.mark.parametrize("private", [False, True])
def test_a_link_a_fifo_and_a_vanished_file_are_told_apart_the_same_into_either_folder(tmp_path, private):
    job = _job(tmp_path / "job")
    (job / "artifacts" / "run_config.yml").unlink()
    os.symlink("/etc/passwd", job / "artifacts" / "run_config.yml")
    os.mkfifo(job / "artifacts" / "pipe")
    into = tmp_path / "into"
    into.mkdir()
    item = _item(job)
    item = ExportItem(item.result, job, artifacts=("results.yml", "run_config.yml", "pipe"))
    result = stage_item(item, into, private=private)
    assert result.files == ("artifacts/results.yml",)
    assert dict(result.withheld) == {
        "artifacts/run_config.yml": "a symbolic link (not followed)",
        "artifacts/pipe": "a FIFO, not a regular file",
    }
    assert _names(into) == {"artifacts", "artifacts/results.yml"}
    (job / "artifacts" / "results.yml").unlink()
    with pytest.raises(FileNotFoundError):
        stage_item(item, tmp_path / "other", private=private)
