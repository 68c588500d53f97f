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
