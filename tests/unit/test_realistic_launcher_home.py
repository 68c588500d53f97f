"""The factory's realistic profile: launcher homes of the size benchmarks need, read by evalport."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from evalport.adapters.formats.nemo_evaluator import read_task_result
from evalport.adapters.sources.local import LocalSource
from evalport.testing.factory import write_launcher_home

ARTIFACTS = {"results.yml", "run_config.yml", "metadata.yaml", "eval_factory_metrics.json", "progress"}


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_launcher_home(tmp_path / "x", 3, 5, seed=seed, profile="realistic")
        (tmp_path / "x").rename(tmp_path / name)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


def test_each_job_has_the_launchers_five_artifacts_a_200_line_log_and_its_run_script(tmp_path):
    home = write_launcher_home(tmp_path, 4, 5, seed=0, profile="realistic")
    assert len(home.jobs) == 20
    for job in home.jobs:
        assert {p.name for p in (job.directory / "artifacts").iterdir()} == ARTIFACTS
        log = (job.directory / "logs" / "client_stdout.log").read_text()
        assert len(log.splitlines()) == 200 and 15_000 < len(log) < 22_000
        assert {"stage.pre-start", "stage.running", "stage.exit"} <= {
            p.name for p in (job.directory / "logs").iterdir()
        }
        assert (job.directory / "run.sh").read_text().startswith("#!/bin/bash")
        results = yaml.safe_load((job.directory / "artifacts" / "results.yml").read_text())
        assert {"command", "config", "target", "metadata", "results"} <= results.keys()
        assert results["metadata"]["versioning"]["nemo_evaluator_launcher"] == "0.2.6"
        metadata = yaml.safe_load((job.directory / "artifacts" / "metadata.yaml").read_text())
        assert metadata["launcher_resolved_config"]["target"]["api_endpoint"]["model_id"] == job.model_id
        assert metadata["launcher_command"].startswith("nemo-evaluator-launcher run")


def test_evalport_reads_every_job_with_one_to_ten_task_scores_as_written(tmp_path):
    home = write_launcher_home(tmp_path, 8, 5, seed=1, profile="realistic")
    jobs = {j.job_id: j for j in LocalSource(home.exec_db).list_jobs()}
    assert set(jobs) == {j.job_id for j in home.jobs}
    for written in home.jobs:
        result = read_task_result(jobs[written.job_id], written.directory)
        scores = written.task_scores()
        assert 1 <= len(scores) // 2 <= 10
        got = {m.name: m.value for m in result.metrics}
        assert {k: got.get(k) for k in scores if not k.endswith("_stderr")} == {
            k: v for k, v in scores.items() if not k.endswith("_stderr")
        }
