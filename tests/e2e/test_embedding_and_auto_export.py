"""Launchers embedding evalport: the Python API, a launcher's own source, and auto-export."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import evalport
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import UsageError
from evalport.domain.model import Job, JobState, LocalLocation
from evalport.domain.ports import ResultSource, StagedJob
from evalport.domain.report import ExportReport

ROOT = Path(__file__).resolve().parents[2]


def summary(out: Path) -> dict[str, dict]:
    return {r["job_id"]: r for r in json.loads((out / "results.json").read_text())["runs"]}


class InMemorySource:
    """A real ResultSource adapter that keeps its jobs in a list (what an embedding launcher writes)."""

    name = "in-memory"

    def __init__(self, jobs: list[Job], states: dict[str, JobState]) -> None:
        self.jobs = {j.job_id: j for j in jobs}
        self.states = states
        self.staged: list[list[str]] = []
        self.warnings: list[str] = []

    def list_jobs(self):
        return list(self.jobs.values())

    def resolve(self, ids: Sequence[str]):
        from evalport.domain.ids import resolve_ids

        found, errors = resolve_ids(ids, {j.invocation_id for j in self.jobs.values()}, self.jobs)
        return [self.jobs[j] for j in found], list(errors)

    def job_states(self, jobs):
        return {j.job_id: self.states[j.job_id] for j in jobs}

    def stage(self, jobs, policy: ArtifactPolicy, workdir: Path):
        self.staged.append([j.job_id for j in jobs])
        return {j.job_id: StagedJob(j, Path(j.location.path)) for j in jobs}

    def close(self):
        return None


def test_an_embedding_launcher_passes_its_own_source(home, tmp_path):
    jobs = [
        Job(w.job_id, w.invocation_id, w.task, "custom", LocalLocation(str(w.directory))) for w in home.jobs
    ]
    states = {j.job_id: JobState.SUCCEEDED for j in jobs}
    states[jobs[-1].job_id] = JobState.RUNNING
    source = InMemorySource(jobs, states)
    assert isinstance(source, ResultSource)
    report = evalport.export(home.invocation_ids, "local", {"output_dir": str(tmp_path / "o")}, source=source)
    assert isinstance(report, ExportReport)
    assert report.counts() == {"exported": 5, "skipped": 1}
    assert len(source.staged) == 1, "the source is asked to stage one batch, not one job at a time"
    assert sorted(summary(tmp_path / "o")) == sorted(j.job_id for j in jobs[:-1])


def test_the_reference_export_results_call_works_for_the_local_sink(home, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALPORT_EXEC_DB", str(home.exec_db))
    result = evalport.export_results(
        home.invocation_ids[0], "local", {"output_dir": str(tmp_path / "o"), "format": "json"}
    )
    assert result == {
        "success": True,
        "metadata": {"successful_jobs": 3, "failed_jobs": 0, "skipped_jobs": 0},
    }
    assert isinstance(result.report, ExportReport)
    # Code written when export_results returned the report keeps working: attributes are the report's.
    assert result.ok and result.counts() == {"exported": 3} and len(result.outcomes) == 3
    assert result.exit_code() == 0 and result.to_dict()["counts"] == {"exported": 3}
    # The launcher's files, as its callers read them after this call.
    combined = json.loads((tmp_path / "o" / "processed_results.json").read_text())
    entries = [e for task in combined["benchmarks"].values() for es in task["models"].values() for e in es]
    assert sorted(e["job_id"] for e in entries) == sorted(j.job_id for j in home.jobs[:3])


def test_export_results_writes_evalports_own_files_when_the_config_says_compat_evalport(
    home, tmp_path, monkeypatch
):
    monkeypatch.setenv("EVALPORT_EXEC_DB", str(home.exec_db))
    config = {"output_dir": str(tmp_path / "o"), "format": "json", "compat": "evalport"}
    assert evalport.export_results(home.invocation_ids[0], "local", config)["success"] is True
    assert len(summary(tmp_path / "o")) == 3
    assert not (tmp_path / "o" / "processed_results.json").exists()


def test_export_results_returns_the_launchers_error_dict_for_a_usage_error(home, monkeypatch):
    monkeypatch.setenv("EVALPORT_EXEC_DB", str(home.exec_db))
    result = evalport.export_results(home.invocation_ids[0], "nowhere")
    assert result["success"] is False and set(result["metadata"]) == {"error"}
    assert (
        result["metadata"]["error"].startswith("Export failed: ") and "nowhere" in result["metadata"]["error"]
    )
    assert isinstance(result.error, UsageError) and result.report is None
    with pytest.raises(AttributeError):
        result.counts()


def test_export_takes_compat_for_every_destination(home, tmp_path):
    out = tmp_path / "o"
    report = evalport.export(
        home.invocation_ids[0], "local", {"output_dir": str(out)}, exec_db=home.exec_db, compat="launcher"
    )
    assert report.counts() == {"exported": 3}
    assert (out / "processed_results.json").is_file() and not (out / "results.json").exists()


def test_the_reference_export_results_call_works_for_mlflow(home, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("EVALPORT_EXEC_DB", str(home.exec_db))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = evalport.export_results(
        list(home.invocation_ids), "mlflow", {"tracking_uri": uri, "experiment_name": "reference-call"}
    )
    assert result["success"] and result.ok, result.to_dict()
    assert result["metadata"]["successful_jobs"] == len(home.jobs)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("reference-call")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(home.jobs)


def test_export_raises_only_for_usage_errors(home):
    with pytest.raises(UsageError):
        evalport.export("ffffffffffffffff", "local", exec_db=home.exec_db)
    with pytest.raises(UsageError):
        evalport.export(home.invocation_ids[0], "nowhere", exec_db=home.exec_db)


def test_the_embedding_example_runs(home, tmp_path):
    spec = importlib.util.spec_from_file_location("my_launcher", ROOT / "examples/embedding/my_launcher.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    db = tmp_path / "jobs.sqlite"
    for w in home.jobs:
        example.record_job(db, w.job_id, w.task, w.directory, "failed" if w is home.jobs[0] else "succeeded")
    assert example.main([str(db), str(tmp_path / "o")]) == 0
    assert sorted(summary(tmp_path / "o")) == sorted(w.job_id for w in home.jobs[1:])


# ---- the export ledger ---------------------------------------------------------------------------
def test_the_ledger_skips_what_a_destination_already_holds_unless_forced(home, tmp_path):
    config = {"output_dir": str(tmp_path / "o")}
    first = evalport.export(home.invocation_ids[0], "local", config, exec_db=home.exec_db)
    assert first.counts() == {"exported": 3}
    second = evalport.export(home.invocation_ids[0], "local", config, exec_db=home.exec_db)
    assert second.counts() == {"unchanged": 3}
    assert all("ledger" in o.reason and "--force" in o.reason for o in second.outcomes)
    forced = evalport.export(home.invocation_ids[0], "local", config, exec_db=home.exec_db, force=True)
    assert all("ledger" not in o.reason for o in forced.outcomes)
    elsewhere = evalport.export(
        home.invocation_ids[0], "local", {"output_dir": str(tmp_path / "p")}, exec_db=home.exec_db
    )
    assert elsewhere.counts() == {"exported": 3}, "another output_dir is another target"


def test_history_shows_what_went_where(cli, home, tmp_path):
    cli("export", home.invocation_ids[0], "--output-dir", tmp_path / "o")
    run = cli("history", home.invocation_ids[0][:6], "--json", exec_db=False)
    rows = json.loads(run.out)
    assert sorted(r["job_id"] for r in rows) == [f"{home.invocation_ids[0]}.{i}" for i in range(3)]
    assert {r["status"] for r in rows} == {"exported"} and all(r["destination"] == "local" for r in rows)


# ---- auto-export ---------------------------------------------------------------------------------
def _with_auto_export(job_dir: Path, destinations: dict) -> None:
    import yaml

    meta = job_dir / "artifacts" / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    doc["launcher_resolved_config"]["execution"]["auto_export"] = {
        "destinations": list(destinations),
        "configs": destinations,
    }
    meta.write_text(yaml.safe_dump(doc))


def auto(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "auto-export", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_auto_export_sends_a_job_to_every_destination_its_run_config_names(home, tmp_path):
    job = home.jobs[0]
    _with_auto_export(
        job.directory,
        {"local": {"output_dir": str(tmp_path / "a")}, "jsonl": {"path": str(tmp_path / "runs.jsonl")}},
    )
    run = auto("--job-dir", job.directory)
    assert run.returncode == 0, run.stderr
    assert list(summary(tmp_path / "a")) == [job.job_id]
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 1 and job.job_id in lines[0]


def test_auto_export_does_not_export_a_failed_job(home, tmp_path):
    job = home.jobs[0]
    _with_auto_export(job.directory, {"local": {"output_dir": str(tmp_path / "a")}})
    run = auto("--job-dir", job.directory, "--exit-code", "1")
    assert run.returncode == 0
    assert "failed; not exported" in run.stdout
    assert not (tmp_path / "a").exists()


def test_a_destination_that_is_down_gives_the_distinct_exit_code_and_the_other_still_receives_the_job(
    home, tmp_path
):
    job = home.jobs[0]
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    _with_auto_export(
        job.directory,
        {"local": {"output_dir": str(tmp_path / "a")}, "jsonl": {"path": str(blocker / "runs.jsonl")}},
    )
    run = auto("--job-dir", job.directory, "--json")
    assert run.returncode == 3, run.stderr
    report = json.loads(run.stdout)
    by_dest = {o["destination"]: o["status"] for o in report["outcomes"]}
    assert by_dest == {"local": "exported", "jsonl": "failed"}
    assert list(summary(tmp_path / "a")) == [job.job_id]
    history = subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "history", job.job_id, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert {r["destination"]: r["status"] for r in json.loads(history.stdout)} == by_dest, (
        "the failure is recorded for retry"
    )


def test_auto_export_inside_the_job_treats_results_without_an_exit_marker_as_done(home, tmp_path):
    job = home.jobs[0]
    (job.directory / "logs" / "stage.exit").unlink()
    _with_auto_export(job.directory, {"local": {"output_dir": str(tmp_path / "a")}})
    assert auto("--job-dir", job.directory).returncode == 0
    assert list(summary(tmp_path / "a")) == [job.job_id]


def test_auto_export_with_an_explicit_run_config_and_no_destinations_does_nothing(home, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("execution: {type: local}\n")
    run = auto("--job-dir", home.jobs[0].directory, "--run-config", cfg)
    assert run.returncode == 0 and "no destinations" in run.stdout


def test_auto_export_without_a_run_config_is_a_usage_error(tmp_path):
    job_dir = tmp_path / "20260101_000000-abcdefabcdefabcd" / "t.0"
    (job_dir / "artifacts").mkdir(parents=True)
    run = auto("--job-dir", job_dir)
    assert run.returncode == 2 and "--run-config" in run.stderr


def test_history_with_a_ledger_that_is_not_a_database_says_what_to_do_without_a_traceback(cli, tmp_path):
    import os

    ledger = Path(os.environ["EVALPORT_STATE_DIR"]) / "ledger.sqlite"
    ledger.write_bytes(b"this is not a database\n" * 100)
    for args in (["history"], ["history", "--json"]):
        run = cli(*args, exec_db=False)
        assert run.code == 1
        assert "Traceback" not in run.err
        assert str(ledger) in run.err and "move it aside" in run.err
    assert json.loads(run.out) == []
    assert ledger.read_bytes().startswith(b"this is not a database"), "the broken ledger is left for the user"


def _unreadable(job_dir: Path, how: str) -> None:
    import re

    results = job_dir / "artifacts" / "results.yml"
    if how == "huge integer":
        results.write_text(re.sub(r"value: \S+", "value: " + "9" * 400, results.read_text(), count=1))
    else:
        results.write_text("results:\n  groups: &g\n    t:\n      groups: *g\n")


@pytest.mark.parametrize("how", ["huge integer", "recursive alias"])
def test_auto_export_of_a_job_that_cannot_be_read_exits_3_with_a_line_not_a_traceback(home, tmp_path, how):
    job = home.jobs[0]
    _with_auto_export(job.directory, {"local": {"output_dir": str(tmp_path / "a")}})
    _unreadable(job.directory, how)
    run = auto("--job-dir", job.directory)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    assert str(job.directory) in run.stderr or job.job_id in run.stderr
    as_json = auto("--job-dir", job.directory, "--json")
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["ok"] is False


def test_a_source_written_before_the_port_had_warnings_still_exports(home, tmp_path):
    jobs = [
        Job(w.job_id, w.invocation_id, w.task, "custom", LocalLocation(str(w.directory))) for w in home.jobs
    ]

    class OlderSource(InMemorySource):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            del self.warnings

    source = OlderSource(jobs, {j.job_id: JobState.SUCCEEDED for j in jobs})
    report = evalport.export(jobs[0].job_id, "local", {"output_dir": str(tmp_path / "o")}, source=source)
    assert report.ok and report.counts() == {"exported": 1}
