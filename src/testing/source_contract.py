"""SourceContract: the behaviour every result source must show.

Subclass it and provide ``make_source(home) -> ResultSource``: a source that serves the jobs of the
launcher home the contract wrote (a local source reads it in place; a remote source would first
put the home on its host). Optionally override ``break_job(home, job)`` to make one job's files
unreachable for the staging test.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from evalport.adapters.formats.nemo_evaluator import read_task_result
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import AmbiguousIdError, EvalportError, UnknownIdError
from evalport.domain.model import JobState
from evalport.domain.ports import ResultSource, StagedJob
from evalport.domain.results import flatten_results
from evalport.testing.factory import LauncherHome, write_launcher_home


class SourceContract:
    @pytest.fixture
    def make_source(self) -> Callable[[LauncherHome], ResultSource]:
        raise NotImplementedError("provide make_source: (LauncherHome) -> ResultSource")

    @pytest.fixture
    def home(self, tmp_path: Path) -> LauncherHome:
        return write_launcher_home(tmp_path / "launcher", invocations=3, tasks_per_invocation=2, seed=11)

    def break_job(self, home: LauncherHome, job_id: str) -> None:
        shutil.rmtree(home.job(job_id).directory)

    def test_every_job_is_listed(self, make_source, home):
        source = make_source(home)
        assert sorted(j.job_id for j in source.list_jobs()) == sorted(j.job_id for j in home.jobs)

    def test_an_invocation_id_resolves_to_all_its_jobs_in_order(self, make_source, home):
        inv = home.invocation_ids[0]
        jobs, errors = make_source(home).resolve([inv])
        assert not errors
        assert [j.job_id for j in jobs] == [f"{inv}.0", f"{inv}.1"]

    def test_a_unique_prefix_and_a_job_id_resolve(self, make_source, home):
        inv = home.invocation_ids[1]
        prefix = next(
            inv[:n] for n in range(4, 17) if sum(i.startswith(inv[:n]) for i in home.invocation_ids) == 1
        )
        jobs, errors = make_source(home).resolve([prefix, f"{home.invocation_ids[0]}.1"])
        assert not errors
        assert [j.job_id for j in jobs] == [f"{inv}.0", f"{inv}.1", f"{home.invocation_ids[0]}.1"]

    def test_unknown_and_ambiguous_ids_are_errors_that_name_them(self, make_source, home):
        jobs, errors = make_source(home).resolve(["ffffffffffffffff", ""])
        assert jobs == []
        assert all(isinstance(e, UnknownIdError) for e in errors) and len(errors) == 2
        assert "ffffffffffffffff" in str(errors[0])
        shared = home.invocation_ids[0][:1]
        if sum(i.startswith(shared) for i in home.invocation_ids) > 1:
            _, errors = make_source(home).resolve([shared])
            assert isinstance(errors[0], AmbiguousIdError)

    def test_job_states_come_from_the_jobs_exit_markers(self, make_source, home):
        failed = home.jobs[1]
        (failed.directory / "logs" / "stage.exit").write_text("2026-01-01T00:00:00Z 1\n")
        source = make_source(home)
        states = source.job_states(source.list_jobs())
        assert states[failed.job_id] is JobState.FAILED
        assert states[home.jobs[0].job_id] is JobState.SUCCEEDED

    def test_staged_jobs_read_back_the_metrics_that_were_written(self, make_source, home, tmp_path):
        source = make_source(home)
        jobs = source.list_jobs()
        staged = source.stage(jobs, ArtifactPolicy(copy_logs=True), tmp_path / "stage")
        for job in jobs:
            got = staged[job.job_id]
            assert isinstance(got, StagedJob), got
            result = read_task_result(job, got.directory)
            written = flatten_results(home.job(job.job_id).results)
            assert result.flat_metrics() == {k: v for m in written for k, v in m.flat().items()}

    def test_a_job_whose_files_are_gone_fails_alone(self, make_source, home, tmp_path):
        broken = home.jobs[0].job_id
        self.break_job(home, broken)
        source = make_source(home)
        staged = source.stage(source.list_jobs(), ArtifactPolicy(), tmp_path / "stage")
        assert isinstance(staged[broken], EvalportError)
        assert broken in str(staged[broken])
        assert all(isinstance(v, StagedJob) for k, v in staged.items() if k != broken)
