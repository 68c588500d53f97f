"""W&B side by side with the real nemo-evaluator-launcher 0.2.6, both offline into one ``WANDB_DIR``.

multi_task runs have the launcher's stable id (the invocation id, or ``run_id``), so whichever tool
exports second resumes the other's run: the offline folders ``wandb/offline-run-*-<id>`` and the
``.wandb`` files in them name one run id per invocation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from evalport.adapters.sinks.wandb import plan as planning
from evalport.app.cli import main
from evalport.domain.identity import LogMode, RunIdentity
from evalport.testing.factory import LauncherHome, write_launcher_home
from tests.support.reference_launcher import ReferenceLauncher
from tests.support.wandb_records import find_run_files, load_run, merge_runs

CLOSED_PORT_URL = "http://127.0.0.1:9"


@pytest.fixture
def wandb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline W&B for evalport (in-process) and the launcher's environment, all under tmp_path."""
    for name in (
        "WANDB_API_KEY",
        "WANDB_PROJECT",
        "WANDB_ENTITY",
        "WANDB_RUN_ID",
        "WANDB_TAGS",
        "WANDB_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "wandb-root"
    root.mkdir()
    monkeypatch.setenv("WANDB_DIR", str(root))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        (tmp_path / name.lower()).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return root


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=2, seed=5)


def launcher_env(root: Path, tmp_path: Path) -> dict[str, str]:
    env = {"WANDB_DIR": str(root), "WANDB_BASE_URL": CLOSED_PORT_URL, "WANDB_ERROR_REPORTING": "false"}
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        env[name] = str(tmp_path / name.lower())
    return env


def launcher_export(
    launcher: ReferenceLauncher, home: LauncherHome, root: Path, tmp_path: Path, *overrides: str
) -> None:
    options = ("entity=team", "project=evals", "log_mode=multi_task", *overrides)
    launcher.export(
        home.root,
        home.invocation_ids,
        "--dest",
        "wandb",
        *(x for o in options for x in ("-o", f"export.wandb.{o}")),
        env=launcher_env(root, tmp_path),
    )


def evalport_export(home: LauncherHome, capsys, *overrides: str) -> dict:
    options = ("entity=team", "project=evals", "log_mode=multi_task", *overrides)
    argv = ["export", *home.invocation_ids, "--dest", "wandb", "--exec-db", str(home.exec_db), "--json"]
    argv += [x for o in options for x in ("-o", f"export.wandb.{o}")]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


def folder_ids(root: Path) -> list[str]:
    """The run id of each offline folder ``offline-run-<stamp>-<id>``, read from its ``run-<id>.wandb``."""
    return sorted(
        f.name.removeprefix("run-").removesuffix(".wandb")
        for p in (root / "wandb").glob("offline-run-*")
        for f in p.glob("run-*.wandb")
    )


def file_ids(root: Path) -> list[str]:
    return sorted(load_run(path).run_id for path in find_run_files(root))


def test_evalport_resumes_the_multi_task_run_the_launcher_made(
    reference_launcher, home, wandb_dir, tmp_path, capsys
):
    [invocation] = home.invocation_ids
    launcher_export(reference_launcher, home, wandb_dir, tmp_path)
    assert folder_ids(wandb_dir) == [invocation], "the launcher's stable id is the invocation id"

    report = evalport_export(home, capsys)

    assert {o["status"] for o in report["outcomes"]} == {"updated"}, report
    assert folder_ids(wandb_dir) == [invocation, invocation]
    assert file_ids(wandb_dir) == [invocation, invocation]
    merged = merge_runs([load_run(p) for p in find_run_files(wandb_dir)])
    assert merged.config["invocation_id"] == invocation
    assert sorted(merged.config["benchmarks"]) == sorted(j.task for j in home.jobs)


def test_the_launcher_resumes_the_multi_task_run_evalport_made(
    reference_launcher, home, wandb_dir, tmp_path, capsys
):
    [invocation] = home.invocation_ids
    report = evalport_export(home, capsys)
    assert {o["status"] for o in report["outcomes"]} == {"exported"}, report
    assert folder_ids(wandb_dir) == [invocation]

    launcher_export(reference_launcher, home, wandb_dir, tmp_path)

    assert folder_ids(wandb_dir) == [invocation, invocation]
    assert file_ids(wandb_dir) == [invocation, invocation]
    [ours, theirs] = [load_run(p) for p in find_run_files(wandb_dir)]
    assert (ours.name, ours.group) == (theirs.name, theirs.group) == (f"eval-{invocation}", invocation)
    for key in ("invocation_id", "executor", "benchmarks", "harnesses"):
        assert ours.config[key] == theirs.config[key], key


def test_both_tools_use_the_run_id_option_as_the_multi_task_run(
    reference_launcher, home, wandb_dir, tmp_path, capsys
):
    launcher_export(reference_launcher, home, wandb_dir, tmp_path, "run_id=shared-run-7")
    evalport_export(home, capsys, "run_id=shared-run-7")
    assert folder_ids(wandb_dir) == ["shared-run-7", "shared-run-7"]
    assert file_ids(wandb_dir) == ["shared-run-7", "shared-run-7"]


def test_a_multi_task_run_evalport_made_under_its_earlier_id_is_kept(home, wandb_dir, capsys):
    """Runs evalport made before it used the launcher's id are resumed, not duplicated."""
    [invocation] = home.invocation_ids
    earlier = RunIdentity(LogMode.MULTI_TASK, invocation).run_id()
    with pytest.MonkeyPatch.context() as older_evalport:
        older_evalport.setattr(planning, "run_id_of", _earlier_run_id_of(planning.run_id_of))
        evalport_export(home, capsys)
    assert folder_ids(wandb_dir) == [earlier]

    report = evalport_export(home, capsys, "tags=[again]")

    assert {o["status"] for o in report["outcomes"]} == {"updated"}, report
    assert folder_ids(wandb_dir) == [earlier, earlier]


def _earlier_run_id_of(current):
    """``run_id_of`` as evalport had it before: the multi_task id derived from the run key."""

    def earlier(result, log_mode, fixed=None):
        run_id, identity = current(result, log_mode, fixed)
        return (identity.run_id() if identity.mode is LogMode.MULTI_TASK else run_id), identity

    return earlier
