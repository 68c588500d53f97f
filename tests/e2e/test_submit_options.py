"""`auto-export --submit` without a cluster: what reaches sbatch, and what is refused before it runs.

The cluster itself is exercised in test_slurm_submit.py; here ``$EVALPORT_SBATCH`` names a small
script that records its arguments and stdin and prints a job id, as ``sbatch --parsable`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evalport.app.submit import SubmitOptions, batch_script

HOSTILE = ["it's", "$(touch pwned)", "a b", "`id`", "x;y", '"q"', "\\n", "*"]


def test_every_word_of_the_batch_script_reaches_the_command_exactly_as_given(tmp_path):
    options = SubmitOptions(evalport_command=("printf", "%s\\n"))
    script = batch_script(options, HOSTILE, "123")
    proc = subprocess.run(
        ["sh", "-s"], input=script, capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == HOSTILE
    assert not (tmp_path / "pwned").exists()


@pytest.fixture
def sbatch(tmp_path, monkeypatch):
    """A stand-in sbatch: records argv and the script, prints job id 4242."""
    calls = tmp_path / "sbatch-calls"
    fake = tmp_path / "sbatch"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {calls}.args\ncat > {calls}.script\necho 4242\n')
    fake.chmod(0o755)
    monkeypatch.setenv("EVALPORT_SBATCH", str(fake))
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    return calls


def _with_auto_export(job_dir: Path, auto: dict) -> None:
    meta = job_dir / "artifacts" / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    doc["launcher_resolved_config"]["execution"].update(auto)
    meta.write_text(yaml.safe_dump(doc))


def submit(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "auto-export", "--submit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_run_configs_submit_block_and_the_launchers_keys_reach_sbatch_and_flags_win(
    home, sbatch, tmp_path
):
    job = home.jobs[0]
    _with_auto_export(
        job.directory,
        {
            "account": "launcher-account",
            "cpu_partition": "cpu-from-launcher",
            "auto_export": {
                "destinations": ["local"],
                "configs": {"local": {"output_dir": str(tmp_path / "o")}},
                "submit": {"time": "00:10:00", "sbatch_args": ["--mem=2G"]},
            },
        },
    )
    run = submit("--job-dir", job.directory, "--partition", "cpu", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["export_job"] == "4242"
    args = Path(f"{sbatch}.args").read_text().splitlines()
    assert "--dependency=afterok:777" in args and "--kill-on-invalid-dep=yes" in args
    assert "--partition=cpu" in args, "the flag wins over execution.cpu_partition"
    assert {"--time=00:10:00", "--account=launcher-account", "--mem=2G"} <= set(args)
    script = Path(f"{sbatch}.script").read_text()
    assert f"auto-export --job-dir {job.directory}" in script and "--submit" not in script
    record = json.loads((job.directory / "logs" / "evalport-export.json").read_text())
    assert record["eval_job"] == "777" and record["export_job"] == "4242"


def test_submit_outside_a_slurm_job_without_after_is_a_usage_error(home, sbatch, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID")
    run = submit("--job-dir", home.jobs[0].directory)
    assert run.returncode == 2 and "--after JOBID" in run.stderr
    assert not Path(f"{sbatch}.args").exists()


def test_a_destination_that_would_write_a_local_mlflow_store_is_refused_before_submitting(
    home, sbatch, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    job = home.jobs[0]
    _with_auto_export(job.directory, {"auto_export": {"destinations": ["mlflow"]}})
    run = submit("--job-dir", job.directory, "--after", "55")
    assert run.returncode == 2 and "tracking_uri" in run.stderr
    assert not Path(f"{sbatch}.args").exists(), "nothing was submitted"


def test_an_unknown_key_in_the_submit_block_is_a_configuration_error(home, sbatch):
    job = home.jobs[0]
    _with_auto_export(
        job.directory, {"auto_export": {"destinations": ["local"], "submit": {"partiton": "x"}}}
    )
    run = submit("--job-dir", job.directory)
    assert run.returncode == 2 and "'partiton'" in run.stderr and "sbatch_args" in run.stderr


def test_sbatch_missing_is_exit_3_with_a_line_not_a_traceback(home, sbatch, monkeypatch, tmp_path):
    monkeypatch.setenv("EVALPORT_SBATCH", str(tmp_path / "no-such-sbatch"))
    job = home.jobs[0]
    _with_auto_export(job.directory, {"auto_export": {"destinations": ["local"]}})
    run = submit("--job-dir", job.directory)
    assert run.returncode == 3 and "not found" in run.stderr and "Traceback" not in run.stderr


def check(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "auto-export", "--check", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_names_the_log_of_an_export_job_that_failed(home, sbatch, monkeypatch, tmp_path):
    job = home.jobs[0]
    _with_auto_export(job.directory, {"auto_export": {"destinations": ["local"]}})
    assert submit("--job-dir", job.directory, "--sbatch-arg=--output=/logs/x-%j.out").returncode == 0
    sacct = tmp_path / "sacct"
    sacct.write_text(
        "#!/bin/sh\necho '777|COMPLETED|0:0|2026-01-01T00:00:00|2026-01-01T00:01:00'\necho '4242|FAILED|3:0|2026-01-01T00:01:00|2026-01-01T00:01:09'\n"
    )
    sacct.chmod(0o755)
    monkeypatch.setenv("EVALPORT_SACCT", str(sacct))
    run = check("--job-dir", job.directory, "--json")
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["status"] == "failed" and report["log"] == "/logs/x-4242.out"
    assert "ended FAILED (exit 3:0)" in report["message"]


def test_check_without_a_submission_is_a_usage_error(home):
    run = check("--job-dir", home.jobs[0].directory)
    assert run.returncode == 2 and "no export job was submitted" in " ".join(run.stderr.split())
