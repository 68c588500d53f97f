"""The reference launcher's own lists, checked against evalport: every flag its ``export --help``
prints and every key of its exporter configs (read from its pydantic models) is accepted, and
``--job-dirs`` finds the same jobs. Skipped, with the reason, where the reference is not installed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from evalport.testing.factory import write_launcher_home
from tests.e2e import test_launcher_options as options
from tests.support.reference_launcher import reference_executable

# The fixtures and readers of the flag-by-flag tests, shared rather than repeated.
launcher, run, runs = options.launcher, options.run, options.runs


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
