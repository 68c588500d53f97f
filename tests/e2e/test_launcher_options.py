"""Every flag of ``nemo-evaluator-launcher export`` and every key of its exporter configs works on
``evalport export``, spelled as the launcher spells it, with the launcher's effect; one that has no
effect here is a warning saying so, never an error."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from evalport.app.cli import main
from evalport.testing.factory import write_launcher_home
from tests.support.reference_launcher import reference_executable


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


# ---- against the real launcher ------------------------------------------------------------------------------
def _launcher_help() -> str:
    exe = reference_executable()
    if exe is None:
        return ""
    proc = subprocess.run(
        [str(exe), "export", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    return proc.stdout


_OPTION_LINE = re.compile(r"^\s{2}(-[^\s].*?)(?:\s{2,}|$)")


def launcher_flags(help_text: str) -> list[tuple[str, str]]:
    """(flag, metavar) for every spelling in ``export --help``'s option lines."""
    out: list[tuple[str, str]] = []
    for line in help_text.splitlines():
        m = _OPTION_LINE.match(line)
        if not m:
            continue
        for part in m[1].split(", "):
            flag, _, metavar = part.partition(" ")
            if flag.startswith("-"):
                out.append((flag, metavar))
    return out


def _flag_params():
    flags = launcher_flags(_launcher_help())
    if not flags:
        return [
            pytest.param("", "", marks=pytest.mark.skip(reason="nemo-evaluator-launcher is not installed"))
        ]
    return [pytest.param(flag, metavar, id=flag) for flag, metavar in flags]


def _sample_value(flag: str, metavar: str, launcher, tmp_path: Path) -> list[str]:
    """A value as a launcher user would give it (flags without a metavar take none)."""
    name = flag.lstrip("-").replace("-", "_")
    known = {
        "config": str(tmp_path / "c.yaml"),
        "o": "export.local.format=json",
        "override": "export.local.format=json",
        "out": str(tmp_path / "o"),
        "output_dir": str(tmp_path / "o"),
        "fname": "x.json",
        "output_filename": "x.json",
        "log_metrics": "score",
        "job_dirs": str(launcher.jobs[0].directory.parent.parent),
    }
    if not metavar:
        return []
    if metavar.startswith("{"):
        return [metavar.strip("{}").split(",")[0]]
    if "bool" in metavar:
        return ["false"]
    assert name in known, f"the launcher has a new flag {flag} {metavar}: give evalport export an equivalent"
    return [known[name]]


@pytest.mark.parametrize("flag,metavar", _flag_params())
def test_every_flag_of_the_launcher_s_export_help_is_accepted(
    reference_launcher, run, launcher, tmp_path, flag, metavar
):
    (tmp_path / "c.yaml").write_text("export:\n  local:\n    format: json\n")
    args = [flag, *_sample_value(flag, metavar, launcher, tmp_path)]
    code, out, err = run("export", launcher.invocation_ids[0], *args, "--dry-run")
    assert code == 0, f"evalport export {' '.join(args)}: exit {code}\n{out}\n{err}"


_DUMP_CONFIGS = """
import json, typing
from nemo_evaluator_launcher.exporters.local import LocalExporterConfig
from nemo_evaluator_launcher.exporters.mlflow import MLflowExporterConfig
from nemo_evaluator_launcher.exporters.wandb import WandBExporterConfig
from nemo_evaluator_launcher.exporters.gsheets import GSheetsExporterConfig
out = {}
for dest, model in [("local", LocalExporterConfig), ("mlflow", MLflowExporterConfig),
                    ("wandb", WandBExporterConfig), ("gsheets", GSheetsExporterConfig)]:
    out[dest] = {name: str(field.annotation) for name, field in model.model_fields.items()}
print(json.dumps(out))
"""


def _value_for(key: str, annotation: str, tmp_path: Path, root: Path):
    specific = {
        "job_dirs": [str(root)],
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "output_dir": str(tmp_path / "o"),
        "format": "json",
        "log_mode": "per_task",
        "log_metrics": ["score"],
        "log_config_params_max_depth": 3,
        "exclude_patterns": ["*.jsonl"],
        "service_account_file": str(tmp_path / "sa.json"),
        # One of each pair: both given is a configuration error here (the launcher ignores the second).
        "oauth_file": None,
        "spreadsheet_name": None,
    }
    if key in specific:
        return specific[key]
    if "bool" in annotation:
        return True
    if "Dict" in annotation or "dict" in annotation:
        return {"team": "eval"}
    if "List" in annotation or "list" in annotation:
        return ["eval"]
    return f"value-of-{key}"


def test_a_launcher_config_with_every_key_of_every_exporter_validates_with_warnings_only(
    reference_launcher, launcher, tmp_path
):
    from evalport.app.container import container_for
    from evalport.app.request import ExportRequest

    fields = json.loads(reference_launcher.python_call(launcher.root, _DUMP_CONFIGS).stdout.splitlines()[-1])
    root = launcher.jobs[0].directory.parent.parent
    blocks = {
        dest: {key: _value_for(key, annotation, tmp_path, root) for key, annotation in keys.items()}
        for dest, keys in fields.items()
    }
    config = tmp_path / "launcher.yaml"
    config.write_text(json.dumps({"export": blocks}))
    for dest in blocks:
        request = ExportRequest(ids=launcher.invocation_ids, destinations=[dest], config=config)
        plan = container_for(request, exec_db=launcher.exec_db, ledger=False).service().plan(request)
        assert [s.destination for s in plan.sinks] == [dest]
        assert all("has no effect" in note or "deprecated" in note for note in plan.notes), plan.notes
        assert request.search_roots == [str(root)]


def test_job_dirs_finds_the_jobs_the_launcher_finds_with_the_same_ids(reference_launcher, run, tmp_path):
    home = write_launcher_home(tmp_path / "nodb", invocations=1, tasks_per_invocation=3, seed=9)
    home.exec_db.unlink()
    root = home.jobs[0].directory.parent.parent
    inv = home.invocation_ids[0]
    reference_launcher.export(
        home.root,
        [inv],
        "--dest",
        "local",
        "--format",
        "json",
        "-out",
        str(tmp_path / "lo"),
        "--job-dirs",
        str(root),
    )
    theirs = json.loads((tmp_path / "lo" / "processed_results.json").read_text())["benchmarks"]
    their_jobs = {(e["job_id"], task) for task, b in theirs.items() for m in b["models"].values() for e in m}
    code, _, err = run(
        "export", inv, "--job-dirs", root, "-out", tmp_path / "eo", "--exec-db", home.exec_db, exec_db=False
    )
    assert code == 0, err
    ours = {(r["job_id"], r["task"]) for r in runs(tmp_path / "eo").values()}
    assert ours == their_jobs and len(ours) == 3
