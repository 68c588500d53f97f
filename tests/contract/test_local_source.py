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


# ---- results roots searched like the launcher's job_dirs ------------------------------------------------
def results_root(home):
    return home.jobs[0].directory.parent.parent


class TestLocalSourceFromSearchRoots(SourceContract):
    """The launcher's ``job_dirs``: a results root searched for invocations, without the DB."""

    @pytest.fixture
    def make_source(self, tmp_path):
        return lambda home: LocalSource(tmp_path / "no-such-db.jsonl", search_roots=[results_root(home)])

    def break_job(self, home, job_id):
        import shutil

        shutil.rmtree(home.job(job_id).directory / "artifacts")


def test_a_searched_invocation_gets_the_ids_the_execution_db_would_have_given(tmp_path):
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 3)
    source = LocalSource(tmp_path / "no-db.jsonl", search_roots=[results_root(home)])
    jobs, errors = source.resolve([home.invocation_ids[0]])
    assert errors == []
    assert [(j.job_id, j.task_name) for j in jobs] == [(w.job_id, w.task) for w in home.jobs]
    assert all(j.config["evaluation"]["tasks"] for j in jobs)


def test_old_job_folders_named_by_the_task_alone_are_numbered_by_the_run_config(tmp_path):
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 3)
    for written in home.jobs:
        written.directory.rename(written.directory.with_name(written.task))
    source = LocalSource(tmp_path / "no-db.jsonl", search_roots=[results_root(home)])
    jobs, errors = source.resolve([home.jobs[2].job_id])
    assert errors == []
    assert [(j.job_id, j.task_name) for j in jobs] == [(home.jobs[2].job_id, home.jobs[2].task)]


def test_the_execution_db_is_asked_first_and_the_roots_only_for_what_it_does_not_know(tmp_path):
    import shutil

    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 2, 1)
    copy_root = tmp_path / "copies"
    copy_root.mkdir()
    for written in home.jobs:
        shutil.copytree(written.directory.parent, copy_root / written.directory.parent.name)
    lines = home.exec_db.read_text().splitlines()
    home.exec_db.write_text(lines[0] + "\n")
    source = LocalSource(home.exec_db, search_roots=[copy_root])
    jobs, errors = source.resolve(home.invocation_ids)
    assert errors == []
    where = {j.job_id: j.location.path for j in jobs}
    assert where[home.jobs[0].job_id] == str(home.jobs[0].directory)
    assert where[home.jobs[1].job_id].startswith(str(copy_root))


def test_an_id_in_two_folders_under_the_roots_is_a_usage_error_naming_both(tmp_path):
    import shutil

    from evalport.domain.errors import UsageError
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 1)
    inv_dir = home.jobs[0].directory.parent
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        shutil.copytree(inv_dir, root / inv_dir.name)
    source = LocalSource(tmp_path / "no-db.jsonl", search_roots=roots)
    with pytest.raises(UsageError) as raised:
        source.resolve([home.invocation_ids[0]])
    assert str(roots[0] / inv_dir.name) in str(raised.value) and str(roots[1] / inv_dir.name) in str(
        raised.value
    )


def test_an_id_under_no_root_is_unknown_and_the_error_names_the_roots(tmp_path):
    from evalport.domain.errors import UnknownIdError
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 1)
    source = LocalSource(tmp_path / "no-db.jsonl", search_roots=[results_root(home)])
    jobs, errors = source.resolve(["ffffffffffffffff"])
    assert jobs == [] and isinstance(errors[0], UnknownIdError)
    assert str(results_root(home)) in str(errors[0])


def test_a_root_that_does_not_exist_is_named_as_such_in_the_unknown_id_error(tmp_path):
    source = LocalSource(tmp_path / "no-db.jsonl", search_roots=[tmp_path / "typo"])
    _, errors = source.resolve(["629f6fbed82c07cd"])
    assert f"{tmp_path / 'typo'} (no such directory)" in str(errors[0])
