"""evalport and the real nemo-evaluator-launcher 0.2.6 export the same jobs into one MLflow store.

Whichever goes first, each job has exactly one run: evalport adopts the launcher's run (tag
``job_id``), and the launcher finds evalport's (evalport writes the same tag). With
``compat: launcher`` evalport names runs and places files as the launcher does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalport.adapters.sinks.mlflow import RUN_KEY_TAG
from evalport.app.cli import main
from evalport.domain.artifacts import OPTIONAL_ARTIFACTS
from evalport.testing.factory import LauncherHome, write_launcher_home

pytest_plugins = ["tests.support.mlflow_fixtures"]

EXPERIMENT = "side-by-side"
#: What the launcher's only_required selection leaves out and evalport's sends (an extra that no
#: launcher reader minds: more files in the same folder).
EVALPORT_ONLY_ARTIFACTS = {a for a in OPTIONAL_ARTIFACTS if a != "omni-info.json"}


@pytest.fixture(autouse=True)
def _no_ambient_mlflow(no_ambient_mlflow: None) -> None:
    """The user's MLFLOW_* settings never reach these tests."""


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "home", invocations=2, tasks_per_invocation=2, seed=14)


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def launcher_export(reference_launcher, home: LauncherHome, uri: str, experiment: str = EXPERIMENT) -> None:
    reference_launcher.export(
        home.root,
        home.invocation_ids,
        "--dest",
        "mlflow",
        "-o",
        f"export.mlflow.tracking_uri={uri}",
        "-o",
        f"export.mlflow.experiment_name={experiment}",
        "-o",
        "export.mlflow.copy_logs=true",
    )


def evalport_export(home: LauncherHome, capsys, uri: str, *options: str) -> dict:
    argv = ["export", *home.invocation_ids, "--dest", "mlflow", "--exec-db", str(home.exec_db), "--json"]
    for option in (f"tracking_uri={uri}", "copy_logs=true", *options):
        argv += ["-o", f"export.mlflow.{option}"]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


def runs_by_job(uri: str, experiment: str = EXPERIMENT) -> dict[str, list]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    out: dict[str, list] = {}
    for run in client.search_runs([exp.experiment_id], max_results=1000):
        out.setdefault(run.data.tags.get("job_id", "?"), []).append(run)
    return out


def artifact_paths(uri: str, run_id: str) -> set[str]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    paths: set[str] = set()
    pending: list[str | None] = [None]
    while pending:
        for entry in client.list_artifacts(run_id, pending.pop()):
            if entry.is_dir:
                pending.append(entry.path)
            else:
                paths.add(entry.path)
    return paths


def test_after_the_launcher_evalport_updates_each_jobs_run_instead_of_adding_one(
    reference_launcher, home, capsys, uri
):
    launcher_export(reference_launcher, home, uri)
    before = runs_by_job(uri)
    assert sorted(before) == sorted(j.job_id for j in home.jobs)

    report = evalport_export(home, capsys, uri, f"experiment_name={EXPERIMENT}")

    assert report["counts"] == {"updated": len(home.jobs)}
    assert all("adopted run" in o["reason"] for o in report["outcomes"]), report["outcomes"]
    after = runs_by_job(uri)
    assert sorted(after) == sorted(before) and all(len(runs) == 1 for runs in after.values())
    for job in home.jobs:
        (run,) = after[job.job_id]
        assert run.info.run_id == before[job.job_id][0].info.run_id, "the launcher's run, updated in place"
        assert run.data.tags[RUN_KEY_TAG] == f"{job.invocation_id}/{job.harness}/{job.task}"
        assert any(k.endswith("_stderr") for k in run.data.metrics), "evalport's statistics were added"
        assert run.data.params["invocation_id"] == job.invocation_id, "the launcher's params stay"

    again = evalport_export(home, capsys, uri, f"experiment_name={EXPERIMENT}")
    assert again["counts"] == {"unchanged": len(home.jobs)}, "found by its run key from now on"
    assert all(len(runs) == 1 for runs in runs_by_job(uri).values())


def test_after_evalport_the_launcher_finds_evalports_runs(reference_launcher, home, capsys, uri):
    evalport_export(home, capsys, uri, f"experiment_name={EXPERIMENT}")
    ours = {job: runs[0].info.run_id for job, runs in runs_by_job(uri).items()}

    launcher_export(reference_launcher, home, uri)

    after = runs_by_job(uri)
    assert sorted(after) == sorted(j.job_id for j in home.jobs)
    assert {job: [r.info.run_id for r in runs] for job, runs in after.items()} == {
        job: [run_id] for job, run_id in ours.items()
    }
    for job in home.jobs:
        tags = after[job.job_id][0].data.tags
        assert (tags["task_name"], tags["benchmark"], tags["harness"]) == (job.task, job.task, job.harness)


def test_compat_launcher_names_runs_and_places_files_as_the_launcher_does(
    reference_launcher, home, capsys, uri
):
    launcher_export(reference_launcher, home, uri, experiment="nemo-evaluator-launcher")
    theirs = runs_by_job(uri, "nemo-evaluator-launcher")

    report = evalport_export(home, capsys, uri, "compat=launcher", "experiment_name=evalport-compat")
    assert report["counts"] == {"exported": len(home.jobs)}
    ours = runs_by_job(uri, "evalport-compat")

    for job in home.jobs:
        (their_run,) = theirs[job.job_id]
        (our_run,) = ours[job.job_id]
        assert our_run.info.run_name == their_run.info.run_name == f"eval-{job.invocation_id}-{job.task}"
        their_paths = artifact_paths(uri, their_run.info.run_id)
        our_paths = artifact_paths(uri, our_run.info.run_id)
        folder = f"{job.harness}.{job.task}/artifacts/"
        extras = {p for p in our_paths - their_paths if p.removeprefix(folder) in EVALPORT_ONLY_ARTIFACTS}
        assert our_paths - extras == their_paths
        assert set(our_run.data.metrics) >= set(their_run.data.metrics), "the launcher's metric keys"
        for key, value in their_run.data.metrics.items():
            assert our_run.data.metrics[key] == pytest.approx(value), key


def test_compat_launcher_exports_into_the_launchers_experiment_by_default(
    reference_launcher, home, capsys, uri
):
    launcher_export(reference_launcher, home, uri, experiment="nemo-evaluator-launcher")
    report = evalport_export(home, capsys, uri, "compat=launcher")
    assert report["counts"] == {"updated": len(home.jobs)}
    assert all(len(runs) == 1 for runs in runs_by_job(uri, "nemo-evaluator-launcher").values())
