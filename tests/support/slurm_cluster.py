"""The test cluster started by tests/infra/cluster-up.sh: a real sshd and a real single-node Slurm.

Remote paths: the test process runs as root on the cluster's own machine and could read any job
directory directly, which would make the slurm source take its on-cluster fast path instead of
SSH. cluster-up.sh therefore runs sshd and slurmd in private mount namespaces in which
``$STATE/lustre`` is a bind mount of ``$STATE/cluster-fs``; here (outside those namespaces)
``$STATE/lustre`` is an empty read-only folder. The execution DB records name paths under
``remote_root`` (valid only through ssh and inside batch jobs, like a cluster's /lustre seen from a
laptop), while the tests prepare and inspect files through ``fs`` (the same files, seen from here).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evalport.testing.factory import LauncherHome, append_records

STATE_DIR = Path(os.environ.get("EVALPORT_CLUSTER_DIR", "/tmp/evalport-cluster"))
ENV_FILE = STATE_DIR / "env.sh"


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


@dataclass
class Cluster:
    env: dict[str, str]

    @property
    def host(self) -> str:
        return self.env["EVALPORT_CLUSTER_HOST"]

    @property
    def user(self) -> str:
        return self.env["EVALPORT_CLUSTER_USER"]

    @property
    def ssh_config(self) -> str:
        return self.env["EVALPORT_SSH_CONFIG"]

    @property
    def ssh_options(self) -> list[str]:
        return shlex.split(self.env["EVALPORT_SSH_OPTIONS"])

    @property
    def fs(self) -> Path:
        """The test user's folder on the cluster file system, as seen by this process."""
        return Path(self.env["EVALPORT_CLUSTER_FS"]) / self.user

    @property
    def remote_root(self) -> str:
        """The same folder as jobs and ssh sessions see it (not readable from here)."""
        return f"{self.env['EVALPORT_CLUSTER_REMOTE_ROOT']}/{self.user}"

    def remote_path(self, local: Path) -> str:
        return f"{self.remote_root}/{Path(local).relative_to(self.fs)}"

    def ssh(self, command: str, *, input: bytes | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            ["ssh", "-F", self.ssh_config, "-o", "BatchMode=yes", self.host, command],
            input=input or b"",
            capture_output=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"ssh {command!r} failed ({proc.returncode}): {proc.stderr.decode()}")
        return proc.stdout.decode()

    def give_to_user(self, path: Path) -> None:
        subprocess.run(["chown", "-R", f"{self.user}:", str(path)], check=True)

    def new_folder(self, prefix: str = "t") -> Path:
        folder = self.fs / f"{prefix}-{uuid.uuid4().hex[:10]}"
        folder.mkdir(parents=True)
        self.give_to_user(folder)
        return folder

    # -- putting launcher homes on the cluster --------------------------------------------------
    def put_home(self, home: LauncherHome, exec_db: Path, slurm_ids: dict[str, str] | None = None) -> Path:
        """Copies ``home``'s job dirs onto the cluster and writes slurm records for them to ``exec_db``.

        Jobs whose directory is gone locally (a contract test broke them) get a record pointing at a
        remote path that does not exist. ``slurm_ids`` maps job ids to Slurm job ids; the others get
        ids no Slurm job has, so their states come from the markers.
        """
        folder = self.new_folder("home")
        results_root = home.root / "nel-results"
        if results_root.exists():
            shutil.copytree(results_root, folder / "nel-results", symlinks=True)
        self.give_to_user(folder)
        exec_db.unlink(missing_ok=True)
        records = []
        for n, job in enumerate(home.jobs):
            remote = self.remote_path(folder / "nel-results" / job.directory.relative_to(results_root))
            records.append(
                self.slurm_record(job.record, remote, (slurm_ids or {}).get(job.job_id, str(9_000_000 + n)))
            )
        append_records(exec_db, records)
        return folder

    def slurm_record(self, record: dict[str, Any], remote_path: str, slurm_id: str) -> dict[str, Any]:
        rec = json.loads(json.dumps(record))
        rec["executor"] = "slurm"
        rec["data"] = {
            "slurm_job_id": slurm_id,
            "remote_rundir_path": remote_path,
            "hostname": self.host,
            "username": self.user,
        }
        rec["config"]["execution"] = {"type": "slurm", "hostname": self.host, "username": self.user}
        return rec

    # -- slurm ----------------------------------------------------------------------------------
    def sbatch(self, script: str, *, name: str = "evalport-test") -> str:
        out = self.ssh(
            f"sbatch --parsable --job-name={shlex.quote(name)} -o /dev/null", input=script.encode()
        )
        return out.strip().split(";")[0]

    def sacct_states(self, ids: Iterable[str]) -> dict[str, str]:
        out = self.ssh("sacct -X -n -P -o JobID,State -j " + ",".join(ids))
        return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)

    def wait_for_states(self, wanted: dict[str, Sequence[str]], timeout: float = 60) -> dict[str, str]:
        """Polls sacct until each job is in one of its wanted states (sacct lags ~1.5 s)."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.sacct_states(wanted)
            if all(states.get(i, "").split(" ")[0] in ok for i, ok in wanted.items()):
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"slurm jobs did not reach {wanted}: {states}")
            time.sleep(0.3)


def load_cluster() -> Cluster | None:
    return Cluster(read_env_file(ENV_FILE)) if ENV_FILE.is_file() else None


@pytest.fixture(scope="session", name="slurm_cluster")
def slurm_cluster_fixture() -> Cluster:
    cluster = load_cluster()
    if cluster is None:
        pytest.skip(
            f"no test cluster: {ENV_FILE} is absent; run `bash tests/infra/cluster-up.sh` "
            "(CI runs it from .ci/setup.d/20-cluster.sh)"
        )
    return cluster


@pytest.fixture(name="ssh_env")
def ssh_env_fixture(slurm_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """Points SlurmSource (built by the CLI) at the test sshd through its environment variables."""
    monkeypatch.setenv("EVALPORT_SSH_CONFIG", slurm_cluster.ssh_config)
    monkeypatch.delenv("EVALPORT_SSH_OPTIONS", raising=False)
    return slurm_cluster
