import json

import pytest

from evalport.adapters.sources.local import LocalSource
from evalport.testing import SourceContract


class TestLocalSourceFromExecDb(SourceContract):
    @pytest.fixture
    def make_source(self):
        return lambda home: LocalSource(home.exec_db)


class TestLocalSourceFromJobDirs(SourceContract):
    """Job directories given directly (no execution DB): invocation dirs expand to their jobs."""

    @pytest.fixture
    def make_source(self, tmp_path):
        def make(home):
            inv_dirs = sorted({j.directory.parent for j in home.jobs})
            return LocalSource(tmp_path / "no-such-db.jsonl", job_dirs=inv_dirs)

        return make

    def break_job(self, home, job_id):
        import shutil

        shutil.rmtree(home.job(job_id).directory / "artifacts")


def test_a_later_record_for_a_job_replaces_the_earlier_one(tmp_path):
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path, 1, 1)
    rec = dict(home.jobs[0].record)
    rec["data"] = {**rec["data"], "eval_image": "registry/image:v2"}
    with open(home.exec_db, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    (job,) = LocalSource(home.exec_db).list_jobs()
    assert job.data["eval_image"] == "registry/image:v2"


def test_corrupt_lines_are_skipped_with_a_warning_naming_the_line(tmp_path):
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path, 1, 2)
    lines = home.exec_db.read_text().splitlines()
    home.exec_db.write_text(lines[0] + "\n{not json\n" + '{"job_id": 5}\n' + lines[1] + "\n")
    source = LocalSource(home.exec_db)
    assert len(source.list_jobs()) == 2
    assert len(source.warnings) == 2
    assert f"{home.exec_db}:2" in source.warnings[0]


def read_first_job(home):
    from pathlib import Path

    from evalport.adapters.formats.nemo_evaluator import read_task_result
    from evalport.domain.model import JobState

    job = next(j for j in LocalSource(home.exec_db).list_jobs() if j.job_id == home.jobs[0].job_id)
    return read_task_result(job, Path(job.location.path), JobState.SUCCEEDED)


def test_a_logs_folder_that_is_a_symlink_lists_nothing_and_the_result_says_why(tmp_path):
    import shutil

    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 1)
    logs = home.jobs[0].directory / "logs"
    outside = tmp_path / "outside-logs"
    shutil.move(logs, outside)
    logs.symlink_to(outside, target_is_directory=True)
    result = read_first_job(home)
    assert result.logs == ()
    assert any("logs/ is a symbolic link" in note and str(outside) in note for note in result.notes)


def test_special_or_broken_optional_files_are_ignored_with_a_note(tmp_path):
    import os

    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 1)
    art = home.jobs[0].directory / "artifacts"
    (art / "eval_factory_metrics.json").unlink()
    os.mkfifo(art / "eval_factory_metrics.json")
    result = read_first_job(home)
    assert any("artifacts/eval_factory_metrics.json" in n and "FIFO" in n for n in result.notes)
    assert "eval_factory_metrics.json" not in result.artifacts


def test_a_job_dir_given_directly_with_an_unusable_metadata_file_still_reads_with_a_note(tmp_path):
    from evalport.adapters.formats.nemo_evaluator import read_task_result
    from evalport.adapters.sources.local import job_from_dir
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 1)
    directory = home.jobs[0].directory
    (directory / "artifacts" / "metadata.yaml").write_text("a: 1\na: 2\n")
    result = read_task_result(job_from_dir(directory), directory)
    assert result.config == {}
    assert any("metadata.yaml ignored: duplicate key 'a'" in n for n in result.notes)
