"""The slurm source against a real sshd and a real Slurm (tests/infra/cluster-up.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from evalport.adapters.sources.slurm import SlurmSource, query_slurm_states
from evalport.adapters.sources.ssh import RemoteRunner, SshTarget, SshTransport
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import ResultError
from evalport.domain.model import JobState, LocalLocation, RemoteLocation
from evalport.domain.ports import StagedJob
from evalport.testing import SourceContract
from evalport.testing.factory import append_records, write_launcher_home
from tests.support.slurm_cluster import slurm_cluster_fixture  # noqa: F401 (the fixture)


class TestSlurmSourceOverSsh(SourceContract):
    """Every job lives on the cluster; only ssh reaches it."""

    @pytest.fixture
    def make_source(self, slurm_cluster, tmp_path):
        sources = []

        def make(home):
            exec_db = tmp_path / f"exec-{len(sources)}.jsonl"
            slurm_cluster.put_home(home, exec_db)
            source = SlurmSource(exec_db, ssh_options=["-F", slurm_cluster.ssh_config])
            sources.append(source)
            return source

        yield make
        for source in sources:
            source.close()

    def test_the_jobs_are_remote_and_not_readable_here(self, make_source, home):
        jobs = make_source(home).list_jobs()
        assert all(isinstance(j.location, RemoteLocation) for j in jobs)
        assert not any(Path(j.location.path).exists() for j in jobs)


@pytest.fixture
def remote_home(slurm_cluster, tmp_path):
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=3, seed=5)
    exec_db = tmp_path / "exec.jsonl"
    folder = slurm_cluster.put_home(home, exec_db)
    source = SlurmSource(exec_db, ssh_options=["-F", slurm_cluster.ssh_config])
    yield home, exec_db, folder, source
    source.close()


def test_only_the_files_the_policy_asks_for_are_staged_and_never_secrets_or_caches(remote_home, tmp_path):
    home, _, _, source = remote_home
    jobs = source.list_jobs()
    staged = source.stage(jobs, ArtifactPolicy(only_required=True, copy_logs=False), tmp_path / "s1")
    got = staged[jobs[0].job_id]
    assert isinstance(got, StagedJob)
    files = sorted(str(p.relative_to(got.directory)) for p in got.directory.rglob("*") if p.is_file())
    assert files == [
        "artifacts/eval_factory_metrics.json",
        "artifacts/metadata.yaml",
        "artifacts/progress",
        "artifacts/results.yml",
        "artifacts/run_config.yml",
    ]
    everything = source.stage(jobs, ArtifactPolicy(only_required=False, copy_logs=True), tmp_path / "s2")
    directory = everything[jobs[0].job_id].directory
    names = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}
    assert "logs/client_stdout.log" in names and "logs/stage.exit" in names
    assert not any("cache" in n or n.endswith(".db") or "secrets" in n for n in names)
    written = home.job(jobs[0].job_id).directory / "artifacts" / "results.yml"
    assert (directory / "artifacts" / "results.yml").read_bytes() == written.read_bytes()
    assert (directory / "artifacts" / "results.yml").stat().st_mtime == pytest.approx(
        int(written.stat().st_mtime)
    )


def test_a_missing_job_fails_alone_with_its_remote_path_in_the_message(remote_home, tmp_path):
    home, _, folder, source = remote_home
    victim = home.jobs[1]
    subprocess.run(
        ["rm", "-rf", str(folder / "nel-results" / victim.directory.relative_to(home.root / "nel-results"))],
        check=True,
    )
    jobs = source.list_jobs()
    staged = source.stage(jobs, ArtifactPolicy(), tmp_path / "s")
    error = staged[victim.job_id]
    assert isinstance(error, ResultError)
    remote = next(j for j in jobs if j.job_id == victim.job_id).location.path
    assert victim.job_id in str(error) and remote in str(error) and "does not exist" in str(error)
    assert all(isinstance(staged[j.job_id], StagedJob) for j in jobs if j.job_id != victim.job_id)


def test_an_unreachable_host_fails_its_jobs_with_advice_and_others_still_stage(
    remote_home, tmp_path, slurm_cluster
):
    home, exec_db, _, _ = remote_home
    rec = slurm_cluster.slurm_record(home.jobs[0].record, "/nowhere/x.0", "1")
    rec["job_id"], rec["invocation_id"] = "00000000deadbeef.0", "00000000deadbeef"
    rec["data"]["hostname"] = "evalport-no-such-host.invalid"
    append_records(exec_db, [rec])
    source = SlurmSource(exec_db, ssh_options=["-F", slurm_cluster.ssh_config], connect_timeout=3)
    try:
        jobs = source.list_jobs()
        states = source.job_states(jobs)
        staged = source.stage(jobs, ArtifactPolicy(), tmp_path / "s")
    finally:
        source.close()
    assert states["00000000deadbeef.0"] is JobState.UNKNOWN
    assert any("evalport-no-such-host.invalid" in w for w in source.warnings)
    error = str(staged["00000000deadbeef.0"])
    assert "cannot reach" in error and "BatchMode" in error
    assert sum(isinstance(v, StagedJob) for v in staged.values()) == len(home.jobs)


def test_a_path_with_shell_metacharacters_runs_nothing_on_the_cluster(slurm_cluster, tmp_path):
    canary = f"/tmp/evalport-pwned-{uuid.uuid4().hex[:8]}"
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=1, seed=2)
    folder = slurm_cluster.new_folder("meta")
    nasty = f"a b;touch {canary};'q\"$(touch {canary})`touch {canary}`"
    target = folder / nasty
    shutil.copytree(home.jobs[0].directory, target)  # the "/"s in the name make nested folders
    slurm_cluster.give_to_user(folder)
    exec_db = tmp_path / "exec.jsonl"
    append_records(
        exec_db,
        [slurm_cluster.slurm_record(home.jobs[0].record, slurm_cluster.remote_path(target), "9999998")],
    )
    source = SlurmSource(exec_db, ssh_options=["-F", slurm_cluster.ssh_config])
    try:
        jobs = source.list_jobs()
        states = source.job_states(jobs)
        staged = source.stage(jobs, ArtifactPolicy(copy_logs=True), tmp_path / "s")
    finally:
        source.close()
    assert states[jobs[0].job_id] is JobState.SUCCEEDED
    assert isinstance(staged[jobs[0].job_id], StagedJob), staged
    assert not os.path.exists(canary)
    assert slurm_cluster.ssh(f"ls {canary} 2>/dev/null; true").strip() == ""


def test_on_the_cluster_itself_run_dirs_are_read_directly_without_ssh(slurm_cluster, tmp_path):
    """A record whose remote path is readable here is a local job: no ssh, even to a bogus host."""
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=2, seed=8)
    exec_db = tmp_path / "exec.jsonl"
    folder = slurm_cluster.put_home(home, exec_db)
    records = []
    for job in home.jobs:
        local = folder / "nel-results" / job.directory.relative_to(home.root / "nel-results")
        rec = slurm_cluster.slurm_record(job.record, str(local), "9999997")
        rec["data"]["hostname"] = "evalport-no-such-host.invalid"
        records.append(rec)
    exec_db.unlink()
    append_records(exec_db, records)
    source = SlurmSource(exec_db, ssh_options=["-o", "ProxyCommand=false"])
    try:
        jobs = source.list_jobs()
        assert all(isinstance(j.location, LocalLocation) for j in jobs)
        states = source.job_states(jobs)
        staged = source.stage(jobs, ArtifactPolicy(), tmp_path / "s")
    finally:
        source.close()
    assert set(states.values()) == {JobState.SUCCEEDED}
    assert all(isinstance(s, StagedJob) and s.directory.is_relative_to(folder) for s in staged.values())
    assert source.warnings == []


def test_ssh_options_come_from_the_environment(slurm_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("EVALPORT_SSH_OPTIONS", f"-F {slurm_cluster.ssh_config} -o ConnectTimeout=7")
    monkeypatch.delenv("EVALPORT_SSH_CONFIG", raising=False)
    source = SlurmSource(tmp_path / "none.jsonl")
    assert source.transport.options == ["-F", slurm_cluster.ssh_config, "-o", "ConnectTimeout=7"]
    monkeypatch.setenv("EVALPORT_SSH_CONFIG", "/etc/evalport-ssh-config")
    assert SlurmSource(tmp_path / "none.jsonl").transport.options[:2] == ["-F", "/etc/evalport-ssh-config"]


def test_close_shuts_the_master_connection_it_opened(remote_home):
    _, _, _, source = remote_home
    source.job_states(source.list_jobs())
    control_dir = source.transport._control_dir
    assert control_dir is not None and any(control_dir.iterdir())
    source.close()
    assert not control_dir.exists()


class _NoAccounting:
    """The cluster's own shell, as on a cluster whose accounting is off: sacct fails."""

    def __init__(self, runner: RemoteRunner) -> None:
        self.runner = runner

    def run(self, command: str, **kwargs):
        if command.startswith("sacct "):
            command = "echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1"
        return self.runner.run(command, **kwargs)


def test_without_accounting_states_come_from_scontrol(slurm_cluster):
    done = slurm_cluster.sbatch("#!/bin/sh\ntrue\n")
    failed = slurm_cluster.sbatch("#!/bin/sh\nexit 3\n")
    slurm_cluster.wait_for_states({done: ["COMPLETED"], failed: ["FAILED"]})
    transport = SshTransport(["-F", slurm_cluster.ssh_config])
    try:
        runner = RemoteRunner(transport, SshTarget(slurm_cluster.host, slurm_cluster.user))
        states = query_slurm_states(_NoAccounting(runner), [done, failed, "123456789"])
    finally:
        transport.close()
    assert states == {done: JobState.SUCCEEDED, failed: JobState.FAILED}


def test_the_remote_listing_never_walks_the_launchers_bulky_folders(tmp_path):
    """The listing script itself (run here by sh, as sshd runs it there) prunes every never-sent name."""
    from evalport.adapters.sources.slurm_staging import _LIST_SCRIPT

    job = tmp_path / "job"
    (job / "artifacts" / "preprocessed_datasets" / "deep").mkdir(parents=True)
    (job / "artifacts" / "preprocessed_datasets" / "deep" / "part-0.jsonl").write_text("{}\n")
    (job / "artifacts" / "Synthetic").mkdir()
    (job / "artifacts" / "Synthetic" / "gen.jsonl").write_text("{}\n")
    (job / "artifacts" / "evaluator_rollouts.jsonl").write_text("{}\n")
    (job / "artifacts" / "results.yml").write_text("results: {}\n")
    (job / "logs").mkdir()
    (job / "logs" / "debug.json").write_text("{}\n")
    (job / "logs" / "client_stdout.log").write_text("ok\n")
    out = subprocess.run(
        ["sh", "-c", _LIST_SCRIPT, "sh", "logs"], input=f"{job}\n".encode(), capture_output=True, check=True
    ).stdout
    fields = out.split(b"\0")
    assert fields[0] == b"J" and fields[-2:] == [b"E", b""]
    assert sorted(fields[2:-2]) == [b"artifacts/results.yml", b"logs/client_stdout.log"]
