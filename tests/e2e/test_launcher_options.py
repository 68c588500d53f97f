"""Every flag of ``nemo-evaluator-launcher export`` and every key of its exporter configs works on
``evalport export``, spelled as the launcher spells it, with the launcher's effect; one that has no
effect here is a warning saying so, never an error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from evalport.app.cli import main
from evalport.testing.factory import write_launcher_home


@pytest.fixture
def launcher(tmp_path):
    """One invocation of two succeeded jobs, each with an artifact that is not a required one."""
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=2, seed=5)
    for job in home.jobs:
        (job.directory / "artifacts" / "samples.jsonl").write_text('{"ok": true}\n')
    return home


@pytest.fixture
def run(capsys, launcher):
    def run(*args, exec_db=True):
        argv = [str(a) for a in args] + (["--exec-db", str(launcher.exec_db)] if exec_db else [])
        code = main(argv)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def runs(out_dir: Path, name: str = "results.json") -> dict[str, dict]:
    return {r["job_id"]: r for r in json.loads((out_dir / name).read_text())["runs"]}


def files_sent(out_dir: Path) -> set[str]:
    return {f for r in runs(out_dir).values() for f in r["files"]}


# ---- output place and name -------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["-out", "--output_dir", "--output-dir"])
def test_each_spelling_of_the_output_directory_flag_writes_there(run, launcher, tmp_path, flag):
    code, _, err = run("export", launcher.invocation_ids[0], flag, tmp_path / "o")
    assert code == 0, err
    assert sorted(runs(tmp_path / "o")) == [j.job_id for j in launcher.jobs]


@pytest.mark.parametrize("flag", ["-fname", "--output_filename", "--output-filename"])
def test_each_spelling_of_the_output_filename_flag_names_the_summary(run, launcher, tmp_path, flag):
    code, _, err = run("export", launcher.invocation_ids[0], "-out", tmp_path / "o", flag, "x.json")
    assert code == 0, err
    assert sorted(runs(tmp_path / "o", "x.json")) == [j.job_id for j in launcher.jobs]
    assert not (tmp_path / "o" / "results.json").exists()


def test_format_csv_writes_a_csv_summary(run, launcher, tmp_path):
    code, _, err = run("export", launcher.invocation_ids[0], "-out", tmp_path / "o", "--format", "csv")
    assert code == 0, err
    rows = (tmp_path / "o" / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + len(launcher.jobs)


def test_format_for_another_destination_is_a_note_not_an_error(run, launcher, tmp_path):
    code, _, err = run(
        "export",
        launcher.invocation_ids[0],
        "--dest",
        "wandb",
        "--format",
        "csv",
        "-o",
        "export.wandb.mode=offline",
        "-o",
        f"export.wandb.dir={tmp_path / 'wb'}",
        "--dry-run",
    )
    assert code == 0, err
    assert "--format is only used by --dest local; it is ignored for wandb" in err


# ---- what is sent ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given",
    [["--copy_logs"], ["--copy-logs"], ["--copy_logs", "true"], ["--copy-logs", "Yes"], ["--copy_logs=1"]],
)
def test_each_spelling_of_copy_logs_sends_the_logs(run, launcher, tmp_path, given):
    code, _, err = run("export", launcher.invocation_ids[0], "-out", tmp_path / "o", *given)
    assert code == 0, err
    assert any(f.startswith("logs/") for f in files_sent(tmp_path / "o"))


@pytest.mark.parametrize("given", [["--copy-logs", "False"], ["--copy_logs", "0"], ["--no-copy-logs"]])
def test_copy_logs_false_sends_no_logs_even_when_the_config_asks_for_them(run, launcher, tmp_path, given):
    config = tmp_path / "c.yaml"
    config.write_text("export:\n  local:\n    copy_logs: true\n")
    code, _, err = run(
        "export", launcher.invocation_ids[0], "-out", tmp_path / "o", "--config", config, *given
    )
    assert code == 0, err
    assert not any(f.startswith("logs/") for f in files_sent(tmp_path / "o"))


@pytest.mark.parametrize(
    "given", [["--copy_artifacts", "false"], ["--copy-artifacts=False"], ["--no-copy-artifacts"]]
)
def test_copy_artifacts_false_sends_no_artifacts_but_still_exports_the_metrics(
    run, launcher, tmp_path, given
):
    code, _, err = run("export", launcher.invocation_ids[0], "-out", tmp_path / "o", *given)
    assert code == 0, err
    assert not any(f.startswith("artifacts/") for f in files_sent(tmp_path / "o"))
    assert all(r["metrics"] for r in runs(tmp_path / "o").values())


@pytest.mark.parametrize(
    "given", [["--only_required", "False"], ["--only-required=false"], ["--all-artifacts"]]
)
def test_only_required_false_sends_every_artifact(run, launcher, tmp_path, given):
    code, _, err = run("export", launcher.invocation_ids[0], "-out", tmp_path / "o", *given)
    assert code == 0, err
    assert "artifacts/samples.jsonl" in files_sent(tmp_path / "o")


@pytest.mark.parametrize("given", [["--only_required"], ["--only-required", "true"]])
def test_only_required_sends_only_the_required_artifacts(run, launcher, tmp_path, given):
    code, _, err = run("export", launcher.invocation_ids[0], "-out", tmp_path / "o", *given)
    assert code == 0, err
    sent = files_sent(tmp_path / "o")
    assert "artifacts/results.yml" in sent and "artifacts/samples.jsonl" not in sent


@pytest.mark.parametrize("flag", ["--log_metrics", "--log-metrics"])
def test_log_metrics_keeps_only_the_matching_metrics_and_repeats(run, launcher, tmp_path, flag):
    first, second = launcher.jobs
    code, _, err = run(
        "export", launcher.invocation_ids[0], "-out", tmp_path / "o", flag, first.task, flag, second.task
    )
    assert code == 0, err
    for job in launcher.jobs:
        names = runs(tmp_path / "o")[job.job_id]["metrics"]
        assert names and all(job.task in name for name in names)


# ---- where the jobs are --------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--job-dirs", "--job_dirs"])
def test_job_dirs_finds_an_invocation_the_execution_db_does_not_know(run, launcher, tmp_path, flag):
    root = launcher.jobs[0].directory.parent.parent
    code, _, err = run(
        "export",
        launcher.invocation_ids[0],
        flag,
        root,
        "-out",
        tmp_path / "o",
        "--exec-db",
        tmp_path / "none.jsonl",
        exec_db=False,
    )
    assert code == 0, err
    assert sorted(runs(tmp_path / "o")) == [j.job_id for j in launcher.jobs]


def test_job_dirs_in_a_destination_block_is_searched_too(run, launcher, tmp_path):
    root = launcher.jobs[0].directory.parent.parent
    config = tmp_path / "c.yaml"
    config.write_text(f"export:\n  local:\n    job_dirs: [{root}]\n    output_dir: {tmp_path / 'o'}\n")
    code, _, err = run(
        "export",
        launcher.jobs[1].job_id,
        "--config",
        config,
        "--exec-db",
        tmp_path / "none.jsonl",
        exec_db=False,
    )
    assert code == 0, err
    assert sorted(runs(tmp_path / "o")) == [launcher.jobs[1].job_id]


def test_two_invocation_folders_matching_an_id_is_a_usage_error_naming_both(run, launcher, tmp_path):
    inv_dir = launcher.jobs[0].directory.parent
    roots = [tmp_path / "r1", tmp_path / "r2"]
    for root in roots:
        root.mkdir()
        subprocess.run(["cp", "-r", str(inv_dir), str(root)], check=True)
    code, _, err = run(
        "export",
        launcher.invocation_ids[0],
        "--job-dirs",
        roots[0],
        "--job-dirs",
        roots[1],
        "-out",
        tmp_path / "o",
        "--exec-db",
        tmp_path / "none.jsonl",
        exec_db=False,
    )
    assert code == 2
    flat = " ".join(err.split())
    assert str(roots[0] / inv_dir.name) in flat and str(roots[1] / inv_dir.name) in flat


# ---- config and overrides --------------------------------------------------------------------------------
def test_config_file_with_an_export_block_is_read(run, launcher, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"export:\n  local:\n    format: csv\n    output_dir: {tmp_path / 'o'}\n")
    code, _, err = run("export", launcher.invocation_ids[0], "--config", config)
    assert code == 0, err
    assert (tmp_path / "o" / "results.csv").is_file()


@pytest.mark.parametrize("flag", ["-o", "--override"])
@pytest.mark.parametrize("prefix", ["", "+", "++"])
def test_an_override_sets_the_destination_s_key(run, launcher, tmp_path, flag, prefix):
    code, _, err = run(
        "export", launcher.invocation_ids[0], "-out", tmp_path / "o", flag, f"{prefix}export.local.format=csv"
    )
    assert code == 0, err
    assert (tmp_path / "o" / "results.csv").is_file()


def test_a_tilde_override_deletes_the_key_from_the_config(run, launcher, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("export:\n  local:\n    format: csv\n")
    code, _, err = run(
        "export",
        launcher.invocation_ids[0],
        "-out",
        tmp_path / "o",
        "--config",
        config,
        "-o",
        "~export.local.format",
    )
    assert code == 0, err
    assert (tmp_path / "o" / "results.json").is_file() and not (tmp_path / "o" / "results.csv").exists()


@pytest.mark.parametrize("key,new", [("log_logs", "copy_logs"), ("log_artifacts", "copy_artifacts")])
def test_the_launcher_s_deprecated_keys_work_under_their_new_name_with_one_readable_warning(
    run, launcher, tmp_path, key, new
):
    value = "true" if key == "log_logs" else "false"
    code, _, err = run(
        "export", launcher.invocation_ids[0], "-out", tmp_path / "o", "-o", f"export.local.{key}={value}"
    )
    assert code == 0, err
    sent = files_sent(tmp_path / "o")
    if key == "log_logs":
        assert any(f.startswith("logs/") for f in sent)
    else:
        assert not any(f.startswith("artifacts/") for f in sent)
    lines = [line for line in err.splitlines() if key in line]
    assert lines == [f"warning: local: option {key!r} is deprecated; use {new!r}"]


def test_an_option_without_effect_here_is_one_warning_line_on_stderr_not_a_traceback(run, launcher, tmp_path):
    code, _, err = run(
        "export",
        launcher.invocation_ids[0],
        "--dest",
        "gsheets",
        "-o",
        "export.gsheets.spreadsheet_id=abc",
        "--copy_logs",
        "--dry-run",
    )
    assert code == 0, err
    lines = [line for line in err.splitlines() if "copy_logs" in line]
    assert lines == [
        "warning: gsheets: option 'copy_logs' has no effect in evalport: this destination sends no files"
    ]
    assert "warnings.warn" not in err and "Warning:" not in err


# ---- --compat ----------------------------------------------------------------------------------------------
def _planned_compat(launcher, **request):
    from evalport.app.container import container_for
    from evalport.app.request import ExportRequest

    req = ExportRequest(ids=launcher.invocation_ids, **request)
    plan = container_for(req, exec_db=launcher.exec_db, ledger=False).service().plan(req)
    return {sink.destination: sink.config.compat for sink in plan.sinks}


def test_compat_flag_sets_the_compat_of_every_destination(launcher, tmp_path):
    compat = _planned_compat(
        launcher,
        destinations=["local", "wandb"],
        flags={"compat": "launcher"},
        overrides=["export.wandb.mode=offline"],
    )
    assert compat == {"local": "launcher", "wandb": "launcher"}


def test_compat_at_the_top_of_a_config_applies_to_every_destination_unless_a_block_says_otherwise(launcher):
    config = {
        "compat": "launcher",
        "export": {"local": {}, "wandb": {"mode": "offline", "compat": "evalport"}},
    }
    compat = _planned_compat(launcher, destinations=["local", "wandb"], config=config)
    assert compat == {"local": "launcher", "wandb": "evalport"}


def test_compat_flag_is_accepted_by_export(run, launcher, tmp_path):
    code, _, err = run("export", launcher.invocation_ids[0], "-out", tmp_path / "o", "--compat", "launcher")
    assert code == 0, err
