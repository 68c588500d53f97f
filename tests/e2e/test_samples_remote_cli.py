"""``evalport export --job-dir <lm-eval output> --dest mlflow|wandb -o samples=...`` end to end:
the real example's samples reach MLflow (table and traces) and W&B (offline), a re-export of
changed samples replaces them, and the note on what was cut reaches the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalport.adapters.formats.detect import reader
from evalport.app.cli import main
from tests.contract.test_wandb_sink import wandb_env  # noqa: F401 - autouse: offline W&B, no credentials
from tests.support.mlflow_samples import job_traces

DATA = Path(__file__).resolve().parents[1] / "data" / "harnesses"
NO_DB = "/nonexistent/exec.v1.jsonl"


@pytest.fixture(autouse=True)
def _own_state(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALPORT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def lm_eval(tmp_path) -> Path:
    return Path(shutil.copytree(DATA / "lm_eval" / "run-suite", tmp_path / "lm-eval-out"))


def export(capsys, folder: Path, dest: str, *options: str) -> tuple[int, str]:
    args = ["export", "--job-dir", str(folder), "--dest", dest, "--exec-db", NO_DB, "--json"]
    for option in options:
        args += ["-o", option]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def sampled_jobs(folder: Path) -> dict[str, list]:
    return {r.job_id: list(r.samples()) for r in reader("lm_eval").read(folder) if r.samples is not None}


def rewrite_one_samples_file(folder: Path) -> None:
    """The tiny_gen samples file with only its first line (a re-run that kept fewer samples)."""
    path = sorted(folder.glob("samples_tiny_gen_*.jsonl"))[0]
    path.write_text(path.read_text("utf-8").splitlines()[0] + "\n", "utf-8")


def test_mlflow_table_from_the_command_line_and_replaced_after_the_files_change(capsys, tmp_path, lm_eval):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out = export(capsys, lm_eval, "mlflow", f"tracking_uri={uri}", "samples=table")
    assert code == 0, out
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("evalport")

    def tables() -> dict[str, list]:
        found = {}
        for run in client.search_runs([experiment.experiment_id]):
            listed = json.loads(run.data.tags.get("mlflow.loggedArtifacts", "[]"))
            for entry in listed:
                local = client.download_artifacts(run.info.run_id, entry["path"], str(tmp_path / "dl"))
                found[run.data.tags["job_id"]] = json.loads(Path(local).read_text("utf-8"))["data"]
        return found

    expected = sampled_jobs(lm_eval)
    assert {job: len(rows) for job, rows in tables().items()} == {j: len(s) for j, s in expected.items()}
    rewrite_one_samples_file(lm_eval)
    code, out = export(capsys, lm_eval, "mlflow", f"tracking_uri={uri}", "samples=table")
    assert code == 0, out
    expected = sampled_jobs(lm_eval)
    assert {job: len(rows) for job, rows in tables().items()} == {j: len(s) for j, s in expected.items()}
    assert min(len(s) for s in expected.values()) == 1


def test_mlflow_traces_from_the_command_line_with_max_samples_noted(capsys, tmp_path, lm_eval):
    from evalport.adapters.sinks.mlflow import MlflowSink

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out = export(capsys, lm_eval, "mlflow", f"tracking_uri={uri}", "samples=traces", "max_samples=2")
    assert code == 0, out
    assert "max_samples" in out, "the outcome says samples were left out"
    sink = MlflowSink({"tracking_uri": uri})
    for job, samples in sampled_jobs(lm_eval).items():
        traces = job_traces(uri, sink, job)
        assert len(traces) == min(2, len(samples)), job


def test_wandb_table_from_the_command_line(capsys, tmp_path, lm_eval):
    from evalport.adapters.sinks.wandb_sink import WandbSink
    from tests.support.wandb_samples import read_table_samples

    root = tmp_path / "wandb-root"
    code, out = export(capsys, lm_eval, "wandb", f"dir={root}", "samples=table")
    assert code == 0, out
    sink = WandbSink({"dir": root})
    for result in reader("lm_eval").read(lm_eval):
        if result.samples is not None:
            stored = read_table_samples(sink, result)
            assert sorted(s.sample_id for s in stored) == sorted(s.id for s in result.samples())
