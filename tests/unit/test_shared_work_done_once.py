"""Work the jobs of one invocation share is done once per export, with the same answers as per job:
the DB config they share is masked once and signed once, and the files a reader scanned are
fingerprinted from what it saw.

Real job directories and execution DB from the test factory.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from evalport.adapters.formats.nemo_evaluator import _read_chunk, read_task_result
from evalport.adapters.sinks.local import LocalSink, LocalSinkConfig
from evalport.adapters.sources.local import LocalSource
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.fingerprint import file_signatures, job_signature
from evalport.domain.model import JobState, TaskResult
from evalport.domain.ports import ExportItem
from evalport.domain.redact import redact
from evalport.testing.factory import write_launcher_home


def _jobs(tmp_path: Path, invocations: int = 2, tasks: int = 3) -> list:
    home = write_launcher_home(
        tmp_path / "launcher", invocations=invocations, tasks_per_invocation=tasks, seed=5
    )
    return LocalSource(home.exec_db).list_jobs()


def _requests(jobs: list) -> list:
    return [(job, Path(job.location.path), JobState.SUCCEEDED) for job in jobs]


def test_jobs_sharing_a_db_config_get_one_masked_copy_equal_to_masking_each(tmp_path):
    jobs = _jobs(tmp_path)
    results = _read_chunk(_requests(jobs), ArtifactPolicy())
    assert all(isinstance(r, TaskResult) for r in results)
    by_invocation: dict[str, list[TaskResult]] = {}
    for job, result in zip(jobs, results, strict=True):
        assert result.config == redact(job.config)
        by_invocation.setdefault(result.invocation_id, []).append(result)
    assert len(by_invocation) == 2
    for shared in by_invocation.values():
        assert len({id(r.config) for r in shared}) == 1
    first, second = (group[0].config for group in by_invocation.values())
    assert first is not second


def test_the_shared_masked_config_still_hides_the_secrets_of_the_db_config(tmp_path):
    jobs = _jobs(tmp_path, invocations=1, tasks=2)
    results = _read_chunk(_requests(jobs), ArtifactPolicy())
    text = json.dumps([r.config for r in results])
    assert "nvapi-very-secret" in json.dumps(jobs[0].config)
    assert "nvapi-very-secret" not in text and "hf_secret_token_value" not in text


def test_a_config_masked_for_one_chunk_is_not_reused_for_another_object_with_its_id(tmp_path):
    job = _jobs(tmp_path, invocations=1, tasks=1)[0]
    directory = Path(job.location.path)
    stale = {id(job.config): ({"another": "object"}, {"wrong": "answer"})}
    result = read_task_result(job, directory, JobState.SUCCEEDED, None, stale)
    assert result.config == redact(job.config)


def test_signing_many_jobs_with_a_memo_gives_each_the_signature_it_has_alone(tmp_path):
    jobs = _jobs(tmp_path)
    digests: dict = {}
    with_memo = [job_signature(j, "files", "reader", digests) for j in jobs]
    alone = [job_signature(j, "files", "reader") for j in jobs]
    assert with_memo == alone
    assert len(set(alone)) == len(jobs)
    assert len(digests) == 2  # one per invocation's shared config


def test_a_changed_db_config_changes_the_signature(tmp_path):
    job = _jobs(tmp_path, invocations=1, tasks=1)[0]
    changed = replace(job, config={**job.config, "deployment": {"type": "vllm"}})
    assert job_signature(job, "files", "reader") != job_signature(changed, "files", "reader")


def _item(result: TaskResult, directory: Path) -> ExportItem:
    policy = ArtifactPolicy()
    return ExportItem(
        result,
        directory,
        tuple(policy.select_artifacts(result.artifacts, result.result_files)),
        tuple(policy.select_logs(result.logs)),
    )


def test_the_files_a_reader_scanned_sign_as_an_lstat_of_them_does(tmp_path):
    job = _jobs(tmp_path, invocations=1, tasks=1)[0]
    directory = Path(job.location.path)
    item = _item(read_task_result(job, directory, JobState.SUCCEEDED, ArtifactPolicy()), directory)
    assert item.result.scans
    by_stat = []
    for rel in [f"artifacts/{a}" for a in item.artifacts]:
        st = os.lstat(directory / rel)
        by_stat.append((rel, st.st_size, st.st_mtime_ns))
    assert file_signatures(item) == by_stat


def test_a_file_rewritten_after_it_was_read_is_signed_as_it_was_read(tmp_path):
    job = _jobs(tmp_path, invocations=1, tasks=1)[0]
    directory = Path(job.location.path)
    result = read_task_result(job, directory, JobState.SUCCEEDED, ArtifactPolicy())
    read_size = os.lstat(directory / "artifacts" / "results.yml").st_size
    (directory / "artifacts" / "results.yml").write_text("results: {}\n")
    signed = dict((rel, size) for rel, size, _ in file_signatures(_item(result, directory)))
    assert signed["artifacts/results.yml"] == read_size
    unscanned = _item(replace(result, scans={}), directory)
    assert dict((r, s) for r, s, _ in file_signatures(unscanned))["artifacts/results.yml"] == len(
        "results: {}\n"
    )


def test_the_local_sinks_folder_follows_a_changed_output_dir(tmp_path):
    sink = LocalSink(LocalSinkConfig(output_dir=str(tmp_path / "a")))
    assert sink.output_dir == tmp_path / "a"
    sink.config.output_dir = tmp_path / "b"
    assert sink.output_dir == tmp_path / "b"
