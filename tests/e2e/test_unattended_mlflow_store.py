"""No silent local MLflow store in jobs: unattended commands need a tracking URI, interactive export does not.

A cluster job writing ``./mlflow.db`` into its work dir loses the results without a word, so
``auto-export`` and ``watch`` refuse an mlflow destination with no ``tracking_uri`` and no
``$MLFLOW_TRACKING_URI`` (exit 2, naming the destination and how to set it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture(autouse=True)
def no_tracking_uri_in_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _auto_export_to(job_dir: Path, configs: dict) -> None:
    meta = job_dir / "artifacts" / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    doc["launcher_resolved_config"]["execution"]["auto_export"] = {
        "destinations": list(configs),
        "configs": configs,
    }
    meta.write_text(yaml.safe_dump(doc))


def test_auto_export_to_mlflow_without_a_tracking_uri_is_a_configuration_error(cli, home, tmp_path):
    job = home.jobs[0]
    _auto_export_to(job.directory, {"mlflow": {"experiment_name": "nightly"}})
    run = cli("auto-export", "--job-dir", job.directory, exec_db=False)
    assert run.code == 2, run.err
    message = " ".join(run.err.split())
    assert "'mlflow' has no tracking_uri" in message
    assert "execution.auto_export.configs.mlflow.tracking_uri" in message and "MLFLOW_TRACKING_URI" in message
    assert not (tmp_path / "work" / "mlflow.db").exists(), "nothing was written where the job stood"


def test_auto_export_to_mlflow_with_the_uri_in_the_environment_exports(cli, home, tmp_path, monkeypatch):
    store = tmp_path / "store" / "mlflow.db"
    store.parent.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    job = home.jobs[0]
    _auto_export_to(job.directory, {"mlflow": {"experiment_name": "nightly"}})
    run = cli("auto-export", "--job-dir", job.directory, exec_db=False)
    assert run.code == 0, run.err
    assert f"{job.job_id} -> mlflow: exported" in run.out
    assert store.is_file() and not (tmp_path / "work" / "mlflow.db").exists()


def test_auto_export_of_a_failed_job_needs_no_tracking_uri(cli, home):
    job = home.jobs[0]
    _auto_export_to(job.directory, {"mlflow": {}})
    run = cli("auto-export", "--job-dir", job.directory, "--exit-code", "1", exec_db=False)
    assert run.code == 0 and "not exported" in run.out


def test_watch_to_mlflow_without_a_tracking_uri_is_a_configuration_error(cli, tmp_path):
    run = cli("watch", "--once", "--dest", "mlflow", "--dest", "local", "--output-dir", tmp_path / "o")
    assert run.code == 2, run.err
    assert "'mlflow' has no tracking_uri" in " ".join(run.err.split())
    assert not (tmp_path / "work" / "mlflow.db").exists()
    assert not (tmp_path / "o").exists(), (
        "the other destination received nothing either: the plan was refused"
    )


def test_watch_to_mlflow_with_a_configured_tracking_uri_runs(cli, home, tmp_path):
    store = tmp_path / "mlflow.db"
    run = cli("watch", "--once", "--dest", "mlflow", "-o", f"mlflow.tracking_uri=sqlite:///{store}")
    assert run.code == 0, run.err
    assert run.out.count("-> mlflow: exported") == len(home.jobs)
    assert store.is_file() and not (tmp_path / "work" / "mlflow.db").exists()


def test_an_interactive_export_still_uses_mlflow_db_in_the_current_directory(cli, home, tmp_path):
    run = cli("export", home.invocation_ids[0], "--dest", "mlflow")
    assert run.code == 0, run.err
    assert (tmp_path / "work" / "mlflow.db").is_file()
