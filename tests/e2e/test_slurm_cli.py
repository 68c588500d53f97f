"""`evalport export` of jobs that really ran under Slurm, fetched over a real sshd.

Three batch jobs run on the test cluster (tests/infra/cluster-up.sh) as the unprivileged test
user: one copies a launcher job dir into its run dir and succeeds, one does the same but exits 1
(writing `stage.exit` 1), one is cancelled while running. The execution DB points at their run
dirs under the cluster-only path, so the CLI's default source reaches them through ssh.
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalport.app.cli import main
from evalport.domain.results import flatten_results
from evalport.testing.factory import WrittenJob, append_records, write_launcher_home
from tests.support.slurm_cluster import Cluster, slurm_cluster_fixture, ssh_env_fixture  # noqa: F401

SCRIPT = """#!/bin/sh
set -e
mkdir -p "$(dirname {run})"
cp -r {template} {run}
rm -f {run}/logs/stage.exit
{tail}
"""
TAILS = {
    "succeeded": 'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) 0" > {run}/logs/stage.exit',
    "failed": 'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) 1" > {run}/logs/stage.exit; exit 1',
    "cancelled": "sleep 300",
}


@dataclass
class SlurmRun:
    exec_db: Path
    invocation_id: str
    jobs: dict[str, WrittenJob]  # by outcome: succeeded / failed / cancelled
    slurm_ids: dict[str, str]


@pytest.fixture(scope="session")
def slurm_run(slurm_cluster: Cluster, tmp_path_factory) -> SlurmRun:
    root = tmp_path_factory.mktemp("slurm-e2e")
    home = write_launcher_home(root / "launcher", invocations=1, tasks_per_invocation=3, seed=21)
    folder = slurm_cluster.new_folder("e2e")
    templates = folder / "templates"
    shutil.copytree(home.root / "nel-results", templates)
    slurm_cluster.give_to_user(folder)
    kinds = list(TAILS)
    records, slurm_ids, jobs = [], {}, {}
    for kind, job in zip(kinds, home.jobs, strict=True):
        rel = job.directory.relative_to(home.root / "nel-results")
        template = shlex.quote(slurm_cluster.remote_path(templates / rel))
        run = slurm_cluster.remote_path(folder / "nel-results" / rel)
        script = SCRIPT.format(
            template=template, run=shlex.quote(run), tail=TAILS[kind].format(run=shlex.quote(run))
        )
        slurm_ids[kind] = slurm_cluster.sbatch(script, name=f"evalport-{kind}")
        records.append(slurm_cluster.slurm_record(job.record, run, slurm_ids[kind]))
        jobs[kind] = job
    slurm_cluster.wait_for_states({slurm_ids["cancelled"]: ["RUNNING"]})
    slurm_cluster.ssh(f"scancel {slurm_ids['cancelled']}")
    slurm_cluster.wait_for_states(
        {
            slurm_ids["succeeded"]: ["COMPLETED"],
            slurm_ids["failed"]: ["FAILED"],
            slurm_ids["cancelled"]: ["CANCELLED"],
        }
    )
    exec_db = root / "exec.v1.jsonl"
    append_records(exec_db, records)
    return SlurmRun(exec_db, home.invocation_ids[0], jobs, slurm_ids)


def export(run: SlurmRun, capsys, *args: str) -> tuple[int, dict]:
    code = main(["export", run.invocation_id, *args, "--json", "--exec-db", str(run.exec_db)])
    out = capsys.readouterr().out
    return code, json.loads(out[out.index("{") :])


def written_metrics(job: WrittenJob) -> dict[str, float]:
    return {m.name: m.value for m in flatten_results(job.results)}


def outcomes_by_job(report: dict) -> dict[str, dict]:
    return {o["job_id"]: o for o in report["outcomes"]}


def test_the_succeeded_job_is_exported_to_local_files_and_the_others_skipped_with_their_reason(
    slurm_run, ssh_env, capsys, tmp_path
):
    out = tmp_path / "out"
    code, report = export(slurm_run, capsys, "--dest", "local", "--output-dir", str(out), "--copy-logs")
    assert code == 0, report
    by_job = outcomes_by_job(report)
    ok, failed, cancelled = (slurm_run.jobs[k] for k in ("succeeded", "failed", "cancelled"))
    assert by_job[ok.job_id]["status"] == "exported"
    assert by_job[failed.job_id]["status"] == "skipped" and "failed" in by_job[failed.job_id]["reason"]
    assert "--include-failed" in by_job[failed.job_id]["reason"]
    assert by_job[cancelled.job_id]["status"] == "skipped"
    assert "cancelled" in by_job[cancelled.job_id]["reason"]
    runs = {r["job_id"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert list(runs) == [ok.job_id]
    assert runs[ok.job_id]["metrics"] == written_metrics(ok)
    staged = out / ok.invocation_id / ok.job_id
    assert (staged / "artifacts" / "results.yml").read_bytes() == (
        ok.directory / "artifacts/results.yml"
    ).read_bytes()
    assert (staged / "logs" / "stage.exit").read_text().split()[-1] == "0"
    assert not any("cache" in str(p) or p.name == ".secrets.env" for p in staged.rglob("*"))


def test_the_jsonl_plugin_sink_gets_the_same_values_and_failed_jobs_with_include_failed(
    slurm_run, ssh_env, capsys, tmp_path
):
    path = tmp_path / "runs.jsonl"
    code, report = export(
        slurm_run, capsys, "--dest", "jsonl", "-o", f"export.jsonl.path={path}", "--include-failed"
    )
    assert code == 0, report
    assert {o["status"] for o in report["outcomes"]} == {"exported"}
    runs = [json.loads(line) for line in path.read_text().splitlines()]
    by_job = {run["jobs"][0]: run for run in runs}
    assert sorted(by_job) == sorted(j.job_id for j in slurm_run.jobs.values())
    for job in slurm_run.jobs.values():
        flat = {k: v for m in flatten_results(job.results) for k, v in m.flat().items()}
        assert by_job[job.job_id]["metrics"] == pytest.approx(flat)


def test_job_states_come_from_sacct(slurm_run, ssh_env):
    from evalport.adapters.sources.slurm import SlurmSource

    source = SlurmSource(slurm_run.exec_db)
    try:
        states = source.job_states(source.list_jobs())
    finally:
        source.close()
    assert {k: states[j.job_id].value for k, j in slurm_run.jobs.items()} == {
        "succeeded": "succeeded",
        "failed": "failed",
        "cancelled": "cancelled",
    }
