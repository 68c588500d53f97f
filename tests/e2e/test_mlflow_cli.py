"""`evalport export --dest mlflow` end to end: the CLI (in-process and as a command) into real MLflow."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from evalport.adapters.sinks.mlflow import RUN_KEY_TAG, MlflowSink, mlflow_metric_key
from evalport.app.cli import main
from evalport.domain.identity import LogMode, RunIdentity
from evalport.testing.factory import LauncherHome, WrittenJob, write_launcher_home
from tests.support.mlflow_server import FAST_RETRIES, MlflowServer, free_port

pytest_plugins = ["tests.support.mlflow_fixtures"]

SECRET = "nvapi-very-secret"
#: `-o export.mlflow.<option>` for short retries: a dead server is reported at once.
FAST_OPTIONS = tuple(f"{k}={v}" for k, v in FAST_RETRIES.items())


@pytest.fixture(autouse=True)
def _no_ambient_mlflow(no_ambient_mlflow: None) -> None:
    """The user's MLFLOW_* settings never reach these tests."""


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=3, tasks_per_invocation=2, seed=21)


def evalport_command() -> list[str]:
    """The installed ``evalport`` script (beside this Python), else the module."""
    script = Path(sys.executable).with_name("evalport")
    found = str(script) if script.exists() else shutil.which("evalport")
    return [found] if found else [sys.executable, "-m", "evalport.app.cli"]


def run_export(
    home: LauncherHome, capsys, *options: str, ids: list[str] | None = None, expect: int = 0
) -> dict:
    argv = [
        "export",
        *(ids or home.invocation_ids),
        "--dest",
        "mlflow",
        "--exec-db",
        str(home.exec_db),
        "--json",
        *(x for o in (*FAST_OPTIONS, *options) for x in ("-o", f"export.mlflow.{o}")),
    ]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    assert code == expect, report
    return report


def runs_of(uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else list(client.search_runs([exp.experiment_id], max_results=1000))


def by_key(runs: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for run in runs:
        out.setdefault(run.data.tags[RUN_KEY_TAG], []).append(run)
    return out


def key_of(job: WrittenJob, mode: LogMode) -> str:
    return (
        RunIdentity(mode, job.invocation_id, job.harness, job.task).key
        if mode is LogMode.PER_TASK
        else RunIdentity(mode, job.invocation_id).key
    )


def test_per_task_export_makes_one_run_per_job_with_the_results_values(
    home, capsys, live_mlflow_server, experiment_name
):
    from mlflow import MlflowClient

    uri = live_mlflow_server.url
    report = run_export(
        home,
        capsys,
        f"tracking_uri={uri}",
        f"experiment_name={experiment_name}",
        "tags.team=evals",
        "copy_logs=true",
    )
    assert report["counts"] == {"exported": len(home.jobs)}
    runs = by_key(runs_of(uri, experiment_name))
    assert len(runs) == len(home.jobs) and all(len(r) == 1 for r in runs.values())
    client = MlflowClient(uri)
    for job in home.jobs:
        (run,) = runs[key_of(job, LogMode.PER_TASK)]
        for name, value in job.task_scores().items():
            assert run.data.metrics[mlflow_metric_key(name)] == pytest.approx(value), name
        tags, params = run.data.tags, run.data.params
        assert (tags["job_id"], tags["task"], tags["team"]) == (job.job_id, job.task, "evals")
        assert params["model_id"] == job.model_id and params["harness"] == job.harness
        assert run.info.status == "FINISHED"
        top = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert top == {"artifacts", "logs"}
        files = {f.path for f in client.list_artifacts(run.info.run_id, "artifacts")}
        assert "artifacts/results.yml" in files and not any("cache" in f for f in files)


def test_re_export_through_the_cli_changes_nothing_and_duplicates_nothing(
    home, capsys, live_mlflow_server, experiment_name
):
    uri = live_mlflow_server.url
    options = (f"tracking_uri={uri}", f"experiment_name={experiment_name}")
    run_export(home, capsys, *options)
    again = run_export(home, capsys, *options)
    assert again["counts"] == {"unchanged": len(home.jobs)}
    assert len(runs_of(uri, experiment_name)) == len(home.jobs)


def test_multi_task_export_makes_one_run_per_invocation_holding_every_task(
    home, capsys, live_mlflow_server, experiment_name
):
    uri = live_mlflow_server.url
    options = (f"tracking_uri={uri}", f"experiment_name={experiment_name}", "log_mode=multi_task")
    first_jobs = [j.job_id for j in home.jobs if j.job_id.endswith(".0")]
    run_export(home, capsys, *options, ids=first_jobs)
    report = run_export(home, capsys, *options)
    statuses = {o["job_id"]: o["status"] for o in report["outcomes"]}
    assert {statuses[j] for j in first_jobs} == {"unchanged"}
    assert {s for j, s in statuses.items() if j not in first_jobs} == {"exported"}
    runs = by_key(runs_of(uri, experiment_name))
    assert sorted(runs) == sorted(home.invocation_ids)
    for job in home.jobs:
        (run,) = runs[job.invocation_id]
        for name, value in job.task_scores().items():
            assert run.data.metrics[mlflow_metric_key(name)] == pytest.approx(value), name
        assert run.data.tags[f"evalport.job.{job.task}"] == job.job_id


def test_the_evalport_command_exports_with_a_launcher_style_config(
    home, tmp_path, live_mlflow_server, experiment_name
):
    uri = live_mlflow_server.url
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "execution": {
                    "auto_export": {
                        "destinations": ["mlflow"],
                        "configs": {
                            "mlflow": {
                                "tracking_uri": uri,
                                "experiment_name": experiment_name,
                                "log_config_params": True,
                                "description": "nightly evals",
                                "extra_metadata": {"suite": "nightly"},
                            }
                        },
                    }
                },
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run(
        [
            *evalport_command(),
            "export",
            *home.invocation_ids,
            "--config",
            str(config),
            "--exec-db",
            str(home.exec_db),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"mlflow: {len(home.jobs)} exported" in proc.stdout and uri in proc.stdout
    assert "View run" not in proc.stdout, "MLflow's per-run links must not flood the output"
    runs = runs_of(uri, experiment_name)
    assert len(runs) == len(home.jobs)
    for run in runs:
        assert run.data.params["suite"] == "nightly"
        assert run.data.tags["mlflow.note.content"] == "nightly evals"
        assert run.data.params["config.execution.type"] == "local"
        assert SECRET not in json.dumps(run.data.params) + json.dumps(run.data.tags)


def test_without_a_tracking_uri_results_go_to_mlflow_db_in_the_working_directory(
    home, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code = main(["export", *home.invocation_ids, "--dest", "mlflow", "--exec-db", str(home.exec_db)])
    out = capsys.readouterr().out
    db = tmp_path / "mlflow.db"
    assert code == 0, out
    assert db.is_file()
    uri = f"sqlite:///{db}"
    flat = "".join(out.split())  # rich wraps long lines at the console width
    assert uri in flat and f"mlflowui--backend-store-uri{uri}" in flat
    assert len(runs_of(uri, "evalport")) == len(home.jobs)
    assert not (tmp_path / "mlruns").exists(), "artifacts go beside the database"


def test_doctor_reports_a_dead_server_quickly_and_a_live_one_as_ok(capsys, live_mlflow_server):
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    assert main(["doctor", "--dest", "mlflow", "-o", f"export.mlflow.tracking_uri={dead}"]) == 1
    assert time.monotonic() - started < 5
    assert (
        main(["doctor", "--dest", "mlflow", "-o", f"export.mlflow.tracking_uri={live_mlflow_server.url}"])
        == 0
    )


def _kill_after_runs(server: MlflowServer, runs: int, stopped: threading.Event) -> threading.Thread:
    """Kills the server (SIGKILL, like a crash) once its store holds ``runs`` finished runs."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if server.count_runs("FINISHED") >= runs:
                    break
            except sqlite3.Error:
                pass
            time.sleep(0.005)
        server.stop(kill=True)
        stopped.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_server_dying_mid_export_fails_exactly_the_jobs_it_missed_and_a_rerun_completes(
    tmp_path, capsys, mlflow_server, experiment_name
):
    home = write_launcher_home(tmp_path / "launcher", invocations=5, tasks_per_invocation=4, seed=5)
    server = mlflow_server.start()
    uri = server.url
    options = (f"tracking_uri={uri}", f"experiment_name={experiment_name}")
    stopped = threading.Event()
    already = server.count_runs("FINISHED")
    watcher = _kill_after_runs(server, already + 3, stopped)
    try:
        report = run_export(home, capsys, *options, expect=1)
    finally:
        watcher.join(timeout=70)
    assert stopped.is_set()
    failed = {o["job_id"] for o in report["outcomes"] if o["status"] == "failed"}
    exported = {o["job_id"] for o in report["outcomes"] if o["status"] == "exported"}
    assert failed and exported and failed | exported == {j.job_id for j in home.jobs}
    assert all(
        uri in o["reason"] and "did not answer" in o["reason"]
        for o in report["outcomes"]
        if o["status"] == "failed"
    )
    assert any(o["reason"].startswith("not tried: ") for o in report["outcomes"]), (
        "once the server is known to be down, the remaining jobs are not tried"
    )

    server.start()
    complete = {}
    for run in runs_of(uri, experiment_name):
        job = run.data.tags.get("job_id")
        if job and run.info.status == "FINISHED" and run.data.metrics:
            complete[job] = run
    assert exported <= set(complete), "a job reported exported has its whole run in the store"
    assert {j.job_id for j in home.jobs} - set(complete) <= failed, (
        "every incomplete or missing run is reported"
    )
    # A request whose commit landed just before the crash never got its answer: such a job is reported
    # failed although its run is whole (at most one per concurrent worker); the rerun finds it unchanged.
    assert len(failed & set(complete)) <= MlflowSink.workers

    again = run_export(home, capsys, *options)
    statuses = {o["job_id"]: o["status"] for o in again["outcomes"]}
    assert {statuses[j] for j in exported} == {"unchanged"}
    assert {statuses[j] for j in failed - set(complete)} <= {"exported", "updated"}
    assert {statuses[j] for j in failed & set(complete)} <= {"unchanged"}
    runs = by_key(runs_of(uri, experiment_name))
    assert len(runs) == len(home.jobs) and all(len(r) == 1 for r in runs.values()), "no duplicate runs"
    for job in home.jobs:
        (run,) = runs[key_of(job, LogMode.PER_TASK)]
        assert run.info.status == "FINISHED"
        for name, value in job.task_scores().items():
            assert run.data.metrics[mlflow_metric_key(name)] == pytest.approx(value), name
