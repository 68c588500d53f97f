"""``evalport export --dest gsheets`` end to end: the CLI, the real gspread, a fake Sheets server."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalport.adapters.sinks.gsheets_layout import BASE_COLUMNS, JOB_ID, column_letters
from evalport.app.cli import main
from evalport.testing.factory import LauncherHome, write_launcher_home
from tests.support.sheets_server import ApiError, FakeSheetsServer

pytest.importorskip("gspread")

ATTEMPTS = 3
JOB_COL = BASE_COLUMNS.index(JOB_ID)


class RecordingSheetsServer(FakeSheetsServer):
    """The fake server, also remembering the ranges each values:batchUpdate wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.written_ranges: list[str] = []
        self.refuse_writes = 0  # answer this many values:batchUpdate requests with a 503

    def _values_batch_update(self, spreadsheet: Any, body: Any) -> dict[str, Any]:
        if self.refuse_writes:
            self.refuse_writes -= 1
            raise ApiError(503, "The service is currently unavailable.")
        self.written_ranges.extend(d.get("range", "") for d in body.get("data") or [])
        return super()._values_batch_update(spreadsheet, body)


@pytest.fixture(scope="module")
def sheets() -> Iterator[RecordingSheetsServer]:
    with RecordingSheetsServer() as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> LauncherHome:
    """Two invocations of five tasks each (10 jobs, ~75 distinct metric columns)."""
    return write_launcher_home(
        tmp_path_factory.mktemp("launcher"), invocations=2, tasks_per_invocation=5, seed=3
    )


@pytest.fixture(scope="module")
def key_file(sheets: FakeSheetsServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sheets.write_service_account_file(tmp_path_factory.mktemp("keys") / "sa.json")


@pytest.fixture
def sheet(sheets: FakeSheetsServer) -> str:
    return sheets.create_spreadsheet(f"e2e-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def export(sheets, key_file, home, capsys):
    """Runs ``evalport export IDS --dest gsheets --json`` and returns (exit code, report dict)."""

    def run(*ids: str, spreadsheet: str | None = None, **options: Any) -> tuple[int, dict[str, Any]]:
        opts = {
            "endpoint": sheets.url,
            "service_account_file": key_file,
            "retries": ATTEMPTS,
            "retry_wait": 0.01,
            "retry_timeout": 10,
            **options,
        }
        if spreadsheet:
            opts["spreadsheet_id"] = spreadsheet
        argv = ["export", *ids, "--dest", "gsheets", "--json", "--exec-db", str(home.exec_db)]
        for key, value in opts.items():
            argv += ["-o", f"export.gsheets.{key}={value}"]
        code = main(argv)
        out = capsys.readouterr().out
        return code, json.loads(out)

    return run


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {o["job_id"]: o["status"] for o in report["outcomes"]}


def job_rows(cells: list[list[Any]]) -> dict[str, list[int]]:
    header = cells[0]
    col = header.index(JOB_ID)
    rows: dict[str, list[int]] = {}
    for n, row in enumerate(cells[1:], start=2):
        if len(row) > col and row[col]:
            rows.setdefault(row[col], []).append(n)
    return rows


def row_of(cells: list[list[Any]], job_id: str) -> dict[str, Any]:
    header = cells[0]
    (n,) = job_rows(cells)[job_id]
    return dict(zip(header, cells[n - 1], strict=False))


def bump_first_score(results_yml: Path, task: str, by: float) -> None:
    """Raise the task's first score (it appears under both ``tasks`` and ``groups``) by ``by``."""
    import yaml

    doc = yaml.safe_load(results_yml.read_text())
    for section in ("tasks", "groups"):
        metrics = doc["results"].get(section, {}).get(task, {}).get("metrics", {})
        for metric in list(metrics.values())[:1]:
            for score in list(metric["scores"].values())[:1]:
                score["value"] += by
    results_yml.write_text(yaml.safe_dump(doc))


# ---- creating, appending, growing ---------------------------------------------------------------


def test_a_named_spreadsheet_is_created_and_the_url_is_printed(sheets, key_file, home, capsys):
    name = f"created-{uuid.uuid4().hex[:8]}"
    inv = home.invocation_ids[0]
    code = main(
        [
            "export",
            inv,
            "--dest",
            "gsheets",
            "--exec-db",
            str(home.exec_db),
            "-o",
            f"export.gsheets.endpoint={sheets.url}",
            "-o",
            f"export.gsheets.service_account_file={key_file}",
            "-o",
            f"export.gsheets.spreadsheet_name={name}",
        ]
    )
    out = capsys.readouterr().out.replace("\n", "")  # rich wraps long lines
    assert code == 0, out
    (sid,) = sheets.find_spreadsheets(name)
    assert "gsheets: 5 exported" in out and f"https://docs.google.com/spreadsheets/d/{sid}" in out
    cells = sheets.cells(sid)
    assert tuple(cells[0][:7]) == BASE_COLUMNS
    assert sorted(job_rows(cells)) == sorted(j.job_id for j in home.jobs if j.invocation_id == inv)


def test_a_second_invocation_appends_rows_below_the_first(export, sheets, sheet, home):
    first, second = home.invocation_ids
    assert export(first, spreadsheet=sheet)[0] == 0
    code, report = export(second, spreadsheet=sheet)
    assert code == 0 and set(statuses(report).values()) == {"exported"}
    rows = job_rows(sheets.cells(sheet))
    assert all(len(r) == 1 for r in rows.values()), rows
    assert sorted(rows) == sorted(j.job_id for j in home.jobs)
    assert max(rows[j.job_id][0] for j in home.jobs if j.invocation_id == first) < min(
        rows[j.job_id][0] for j in home.jobs if j.invocation_id == second
    )


def test_many_metrics_grow_the_header_past_column_z(export, sheets, sheet, home):
    small = next(j for j in home.jobs if j.task == "gpqa_diamond")
    assert export(small.job_id, spreadsheet=sheet)[0] == 0
    assert sheets.grid_size(sheet)[1] == 26
    code, _ = export(*home.invocation_ids, spreadsheet=sheet)
    assert code == 0
    cells = sheets.cells(sheet)
    width = len(cells[0])
    assert width > 52, f"only {width} columns"  # past AZ
    assert sheets.grid_size(sheet)[1] >= width
    assert len(set(cells[0])) == width, "a column header appears twice"
    for col in range(26, width):  # every column past Z holds a value for some job
        assert any(len(row) > col and isinstance(row[col], (int, float)) for row in cells[1:]), cells[0][col]


# ---- re-exporting ---------------------------------------------------------------------------------


def test_re_export_with_a_changed_value_updates_the_row_in_place(export, sheets, sheet, home):
    inv = home.invocation_ids[0]
    assert export(inv, spreadsheet=sheet)[0] == 0
    job = home.jobs[0]
    before = sheets.cells(sheet)
    row_before = job_rows(before)[job.job_id]
    results_yml = job.directory / "artifacts" / "results.yml"
    original = results_yml.read_text()
    try:
        bump_first_score(results_yml, job.task, 0.125)
        code, report = export(inv, spreadsheet=sheet)
    finally:
        results_yml.write_text(original)
    assert code == 0
    got = statuses(report)
    assert got.pop(job.job_id) == "updated" and set(got.values()) == {"unchanged"}
    after = sheets.cells(sheet)
    assert job_rows(after)[job.job_id] == row_before  # same row, no duplicate
    changed = [k for k, v in row_of(after, job.job_id).items() if row_of(before, job.job_id)[k] != v]
    assert len(changed) == 1 and row_of(after, job.job_id)[changed[0]] == pytest.approx(
        row_of(before, job.job_id)[changed[0]] + 0.125
    )
    assert len(after) == len(before)


def test_a_persons_column_and_notes_survive_re_exports(export, sheets, sheet, home):
    small = next(j for j in home.jobs if j.task == "gpqa_diamond")
    assert export(small.job_id, spreadsheet=sheet)[0] == 0
    cells = sheets.cells(sheet)
    notes_col = len(cells[0])
    sheets.set_cells(sheet, f"{column_letters(notes_col)}1", [["Notes"]])
    sheets.set_cells(sheet, f"{column_letters(notes_col)}2", [["looks off, rerun"]])
    sheets.set_cells(sheet, "A4", [["person's footnote"]])

    results_yml = small.directory / "artifacts" / "results.yml"
    original = results_yml.read_text()
    try:
        bump_first_score(results_yml, small.task, 0.25)
        code, report = export(*home.invocation_ids, spreadsheet=sheet)
    finally:
        results_yml.write_text(original)
    assert code == 0 and statuses(report)[small.job_id] == "updated"
    after = sheets.cells(sheet)
    assert after[0][notes_col] == "Notes" and after[1][notes_col] == "looks off, rerun"
    assert after[1][JOB_COL] == small.job_id
    assert after[3][0] == "person's footnote" and len(after[3]) == 1
    assert after[0].count("Notes") == 1 and len(after[0]) > notes_col + 1  # new metrics after Notes
    rows = job_rows(after)
    assert sorted(rows) == sorted(j.job_id for j in home.jobs)
    assert all(n > 4 for j in home.jobs if j is not small for n in rows[j.job_id])


def test_doctor_checks_the_key_the_token_and_the_spreadsheet(sheets, key_file, sheet, capsys):
    base = [
        "doctor",
        "--dest",
        "gsheets",
        "-o",
        f"export.gsheets.endpoint={sheets.url}",
        "-o",
        f"export.gsheets.service_account_file={key_file}",
    ]
    assert main([*base, "-o", f"export.gsheets.spreadsheet_id={sheet}"]) == 0
    assert "reachable" in capsys.readouterr().err.replace("\n", "")
    assert main([*base, "-o", "export.gsheets.spreadsheet_id=does-not-exist"]) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    assert "404" in err and "-----BEGIN" not in err


# ---- faults ---------------------------------------------------------------------------------------


def test_a_429_is_retried_and_the_export_succeeds(export, sheets, sheet, home):
    sheets.fail_next(1, 429)
    code, report = export(home.invocation_ids[0], spreadsheet=sheet)
    assert code == 0, report
    assert set(statuses(report).values()) == {"exported"}


def test_500s_until_the_retry_limit_fail_every_job_with_googles_message(export, sheets, sheet, home):
    sheets.fail_next(ATTEMPTS, 500)
    code, report = export(home.invocation_ids[0], spreadsheet=sheet)
    assert code == 1
    assert set(statuses(report).values()) == {"failed"}
    for outcome in report["outcomes"]:
        assert "Internal error encountered" in outcome["reason"] and sheet in outcome["reason"]
        assert f"{ATTEMPTS} attempts" in outcome["reason"]
    assert sheets.cells(sheet) == []


def test_a_write_refused_until_the_limit_leaves_no_half_written_row(export, sheets, sheet, home):
    sheets.refuse_writes = ATTEMPTS
    code, report = export(home.invocation_ids[0], spreadsheet=sheet)
    assert code == 1 and set(statuses(report).values()) == {"failed"}
    assert "currently unavailable" in report["outcomes"][0]["reason"]
    assert sheets.cells(sheet) == []
    assert sheets.refuse_writes == 0


# ---- cost -------------------------------------------------------------------------------------------


def _big_sheet(sheets: FakeSheetsServer, rows: int) -> str:
    header = [*BASE_COLUMNS, "old_metric"]
    values = [header] + [
        ["m", "h", "t", "local", "", f"old{i:05d}", f"old{i:05d}.0", i / 7] for i in range(rows)
    ]
    return sheets.create_spreadsheet(f"big-{uuid.uuid4().hex[:8]}", rows=rows + 1, cols=26, values=values)


_ROW_RANGE = re.compile(r"!([A-Z]+)(\d+)(?::([A-Z]*)(\d*))?$")


def _touches_old_rows(a1: str, old_rows: int) -> bool:
    """True when a range reaches into rows 2..old_rows+1 over more than one column."""
    cells = a1.rsplit("!", 1)[-1]
    if cells == "1:1":
        return False
    m = _ROW_RANGE.search(a1)
    assert m, f"unexpected range {a1!r}"
    col0, row0, col1, row1 = m.groups()
    single_column = col1 in (None, col0)
    last = int(row1) if row1 else None
    if int(row0) == 1 and last == 1:
        return False  # header cells
    return int(row0) <= old_rows + 1 and not single_column and (last is None or last >= 2)


def _export_ten_into(export, sheets, home, old_rows: int) -> list[Any]:
    """Exports the 10 jobs into a sheet holding ``old_rows`` rows; checks the old rows; returns the requests."""
    sid = _big_sheet(sheets, old_rows)
    before = sheets.cells(sid)
    sheets.reset_requests()
    sheets.written_ranges.clear()
    code, report = export(*home.invocation_ids, spreadsheet=sid)
    assert code == 0 and len(report["outcomes"]) == 10
    requests = sheets.requests
    read_ranges = [rng for r in requests for rng in r.query.get("ranges", [])]
    assert f"'Sheet1'!{column_letters(JOB_COL)}2:{column_letters(JOB_COL)}" in read_ranges
    assert not [r for r in read_ranges if _touches_old_rows(r, old_rows)], read_ranges
    assert not [r for r in sheets.written_ranges if _touches_old_rows(r, old_rows)], sheets.written_ranges
    assert not [r for r in requests if r.method == "PUT" or ":append" in r.path]
    after = sheets.cells(sid)
    assert [row[:8] for row in after[1 : old_rows + 1]] == [row[:8] for row in before[1:]]
    assert len(after) == old_rows + 11
    return requests


def test_exporting_ten_jobs_costs_a_few_requests_whatever_the_sheet_holds(export, sheets, home):
    small = _export_ten_into(export, sheets, home, 20)
    big = _export_ten_into(export, sheets, home, 2000)
    assert len(big) <= 5, [f"{r.method} {r.path}" for r in big]
    assert len(small) == len(big), "the request count depends on the sheet's size"
