"""The hostile corpus through the real ``evalport`` command: the issue's targets, end to end.

One export of every job to local, MLflow (sqlite) and W&B (offline) with ``--copy-logs``, one to
CSV (twice), ``ls``, ``show`` and ``auto-export`` of a bad job run once per module as
subprocesses; the tests below read what they printed and wrote. Targets: every good job exported,
every bad one named with its file, no traceback, exit code 1, nothing written outside the output
folder, no canary anywhere in what was written or printed, CSV cells neutralised.

Timing is measured and printed, never asserted: a command that hangs (a FIFO, billion laughs) is
killed after ``GUARD`` seconds and every test that needs it fails saying so. ``HOSTILE_PARTS`` and
``HOSTILE_GUARD`` narrow a run down for triage (see README.md).
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest

from tests.hostile import scan
from tests.hostile.corpus import BAD, CONTAINED, GOOD, NAMED, PARTS, build_corpus
from tests.hostile.runner import Area, CliRun

pytestmark = pytest.mark.timeout(900)

DESTINATIONS = ("local", "mlflow", "wandb")
DELIVERED = ("exported", "updated", "unchanged", "skipped")
EXPERIMENT = "hostile"


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> Area:
    top = tmp_path_factory.mktemp("hostile")
    out, sentinel, capture = top / "out", top / "sentinel", top / "capture"
    for folder in (out, sentinel, capture):
        folder.mkdir()
    started = time.perf_counter()
    parts = tuple(p for p in os.environ.get("HOSTILE_PARTS", ",".join(PARTS)).split(",") if p)
    corpus = build_corpus(top / "corpus", output_dir=out / "local", sentinel=sentinel, parts=parts)
    print(f"hostile corpus: built {len(corpus.expectations)} jobs in {time.perf_counter() - started:.1f} s")
    return Area(top, corpus, out, sentinel, capture, scan.all_entries(top))


def export_args(area: Area, *extra: str) -> list[str]:
    return ["export", *area.corpus.ids(), "--exec-db", str(area.corpus.exec_db), "--json", *extra]


@pytest.fixture(scope="module")
def export_run(area: Area) -> CliRun:
    secret = area.corpus.canaries.make
    return area.run(
        "export",
        *export_args(area),
        *(x for d in DESTINATIONS for x in ("--dest", d)),
        "--copy-logs",
        "--format",
        "json",
        "--output-dir",
        str(area.local),
        "-o",
        f"export.mlflow.tracking_uri=sqlite:///{area.mlflow_db}",
        "-o",
        f"export.mlflow.experiment_name={EXPERIMENT}",
        "-o",
        "export.mlflow.log_config_params=true",
        "-o",
        f"export.mlflow.description=weekly run {secret('nvapi-', 'the MLflow description option')}",
        "-o",
        f"export.wandb.dir={area.wandb}",
        "-o",
        "export.wandb.mode=offline",
        "-o",
        f"export.wandb.description=weekly run {secret('nvapi-', 'the W&B description option')}",
    )


@pytest.fixture(scope="module")
def csv_runs(area: Area, export_run: CliRun) -> tuple[CliRun, CliRun | None]:
    args = export_args(
        area, "--dest", "local", "--format", "csv", "--copy-logs", "--output-dir", str(area.out / "local-csv")
    )
    first = area.run("export-csv", *args)
    again = None if first.hung else area.run("export-csv-again", *args, "--force")
    return first, again


@pytest.fixture(scope="module")
def ls_run(area: Area, export_run: CliRun) -> CliRun:
    return area.run("ls", "ls", "--json", "--exec-db", str(area.corpus.exec_db))


@pytest.fixture(scope="module")
def show_run(area: Area, export_run: CliRun) -> CliRun:
    ids = [e.job_id for e in area.corpus.of(GOOD, BAD) if e.line is None]
    return area.run("show", "show", *ids, "--json", "--exec-db", str(area.corpus.exec_db))


@pytest.fixture(scope="module")
def auto_run(area: Area, export_run: CliRun) -> CliRun | None:
    if area.corpus.auto_export_dir is None:
        return None  # a partial corpus (HOSTILE_PARTS) without it
    return area.run(
        "auto-export",
        "auto-export",
        "--job-dir",
        str(area.corpus.auto_export_dir),
        "--dest",
        "local",
        "-o",
        f"export.local.output_dir={area.out / 'auto'}",
    )


@pytest.fixture(scope="module")
def every_run(export_run, csv_runs, ls_run, show_run, auto_run) -> list[CliRun]:
    return [r for r in (export_run, *csv_runs, ls_run, show_run, auto_run) if r is not None]


def messages(run: CliRun) -> list[str]:
    """Everything the run said about jobs: the report's problems, notes and reasons, and stderr lines."""
    out = run.err.splitlines()
    try:
        report = json.loads(run.out)
    except ValueError:
        return out + run.out.splitlines()
    if isinstance(report, dict):
        out += [str(p) for p in report.get("problems", [])] + [str(n) for n in report.get("notes", [])]
        out += [f"{o['job_id']}: {o['reason']}" for o in report.get("outcomes", [])]
    return out


def unnamed(expectations, said: list[str]) -> list[str]:
    return [
        f"{e.job_id} ({e.why}): no message names the job and {e.names!r}"
        for e in expectations
        if not any(e.names in m and any(ref in m for ref in e.refs()) for m in said)
    ]


def outcomes_by_job(report: dict) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for o in report["outcomes"]:
        out.setdefault(o["job_id"], {})[o["destination"]] = o
    return out


# ---- the export ----------------------------------------------------------------------------------
def test_the_export_finishes_without_a_traceback_and_exits_1(export_run):
    assert not export_run.hung, export_run.describe()
    assert "Traceback" not in export_run.text(), export_run.describe()
    assert export_run.code == 1, export_run.describe()
    print(
        f"hostile corpus: the export to {', '.join(DESTINATIONS)} took {export_run.seconds:.1f} s (target 60 s)"
    )


def test_every_good_job_is_exported_to_every_destination(area, export_run):
    report = export_run.json()
    got = outcomes_by_job(report)
    missing = [
        f"{e.job_id} -> {d}: {got.get(e.job_id, {}).get(d, {'status': 'no outcome'})}"
        for e in area.corpus.of(GOOD)
        for d in DESTINATIONS
        if got.get(e.job_id, {}).get(d, {}).get("status") not in ("exported", "updated")
    ]
    assert not missing, "\n".join(missing)


def test_the_local_summary_holds_each_good_job_with_its_values(area, export_run):
    export_run.json()
    runs = {r["job_id"]: r for r in json.loads((area.local / "results.json").read_text())["runs"]}
    for e in area.corpus.of(GOOD):
        run = runs.get(e.job_id)
        assert run is not None, f"{e.job_id} ({e.why}) is not in results.json"
        assert run["model_id"] == e.job.model_id
        for name, value in e.job.task_scores().items():
            stored = (
                run["stats"][name.removesuffix("_stderr")]["stderr"]
                if name.endswith("_stderr")
                else (run["metrics"][name])
            )
            assert stored == pytest.approx(value), (e.job_id, name)


def test_mlflow_holds_one_run_per_good_job_with_its_values(area, export_run):
    from mlflow import MlflowClient

    from evalport.adapters.sinks.mlflow_sink import mlflow_metric_key

    export_run.json()
    client = MlflowClient(tracking_uri=f"sqlite:///{area.mlflow_db}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, "no MLflow experiment was created"
    runs: dict[str, list] = {}
    for run in client.search_runs([experiment.experiment_id], max_results=1000):
        runs.setdefault(run.data.tags.get("job_id"), []).append(run)
    for e in area.corpus.of(GOOD):
        assert len(runs.get(e.job_id, [])) == 1, f"{e.job_id} ({e.why}): {len(runs.get(e.job_id, []))} runs"
        metrics = runs[e.job_id][0].data.metrics
        for name, value in e.job.task_scores().items():
            assert metrics[mlflow_metric_key(name)] == pytest.approx(value), (e.job_id, name)


def test_wandb_holds_a_run_per_good_job(area, export_run):
    from tests.support.wandb_records import find_run_files, load_run

    export_run.json()
    job_ids = set()
    for path in find_run_files(area.wandb):
        job_ids.add(load_run(path).config.get("job_id"))
    missing = [f"{e.job_id} ({e.why})" for e in area.corpus.of(GOOD) if e.job_id not in job_ids]
    assert not missing, f"no W&B run for: {missing}"


def test_every_bad_job_is_named_with_its_file_and_not_exported(area, export_run):
    report = export_run.json()
    got = outcomes_by_job(report)
    said = messages(export_run)
    problems = unnamed(area.corpus.of(BAD, NAMED), said)
    problems += [
        f"{e.job_id} ({e.why}) -> {d}: {o['status']}"
        for e in area.corpus.of(BAD)
        for d, o in got.get(e.job_id, {}).items()
        if o["status"] in DELIVERED
    ]
    problems += [
        f"{e.job_id} ({e.why}) -> {d}: failed without a reason"
        for e in area.corpus.of(CONTAINED, NAMED)
        for d, o in got.get(e.job_id, {}).items()
        if o["status"] == "failed" and not o["reason"]
    ]
    assert not problems, "\n".join(problems) + "\n\nwhat was said:\n" + "\n".join(said)[-6000:]


# ---- CSV -------------------------------------------------------------------------------------------
def csv_files(area: Area) -> list[Path]:
    return sorted((area.out / "local-csv").rglob("*.csv"))


def test_csv_cells_are_neutralised_and_job_id_stays_the_real_one(area, csv_runs):
    first, _ = csv_runs
    assert not first.hung and "Traceback" not in first.text(), first.describe()
    bad_cells = []
    for path in csv_files(area):
        for number, row in enumerate(csv.reader(path.open(newline="", encoding="utf-8"))):
            for cell in row:
                if cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and not _is_number(cell)):
                    bad_cells.append(f"{path.name} row {number}: {cell!r}")
    assert not bad_cells, "cells a spreadsheet would evaluate:\n" + "\n".join(bad_cells[:40])

    header, *rows = list(
        csv.reader((area.out / "local-csv" / "results.csv").open(newline="", encoding="utf-8"))
    )
    assert header.count("job_id") == 1, f"{header.count('job_id')} columns are named job_id"
    column = header.index("job_id")
    exported = [r[column] for r in rows]
    for e in area.corpus.of(GOOD):
        assert exported.count(e.job_id) == 1, f"{e.job_id} ({e.why}) has {exported.count(e.job_id)} rows"


def test_a_forced_csv_re_export_keeps_one_row_per_job(area, csv_runs):
    first, again = csv_runs
    assert again is not None, f"the first CSV export did not finish: {first.describe()}"
    assert not again.hung and "Traceback" not in again.text(), again.describe()
    header, *rows = list(
        csv.reader((area.out / "local-csv" / "results.csv").open(newline="", encoding="utf-8"))
    )
    ids = [r[header.index("job_id")] for r in rows]
    assert len(ids) == len(set(ids)), f"duplicated rows: {sorted(i for i in set(ids) if ids.count(i) > 1)}"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# ---- the other commands -----------------------------------------------------------------------------
def test_ls_lists_the_good_jobs_and_names_each_broken_record(area, ls_run):
    listed = ls_run.json()
    assert "Traceback" not in ls_run.text(), ls_run.describe()
    ids = {j["job_id"] for inv in listed for j in inv["jobs"]}
    assert {e.job_id for e in area.corpus.of(GOOD)} <= ids, ls_run.describe()
    records = [e for e in area.corpus.of(BAD) if e.line is not None]
    problems = unnamed(records, ls_run.err.splitlines())
    assert not problems, "\n".join(problems) + "\n" + ls_run.describe()


def test_show_shows_the_good_jobs_and_names_each_bad_file(area, show_run):
    shown = {r["job_id"]: r for r in show_run.json()}
    assert "Traceback" not in show_run.text(), show_run.describe()
    for e in area.corpus.of(GOOD):
        assert e.job_id in shown, f"{e.job_id} ({e.why}) not shown"
        metrics = shown[e.job_id]["metrics"]
        for name, value in e.job.task_scores().items():
            if not name.endswith("_stderr"):
                assert metrics.get(name) == pytest.approx(value), (e.job_id, name)
    bad_files = [e for e in area.corpus.of(BAD) if e.line is None]
    problems = unnamed(bad_files, show_run.err.splitlines())
    assert not problems, "\n".join(problems) + "\n" + show_run.describe()
    assert show_run.code == 1, show_run.describe()


def test_auto_export_of_a_bad_job_exits_3_naming_its_file(area, auto_run):
    if auto_run is None:
        pytest.skip("the corpus was built without its bad result files")
    assert not auto_run.hung and "Traceback" not in auto_run.text(), auto_run.describe()
    assert auto_run.code == 3, auto_run.describe()
    assert "results.yml" in auto_run.text(), auto_run.describe()


# ---- nothing escapes ---------------------------------------------------------------------------------
def test_nothing_is_written_outside_the_output_folder(area, export_run, every_run):
    export_run.json()  # a run that crashed or hung wrote nothing to look at
    assert not list(area.sentinel.iterdir()), (
        f"written into the sentinel folder: {list(area.sentinel.rglob('*'))}"
    )
    after = scan.all_entries(area.top)
    new = sorted(
        p for p in after - area.before if not (p.is_relative_to(area.out) or p.is_relative_to(area.capture))
    )
    assert not new, "written outside the output folder:\n" + "\n".join(map(str, new[:40]))


def test_no_special_file_is_copied_into_the_output(area, export_run, every_run):
    export_run.json()  # a run that crashed or hung wrote nothing to look at
    assert not scan.special_files(area.out), scan.special_files(area.out)


def test_no_canary_is_written_or_printed(area, export_run, every_run):
    export_run.json()  # a run that crashed or hung wrote nothing to look at
    canaries = area.corpus.canaries
    leaks: list[str] = []
    for run in every_run:
        leaks += canaries.leaks_in(run.out, f"`{run.name}` stdout")
        leaks += canaries.leaks_in(run.err, f"`{run.name}` stderr")
    for path in scan.regular_files(area.out):
        for label, data in scan.views(path):
            leaks += canaries.leaks_in(data, label.removeprefix(f"{area.out}/"))
    shapes = sorted({leak.split(": ", 1)[-1].split(" (", 1)[0] for leak in leaks})
    assert not leaks, (
        f"{len(leaks)} leaks of {len(shapes)} planted shapes:\n  "
        + "\n  ".join(shapes)
        + "\n\nfirst leaks:\n"
        + "\n".join(sorted(leaks)[:60])
    )
