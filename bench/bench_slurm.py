"""Staging N slurm jobs (3 files each) from the test cluster's sshd: one tar stream vs one scp per file.

The reference exporter copies each required file with its own ``scp``; the slurm source lists the
jobs in one call and streams every chosen file in one ``tar`` over one multiplexed connection.
Needs the test cluster (``bash tests/infra/cluster-up.sh``). Run:

    python bench/bench_slurm.py [--jobs 200]

``scp (multiplexed)`` reuses one ControlMaster connection, the best case for per-file copies;
``scp (reference)`` opens a connection per file, as the reference exporter does without a
ControlMaster in the user's ssh config.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalport.adapters.sources.slurm import SlurmSource
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.ports import StagedJob
from tests.support.slurm_cluster import load_cluster

FILES = ("results.yml", "run_config.yml", "metadata.yaml")


def write_jobs(cluster, count: int) -> tuple[Path, list[dict]]:
    folder = cluster.new_folder("bench")
    records = []
    for i in range(count):
        job_dir = folder / "nel-results" / "20260101_000000-00000000bench000" / f"task{i}.{i}"
        (job_dir / "artifacts").mkdir(parents=True)
        (job_dir / "artifacts" / "results.yml").write_text(
            f"results:\n  tasks:\n    task{i}:\n      metrics:\n        acc:\n          scores:\n"
            f"            acc:\n              value: {i / count}\n"
        )
        (job_dir / "artifacts" / "run_config.yml").write_text(
            "framework_name: bench\nconfig: {type: task}\ntarget: {api_endpoint: {model_id: m}}\n"
            + "#" * 2000
        )
        (job_dir / "artifacts" / "metadata.yaml").write_text("versioning: {}\n" + "#" * 4000)
        record = {
            "invocation_id": "00000000bench000",
            "job_id": f"00000000bench000.{i}",
            "timestamp": 1767225600.0,
            "executor": "local",
            "config": {"execution": {}},
        }
        records.append(cluster.slurm_record(record, cluster.remote_path(job_dir), str(9_500_000 + i)))
    cluster.give_to_user(folder)
    return folder, records


def bench_tar(cluster, exec_db: Path, count: int) -> float:
    source = SlurmSource(exec_db, ssh_options=["-F", cluster.ssh_config])
    jobs = source.list_jobs()
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        staged = source.stage(jobs, ArtifactPolicy(only_required=True), Path(work))
        source.close()
        elapsed = time.perf_counter() - start
        ok = [s for s in staged.values() if isinstance(s, StagedJob)]
        assert len(ok) == count, [str(s) for s in staged.values() if not isinstance(s, StagedJob)][:3]
        assert all(sorted(p.name for p in (s.directory / "artifacts").iterdir()) == sorted(FILES) for s in ok)
    return elapsed


def bench_scp(cluster, records: list[dict], multiplexed: bool) -> float:
    base = ["scp", "-q", "-F", cluster.ssh_config, "-o", "BatchMode=yes"]
    control = None
    if multiplexed:
        control = tempfile.mkdtemp(prefix="evp-b", dir="/tmp")
        base += ["-o", f"ControlPath={control}/%C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60"]
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        for rec in records:
            local = Path(work) / rec["job_id"] / "artifacts"
            local.mkdir(parents=True)
            for name in FILES:
                remote = (
                    f"{rec['data']['username']}@{rec['data']['hostname']}:{rec['data']['remote_rundir_path']}"
                )
                subprocess.run([*base, f"{remote}/artifacts/{name}", str(local / name)], check=True)
        elapsed = time.perf_counter() - start
    if control:
        subprocess.run(
            ["ssh", "-F", cluster.ssh_config, "-o", f"ControlPath={control}/%C", "-O", "exit", cluster.host],
            capture_output=True,
        )
        shutil.rmtree(control, ignore_errors=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    cluster = load_cluster()
    if cluster is None:
        sys.exit("no test cluster: run `bash tests/infra/cluster-up.sh` first")
    folder, records = write_jobs(cluster, args.jobs)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            exec_db = Path(tmp) / "exec.jsonl"
            exec_db.write_text("".join(json.dumps(r) + "\n" for r in records))
            tar = bench_tar(cluster, exec_db, args.jobs)
            scp_mux = bench_scp(cluster, records, multiplexed=True)
            scp_ref = bench_scp(cluster, records, multiplexed=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    files = args.jobs * len(FILES)
    print(f"staging {args.jobs} jobs x {len(FILES)} files ({files} files) from 127.0.0.1 sshd")
    print(f"  one tar stream (slurm source, incl. connect + listing): {tar:7.2f} s")
    print(
        f"  one scp per file, multiplexed connection:               {scp_mux:7.2f} s  ({scp_mux / tar:5.1f}x)"
    )
    print(
        f"  one scp per file, new connection each (reference):      {scp_ref:7.2f} s  ({scp_ref / tar:5.1f}x)"
    )


if __name__ == "__main__":
    main()
