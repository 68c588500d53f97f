"""evalport on a sheet nemo-evaluator-launcher 0.2.6 filled: its rows are updated by ``Job ID``.

The launcher's gsheets exporter reaches Google through gspread's fixed ``sheets.googleapis.com``
URLs (no endpoint setting, no environment variable), so it cannot be pointed at the tests' Sheets
server without patching it. Instead :func:`launcher_sheet` writes the state the launcher leaves,
as its source (``exporters/gsheets.py``, version 0.2.6) builds it: on the first worksheet, the
header ``Model Name, Harness, Task Name, Executor, Container, Invocation ID, Job ID`` then every
metric column sorted by name, a metric named by its flat name without the ``<task>_`` prefix,
one row per job with its values as numbers (``worksheet.update`` sends them RAW).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalport.adapters.sinks.gsheets_layout import BASE_COLUMNS, JOB_ID
from evalport.app.cli import main
from evalport.testing.factory import LauncherHome, WrittenJob, write_launcher_home
from tests.support.sheets_server import FakeSheetsServer

pytest.importorskip("gspread")


@pytest.fixture(scope="module")
def sheets() -> Iterator[FakeSheetsServer]:
    with FakeSheetsServer() as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> LauncherHome:
    return write_launcher_home(
        tmp_path_factory.mktemp("launcher"), invocations=1, tasks_per_invocation=3, seed=9
    )


@pytest.fixture(scope="module")
def key_file(sheets: FakeSheetsServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sheets.write_service_account_file(tmp_path_factory.mktemp("keys") / "sa.json")


def launcher_metrics(job: WrittenJob) -> dict[str, float]:
    return {k.removeprefix(f"{job.task}_"): v for k, v in job.task_scores().items()}


def launcher_sheet(sheets: FakeSheetsServer, jobs: list[WrittenJob]) -> str:
    """A spreadsheet as the launcher's ``_update_worksheet`` leaves it after exporting ``jobs``."""
    metric_columns = sorted({name for job in jobs for name in launcher_metrics(job)})
    header = [*BASE_COLUMNS, *metric_columns]
    rows = []
    for job in jobs:
        cells = {
            "Model Name": job.model_id,
            "Harness": job.harness,
            "Task Name": job.task,
            "Executor": job.record["executor"],
            "Container": job.record["data"].get("container") or job.record["data"].get("eval_image") or "",
            "Invocation ID": job.invocation_id,
            "Job ID": job.job_id,
            **launcher_metrics(job),
        }
        rows.append([cells.get(name, "") for name in header])
    return sheets.create_spreadsheet(f"launcher-{uuid.uuid4().hex[:8]}", values=[header, *rows])


def export(home, sheets, key_file, capsys, spreadsheet: str, **options: Any) -> dict[str, Any]:
    opts = {
        "endpoint": sheets.url,
        "service_account_file": key_file,
        "spreadsheet_id": spreadsheet,
        **options,
    }
    argv = ["export", *home.invocation_ids, "--dest", "gsheets", "--json", "--exec-db", str(home.exec_db)]
    for key, value in opts.items():
        argv += ["-o", f"export.gsheets.{key}={value}"]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


def rows_by_job(cells: list[list[Any]]) -> dict[str, list[dict[str, Any]]]:
    header = cells[0]
    out: dict[str, list[dict[str, Any]]] = {}
    for row in cells[1:]:
        record = dict(zip(header, row, strict=False))
        if record.get(JOB_ID):
            out.setdefault(str(record[JOB_ID]), []).append(record)
    return out


@pytest.mark.parametrize("compat", ["launcher", "evalport"])
def test_rows_the_launcher_wrote_are_updated_by_job_id_never_appended_again(
    sheets, home, key_file, capsys, compat
):
    sheet = launcher_sheet(sheets, home.jobs)
    before = sheets.cells(sheet)

    report = export(home, sheets, key_file, capsys, sheet, compat=compat)

    assert {o["status"] for o in report["outcomes"]} <= {"updated", "unchanged"}, report
    after = sheets.cells(sheet)
    assert len(after) == len(before), "no row added"
    rows = rows_by_job(after)
    assert sorted(rows) == sorted(j.job_id for j in home.jobs)
    assert all(len(found) == 1 for found in rows.values())


def test_with_compat_the_launchers_metric_columns_are_the_ones_filled(sheets, home, key_file, capsys):
    sheet = launcher_sheet(sheets, home.jobs)
    header_before = sheets.cells(sheet)[0]

    export(home, sheets, key_file, capsys, sheet, compat="launcher")

    cells = sheets.cells(sheet)
    assert cells[0][: len(header_before)] == header_before, "the launcher's columns stay where they are"
    rows = rows_by_job(cells)
    for job in home.jobs:
        [row] = rows[job.job_id]
        for name, value in launcher_metrics(job).items():
            assert row[name] == pytest.approx(value), name
        assert not any(str(k).startswith(f"{job.task}_") and row.get(k) not in ("", None) for k in row), (
            "no evalport-named duplicate of a launcher column"
        )


def test_with_compat_a_new_sheet_has_the_launchers_name_header_and_column_order(
    sheets, home, key_file, capsys
):
    name = "NeMo Evaluator Launcher Results"
    assert not sheets.find_spreadsheets(name)
    argv = ["export", *home.invocation_ids, "--dest", "gsheets", "--json", "--exec-db", str(home.exec_db)]
    for key, value in {
        "endpoint": sheets.url,
        "service_account_file": key_file,
        "compat": "launcher",
    }.items():
        argv += ["-o", f"export.gsheets.{key}={value}"]
    assert main(argv) == 0, capsys.readouterr().out
    [sheet] = sheets.find_spreadsheets(name)
    header = sheets.cells(sheet)[0]
    assert tuple(header[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    metrics = header[len(BASE_COLUMNS) :]
    assert metrics == sorted(metrics)
    wanted = {n for job in home.jobs for n in launcher_metrics(job)}
    assert wanted <= set(metrics)
