"""`evalport export --dest wandb` end to end, in-process, into offline runs read back from their files."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from evalport.adapters.sinks.wandb_names import artifact_name
from evalport.app.cli import main
from evalport.domain.identity import LogMode, RunIdentity
from evalport.testing.factory import LauncherHome, WrittenJob, write_launcher_home
from tests.support.wandb_records import OfflineRun, load_merged_run

SECRET = "nvapi-very-secret"


@pytest.fixture(autouse=True)
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_ID", "WANDB_TAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        (tmp_path / name.lower()).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=11)


def export(home: LauncherHome, root: Path, capsys, *options: str, ids: list[str] | None = None) -> dict:
    """Exports ``ids`` (default: every invocation) to W&B offline runs under ``root``; the report."""
    argv = [
        "export",
        *(ids or home.invocation_ids),
        "--dest",
        "wandb",
        "--exec-db",
        str(home.exec_db),
        "--json",
        "-o",
        f"export.wandb.dir={root}",
        *(x for o in options for x in ("-o", f"export.wandb.{o}")),
    ]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


def run_of(root: Path, job: WrittenJob, mode: LogMode) -> OfflineRun:
    """A per_task run has evalport's derived id; a multi_task run the launcher's (the invocation id)."""
    if mode is LogMode.PER_TASK:
        run_id = RunIdentity(mode, job.invocation_id, job.harness, job.task).run_id()
    else:
        run_id = job.invocation_id
    run = load_merged_run(root, run_id)
    assert run is not None, f"no run for {job.job_id}"
    return run


def test_per_task_export_writes_one_described_run_per_job(home, tmp_path, capsys):
    root = tmp_path / "runs"
    report = export(
        home,
        root,
        capsys,
        "project=evals",
        "tags=[nightly, gpu]",
        "description=weekly run",
        "extra_metadata={team: llm}",
        "copy_logs=true",
    )

    assert report["counts"] == {"exported": 4}
    for job in home.jobs:
        run = run_of(root, job, LogMode.PER_TASK)
        assert (run.name, run.group, run.job_type) == (
            f"eval-{job.invocation_id}-{job.task}",
            job.invocation_id,
            "evaluation",
        )
        assert (run.project, run.tags, run.notes) == ("evals", ["nightly", "gpu"], "weekly run")
        assert run.config["team"] == "llm" and run.config["model_id"] == job.model_id
        for name, value in job.task_scores().items():
            assert run.user_summary[name] == pytest.approx(value), name
        [artifact] = run.artifacts
        assert artifact["name"] == artifact_name(job.harness, job.task)
        results_yml = (job.directory / "artifacts" / "results.yml").read_bytes()
        digest = base64.b64encode(hashlib.md5(results_yml).digest()).decode()
        assert artifact["manifest"]["artifacts/results.yml"]["digest"] == digest
        assert "logs/client_stdout.log" in artifact["manifest"]
        assert not any("secrets" in p or "cache" in p for p in artifact["manifest"])
        assert SECRET not in run.path.read_bytes().decode("utf-8", "replace")


def test_multi_task_export_puts_every_task_of_an_invocation_in_one_run(home, tmp_path, capsys):
    root = tmp_path / "runs"
    first_of_each = [j.job_id for j in home.jobs if j.job_id.endswith(".0")]
    first = export(home, root, capsys, "log_mode=multi_task", ids=first_of_each)
    assert first["counts"] == {"exported": 2}

    report = export(home, root, capsys, "log_mode=multi_task")  # the second task of each appends

    assert report["counts"] == {"updated": 2, "unchanged": 2}
    for inv in home.invocation_ids:
        jobs = [j for j in home.jobs if j.invocation_id == inv]
        run = run_of(root, jobs[0], LogMode.MULTI_TASK)
        assert run.name == f"eval-{inv}" and run.group == inv
        assert set(run.config["tasks"]) == {f"{j.harness}.{j.task}" for j in jobs}
        for job in jobs:
            for name, value in job.task_scores().items():
                assert run.user_summary[name] == pytest.approx(value), name
        assert {a["name"] for a in run.artifacts} == {artifact_name(j.harness, j.task) for j in jobs}


def test_exporting_again_changes_nothing_and_prints_how_to_sync(home, tmp_path, capsys):
    root = tmp_path / "runs"
    export(home, root, capsys)

    code = main(
        [
            "export",
            *home.invocation_ids,
            "--dest",
            "wandb",
            "--exec-db",
            str(home.exec_db),
            "-o",
            f"export.wandb.dir={root}",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "4 unchanged" in out and "wandb sync" in out


def test_doctor_reports_offline_mode_as_ready(tmp_path, capsys):
    code = main(["doctor", "--dest", "wandb", "-o", f"export.wandb.dir={tmp_path / 'runs'}"])
    assert code == 0
    assert "offline" in capsys.readouterr().err


def test_doctor_online_without_credentials_says_how_to_log_in(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    code = main(["doctor", "--dest", "wandb", "-o", f"export.wandb.dir={tmp_path / 'runs'}"])
    assert code == 1
    assert "wandb login" in capsys.readouterr().err


def test_a_re_export_after_the_run_folders_were_deleted_writes_every_job_again(home, tmp_path, capsys):
    import shutil

    root = tmp_path / "runs"
    export(home, root, capsys)
    assert export(home, root, capsys)["counts"] == {"unchanged": len(home.jobs)}
    shutil.rmtree(root / "wandb")
    report = export(home, root, capsys)
    assert report["counts"] == {"exported": len(home.jobs)}
    assert any("no longer holds" in n and "exported again" in n for n in report["notes"])
    for job in home.jobs:
        run = run_of(root, job, LogMode.PER_TASK)
        for name, value in job.task_scores().items():
            assert run.user_summary[name] == value, name
