"""`evalport auto-export --submit` on the real Slurm of tests/infra: the export as its own CPU job.

Each evaluation job is a tiny batch script run as the cluster's unprivileged test user: it copies
a launcher job dir into its run dir, submits the export job (``--submit``, its id from
``$SLURM_JOB_ID``), then succeeds or exits 1. Batch jobs cannot read this process's Python (it
lives under /root), so the test copies evalport and the distributions it requires onto the
cluster file system and runs them with the cluster's python3 through ``--evalport-command``.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from evalport.testing.factory import WrittenJob, write_launcher_home
from tests.support.slurm_cluster import Cluster, slurm_cluster_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]

EVAL_SCRIPT = """#!/bin/sh
set -e
export PYTHONPATH={site} EVALPORT_STATE_DIR={state}
mkdir -p "$(dirname {run})"
cp -r {template} {run}
rm -f {run}/logs/stage.exit
python3 -m evalport.app.cli auto-export --submit --job-dir {run} --json \\
    --evalport-command {command} --time 00:05:00 > {run}/logs/submit.json
{tail}
"""
TAILS = {
    "succeeded": 'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) 0" > {run}/logs/stage.exit',
    "failed": 'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) 1" > {run}/logs/stage.exit; exit 1',
}


def _requirements(name: str, seen: set[str]) -> None:
    """The distributions ``name`` needs without extras, recursively (what a plain install brings)."""
    for req in importlib.metadata.distribution(name).requires or []:
        if "extra ==" in req:
            continue
        dep = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")
        if dep not in seen:
            seen.add(dep)
            _requirements(dep, seen)


def copy_runtime(site: Path) -> None:
    """evalport (this worktree's source) and its dependencies' files, as an unpacked site dir."""
    needed: set[str] = set()
    _requirements("evalport", needed)
    for name in sorted(needed):
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            rel = Path(str(file))
            if ".." in rel.parts or "__pycache__" in rel.parts:
                continue
            src = Path(str(dist.locate_file(file)))
            if src.is_file():
                (site / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, site / rel)
    shutil.copytree(ROOT / "src", site / "evalport", ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "evalport-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evalport\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(
        importlib.metadata.distribution("evalport").read_text("entry_points.txt") or ""
    )


@dataclass
class Submitted:
    job: WrittenJob
    run: Path  # the run dir as seen from here
    eval_id: str
    out: Path  # the local destination's folder, as seen from here


@dataclass
class Runtime:
    cluster: Cluster
    site: str  # remote path
    folder: Path

    def command(self) -> str:
        return f"env PYTHONPATH={shlex.quote(self.site)} python3 -m evalport.app.cli"

    def evalport(self, *args: str) -> subprocess.CompletedProcess:
        """evalport run on the cluster as the test user (a login node's view: sacct, the run dirs)."""
        line = f"{self.command()} {' '.join(shlex.quote(a) for a in args)}"
        return subprocess.run(
            ["ssh", "-F", self.cluster.ssh_config, "-o", "BatchMode=yes", self.cluster.host, line],
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="session")
def runtime(slurm_cluster: Cluster) -> Runtime:
    theirs = slurm_cluster.ssh("python3 -c 'import sys; print(sys.version_info[:2])'").strip()
    if theirs != str(sys.version_info[:2]):
        pytest.skip(
            f"the cluster's python3 is {theirs}, this one {sys.version_info[:2]}: cannot share wheels"
        )
    folder = slurm_cluster.new_folder("submit")
    copy_runtime(folder / "site")
    slurm_cluster.give_to_user(folder)
    return Runtime(slurm_cluster, slurm_cluster.remote_path(folder / "site"), folder)


def run_eval_job(runtime: Runtime, tmp_path: Path, kind: str) -> Submitted:
    cluster = runtime.cluster
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=1, seed=14)
    job = home.jobs[0]
    folder = cluster.new_folder(f"eval-{kind}")
    out = folder / "exported"
    meta = job.directory / "artifacts" / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    doc["launcher_resolved_config"]["execution"]["auto_export"] = {
        "destinations": ["local"],
        "configs": {"local": {"output_dir": cluster.remote_path(out)}},
        "submit": {"job_name": f"export-{kind}"},
    }
    meta.write_text(yaml.safe_dump(doc))
    rel = job.directory.relative_to(home.root / "nel-results")
    shutil.copytree(home.root / "nel-results", folder / "templates")
    cluster.give_to_user(folder)
    run = cluster.remote_path(folder / "nel-results" / rel)
    script = EVAL_SCRIPT.format(
        site=shlex.quote(runtime.site),
        state=shlex.quote(cluster.remote_path(folder / "state")),
        template=shlex.quote(cluster.remote_path(folder / "templates" / rel)),
        run=shlex.quote(run),
        command=shlex.quote(runtime.command()),
        tail=TAILS[kind].format(run=shlex.quote(run)),
    )
    eval_id = cluster.sbatch(script, name=f"evalport-eval-{kind}")
    return Submitted(job, folder / "nel-results" / rel, eval_id, out)


def submission(s: Submitted) -> dict:
    doc = json.loads((s.run / "logs" / "submit.json").read_text())
    assert doc["ok"] and doc["eval_job"] == s.eval_id, doc
    return doc


def test_after_a_successful_evaluation_the_dependent_cpu_job_runs_and_exports(runtime, tmp_path):
    s = run_eval_job(runtime, tmp_path, "succeeded")
    runtime.cluster.wait_for_states({s.eval_id: ["COMPLETED"]}, timeout=120)
    export_id = submission(s)["export_job"]
    states = runtime.cluster.wait_for_states({export_id: ["COMPLETED", "FAILED", "CANCELLED"]}, timeout=120)
    log = s.run / "logs" / f"evalport-export-{export_id}.log"
    assert states[export_id] == "COMPLETED", log.read_text() if log.exists() else states
    assert f"{s.job.job_id} -> local: exported" in log.read_text()
    runs = json.loads((s.out / "results.json").read_text())["runs"]
    assert [r["job_id"] for r in runs] == [s.job.job_id]
    record = json.loads((s.run / "logs" / "evalport-export.json").read_text())
    assert record["export_job"] == export_id and f"--dependency=afterok:{s.eval_id}" in record["sbatch"]
    assert "--job-name=export-succeeded" in record["sbatch"], "the run config's submit block applies"
    checked = runtime.evalport(
        "auto-export", "--check", "--job-dir", runtime.cluster.remote_path(s.run), "--json"
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["status"] == "exported"


def test_after_a_failed_evaluation_the_export_never_runs_and_the_check_says_so(runtime, tmp_path):
    s = run_eval_job(runtime, tmp_path, "failed")
    runtime.cluster.wait_for_states({s.eval_id: ["FAILED"]}, timeout=120)
    export_id = submission(s)["export_job"]
    runtime.cluster.wait_for_states({export_id: ["CANCELLED"]}, timeout=60)
    assert not (s.run / "logs" / f"evalport-export-{export_id}.log").exists(), "it never started"
    assert not s.out.exists()
    checked = runtime.evalport(
        "auto-export", "--check", "--job-dir", runtime.cluster.remote_path(s.run), "--json"
    )
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    assert report["status"] == "never_ran" and report["eval_state"] == "FAILED"
    assert f"export job {export_id} never ran" in report["message"] and s.eval_id in report["message"]
    plain = runtime.evalport("auto-export", "--check", "--job-dir", runtime.cluster.remote_path(s.run))
    assert plain.returncode == 1 and "never ran" in plain.stderr
