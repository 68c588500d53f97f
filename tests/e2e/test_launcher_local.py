"""`--compat launcher` against the real nemo-evaluator-launcher 0.2.6's `local` exporter, side by side.

Both tools export the same generated jobs (several invocations, models and tasks); evalport's
processed_results files must hold what the launcher's hold (tests/e2e/launcher_files.py says how
they are compared). Skipped, with the reason, where the launcher is not installed; the recorded
copy in tests/data/launcher_reference keeps the format comparison running there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evalport.app.cli import main
from evalport.domain.results import flatten_results
from evalport.testing.factory import LauncherHome, write_launcher_home
from tests.e2e.launcher_files import assert_same_tree, csv_table, entries


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=3, tasks_per_invocation=2, seed=14)


def evalport_export(home: LauncherHome, out: Path, *args: str) -> int:
    argv = ["export", *home.invocation_ids, "--dest", "local", "--output-dir", str(out), *args]
    return main([*argv, "-o", "compat=launcher", "--exec-db", str(home.exec_db)])


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_compat_launcher_writes_what_the_launcher_writes(reference_launcher, home, tmp_path, fmt):
    theirs, ours = tmp_path / "launcher-out", tmp_path / "evalport-out"
    reference_launcher.export(
        home.root, home.invocation_ids, "--dest", "local", "--format", fmt, "-out", str(theirs)
    )
    assert evalport_export(home, ours, "--format", fmt) == 0
    assert_same_tree(theirs, ours, fmt)


def test_the_same_jobs_have_the_same_timestamps_as_the_launchers(reference_launcher, home, tmp_path):
    theirs, ours = tmp_path / "launcher-out", tmp_path / "evalport-out"
    reference_launcher.export(home.root, home.invocation_ids, "--dest", "local", "-out", str(theirs))
    assert evalport_export(home, ours) == 0
    want, got = entries(theirs / "processed_results.json"), entries(ours / "processed_results.json")
    assert {j: e[2]["timestamp"] for j, e in got.items()} == {j: e[2]["timestamp"] for j, e in want.items()}


def set_every_score(node: object, value: float) -> None:
    """Every ``scores.<name>.value`` in a results tree (tasks and groups alike) becomes ``value``."""
    if isinstance(node, dict):
        for key, child in node.items():
            if key == "scores" and isinstance(child, dict):
                for score in child.values():
                    score["value"] = value
            else:
                set_every_score(child, value)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_after_a_re_evaluation_evalport_has_the_new_score_where_the_launcher_keeps_the_stale_one(
    reference_launcher, home, tmp_path, fmt
):
    theirs, ours = tmp_path / "launcher-out", tmp_path / "evalport-out"
    launcher_args = ("--dest", "local", "--format", fmt, "-out", str(theirs))
    reference_launcher.export(home.root, home.invocation_ids, *launcher_args)
    assert evalport_export(home, ours, "--format", fmt) == 0
    job = home.jobs[0]
    results_yml = job.directory / "artifacts" / "results.yml"
    doc = yaml.safe_load(results_yml.read_text())
    set_every_score(doc["results"], 0.123456)
    results_yml.write_text(yaml.safe_dump(doc))
    key = flatten_results(doc["results"])[0].name

    reference_launcher.export(home.root, home.invocation_ids, *launcher_args)
    assert evalport_export(home, ours, "--format", fmt) == 0

    def score_in(folder: Path) -> float:
        path = folder / f"processed_results.{fmt}"
        if fmt == "json":
            return entries(path)[job.job_id][2]["scores"][key]
        return float(csv_table(path)[1][job.job_id][key])

    assert score_in(ours) == 0.123456
    assert score_in(theirs) != 0.123456, "the launcher skips a job already in its file"


def test_concurrent_compat_exports_into_one_combined_file_lose_nothing(home, tmp_path):
    env = {**os.environ, "EVALPORT_EXEC_DB": str(home.exec_db)}
    out = tmp_path / "shared"
    cmd = [
        sys.executable,
        "-m",
        "evalport.app.cli",
        "export",
        "--output-dir",
        str(out),
        "-o",
        "compat=launcher",
    ]
    procs = [
        subprocess.Popen([*cmd, inv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for inv in home.invocation_ids
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert sorted(entries(out / "processed_results.json")) == sorted(j.job_id for j in home.jobs)


# ---- metric names: evalport's flattening against the launcher's, on the same results.yml ---------

_LAUNCHER_FLATTEN = """
import json, sys
from pathlib import Path
from nemo_evaluator_launcher.exporters.utils import _extract_from_results_yml
print(json.dumps({p: _extract_from_results_yml(Path(p)) for p in sys.argv[1:]}))
"""


def launcher_flat_names(
    reference_launcher, home_root: Path, files: list[Path]
) -> dict[str, dict[str, float]]:
    import json

    code = _LAUNCHER_FLATTEN.replace("sys.argv[1:]", repr([str(f) for f in files]))
    out = reference_launcher.python_call(home_root, code).stdout
    return json.loads(out.strip().splitlines()[-1])


def evalport_flat(path: Path) -> dict[str, float]:
    flat: dict[str, float] = {}
    for metric in flatten_results(yaml.safe_load(path.read_text())["results"]):
        flat.update(metric.flat())
    return flat


SHARED_EXAMPLE = Path("/work/shared/formats/results.example.yml")


def test_evalport_flattens_every_metric_to_the_launchers_name(reference_launcher, home, tmp_path):
    files = [j.directory / "artifacts" / "results.yml" for j in home.jobs]
    if SHARED_EXAMPLE.is_file():
        files.append(SHARED_EXAMPLE)
    theirs = launcher_flat_names(reference_launcher, home.root, files)
    for path in files:
        ours = evalport_flat(path)
        for key, value in theirs[str(path)].items():
            assert ours.get(key) == value, f"{path}: {key}"


METRIC_LEVEL_STATS = """
results:
  tasks:
    t:
      metrics:
        acc:
          scores: {micro: {value: 0.5}, macro: {value: 0.25}}
          stats: {stderr: 0.1}
"""


def test_a_metric_level_statistic_gets_the_launchers_name(reference_launcher, home, tmp_path):
    path = tmp_path / "results.yml"
    path.write_text(METRIC_LEVEL_STATS)
    theirs = launcher_flat_names(reference_launcher, home.root, [path])[str(path)]
    assert theirs == {
        "t_acc_micro": 0.5,
        "t_acc_micro_stderr": 0.1,
        "t_acc_macro": 0.25,
        "t_acc_macro_stderr": 0.1,
    }
    assert set(theirs) <= set(evalport_flat(path))
