"""The gsheets sink runs the shared SinkContract through the real gspread against a fake Sheets server."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from evalport.adapters.sinks.gsheets.layout import BASE_COLUMNS, JOB_ID, NON_FINITE, metric_column
from evalport.adapters.sinks.gsheets.plan import MAX_ROWS_PER_WRITE
from evalport.adapters.sinks.gsheets_sink import GsheetsSink
from evalport.domain.report import Status
from evalport.testing import SinkContract
from evalport.testing.sink_contract import StoredRun
from tests.support.sheets_server import FakeSheetsServer

pytest.importorskip("gspread")

ARTIFACT_OPTIONS = ("copy_artifacts", "copy_logs", "only_required", "exclude")
FAST_RETRY = {"retries": 3, "retry_wait": 0.01, "retry_timeout": 5.0, "timeout": 10.0}


@pytest.fixture(scope="module")
def sheets() -> Iterator[FakeSheetsServer]:
    with FakeSheetsServer() as server:
        yield server


@pytest.fixture(scope="module")
def key_file(sheets: FakeSheetsServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sheets.write_service_account_file(tmp_path_factory.mktemp("gsheets") / "sa.json")


def stored_runs(server: FakeSheetsServer, spreadsheet_id: str, job_id: str) -> list[StoredRun]:
    """One StoredRun per row whose Job ID is ``job_id``; metric cells mapped back to floats."""
    rows = server.cells(spreadsheet_id)
    if not rows:
        return []
    header = [str(h) for h in rows[0]]
    job_col = header.index(JOB_ID)
    runs = []
    for row in rows[1:]:
        if job_col >= len(row) or row[job_col] != job_id:
            continue
        metrics: dict[str, float] = {}
        for name, cell in zip(header, row, strict=False):
            if name in BASE_COLUMNS or cell == "":
                continue
            value = NON_FINITE.get(cell, cell) if isinstance(cell, str) else cell
            if isinstance(value, (int, float)):
                metrics[name] = float(value)
        text = " ".join(map(str, header)) + " " + " ".join(map(str, row))
        runs.append(StoredRun(job_id, metrics, set(), text, {"row": dict(zip(header, row, strict=False))}))
    return runs


class TestGsheetsSink(SinkContract):
    @pytest.fixture
    def spreadsheet_id(self, sheets: FakeSheetsServer) -> str:
        return sheets.create_spreadsheet(f"contract-{uuid.uuid4().hex[:8]}")

    @pytest.fixture
    def make_sink(self, sheets, key_file, spreadsheet_id):
        def make(**options):
            # The shared suite passes artifact options to every sink; this one has no artifacts.
            options = {k: v for k, v in options.items() if k not in ARTIFACT_OPTIONS}
            config = {
                "spreadsheet_id": spreadsheet_id,
                "service_account_file": key_file,
                "endpoint": sheets.url,
                **FAST_RETRY,
                **options,
            }
            return GsheetsSink(config)

        return make

    @pytest.fixture
    def read_back(self, sheets, spreadsheet_id):
        return lambda sink, result: stored_runs(sheets, spreadsheet_id, result.job_id)

    @pytest.fixture
    def refusing_sink(self, key_file):
        return GsheetsSink(
            {
                "spreadsheet_id": "any",
                "service_account_file": key_file,
                "endpoint": "http://127.0.0.1:9",
                **FAST_RETRY,
            }
        )

    def stored_name(self, name: str) -> str:
        return metric_column(name)

    # ---- beyond the shared contract ---------------------------------------------------------------
    def test_the_header_holds_the_base_columns_then_the_metrics(
        self, make_sink, results, sheets, spreadsheet_id
    ):
        self.export(make_sink(), results[:1])
        header = sheets.cells(spreadsheet_id)[0]
        assert tuple(header[: len(BASE_COLUMNS)]) == BASE_COLUMNS
        assert set(header[len(BASE_COLUMNS) :]) == set(results[0][0].flat_metrics())

    def test_non_finite_values_are_written_as_googles_strings(
        self, make_sink, results, sheets, spreadsheet_id
    ):
        from evalport.domain.model import Metric

        result, directory = results[0]
        result = result.with_metrics(
            [Metric("t_nan", math.nan), Metric("t_inf", math.inf), Metric("t_ninf", -math.inf)]
        )
        self.export(make_sink(), [(result, directory)])
        header, row = sheets.cells(spreadsheet_id)[:2]
        cells = dict(zip(header, row, strict=False))
        assert (cells["t_nan"], cells["t_inf"], cells["t_ninf"]) == ("NaN", "Infinity", "-Infinity")

    def test_an_unchanged_re_export_reads_but_writes_nothing(self, make_sink, results, sheets):
        self.export(make_sink(), results)
        sheets.reset_requests()
        outcomes = self.export(make_sink(), results)
        assert {o.status for o in outcomes} == {Status.UNCHANGED}
        assert not [r for r in sheets.requests if r.method != "GET"], sheets.requests

    def test_a_missing_worksheet_is_created_and_written(self, make_sink, results, sheets, spreadsheet_id):
        self.export(make_sink(worksheet="evals"), results[:1])
        assert sheets.sheet_titles(spreadsheet_id) == ["Sheet1", "evals"]
        assert sheets.cells(spreadsheet_id, "evals")[1][BASE_COLUMNS.index(JOB_ID)] == results[0][0].job_id
        assert sheets.cells(spreadsheet_id) == []

    def test_a_spreadsheet_name_is_created_once_and_shared(self, sheets, key_file, results):
        name = f"by-name-{uuid.uuid4().hex[:8]}"
        options = {
            "spreadsheet_name": name,
            "service_account_file": key_file,
            "endpoint": sheets.url,
            "share_with": "ana@example.com, bo@example.com",
            **FAST_RETRY,
        }
        first = GsheetsSink(options)
        self.export(first, results[:1])
        self.export(GsheetsSink(options), results[1:2])
        (sid,) = sheets.find_spreadsheets(name)
        assert sorted(p["emailAddress"] for p in sheets.permissions(sid)) == [
            "ana@example.com",
            "bo@example.com",
        ]
        assert len(sheets.cells(sid)) == 3
        assert sid in first.describe()

    def test_a_header_without_job_id_is_refused_and_left_alone(
        self, make_sink, results, sheets, spreadsheet_id
    ):
        sheets.set_cells(spreadsheet_id, "A1", [["Name", "Score"], ["x", 1]])
        outcomes = self.export(make_sink(), results[:1])
        assert outcomes[0].status is Status.FAILED and "'Job ID'" in outcomes[0].reason
        assert sheets.cells(spreadsheet_id) == [["Name", "Score"], ["x", 1]]

    def test_check_succeeds_quickly_and_names_the_spreadsheet(self, make_sink, spreadsheet_id):
        result = make_sink().check()
        assert result.ok, result.message
        assert spreadsheet_id in result.message and "Sheet1" in result.message

    def test_check_reports_a_missing_credentials_file(self, sheets, tmp_path):
        sink = GsheetsSink(
            {"spreadsheet_id": "x", "service_account_file": tmp_path / "nope.json", "endpoint": sheets.url}
        )
        result = sink.check()
        assert not result.ok and "nope.json" in result.message and "does not exist" in result.message

    def test_check_reports_an_unknown_spreadsheet_id(self, make_sink):
        result = make_sink(spreadsheet_id="no-such-sheet").check()
        assert not result.ok and "404" in result.message and "share" in result.message

    def test_google_application_credentials_is_used_when_no_key_file_is_given(
        self, sheets, key_file, spreadsheet_id, results, monkeypatch
    ):
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        sink = GsheetsSink({"spreadsheet_id": spreadsheet_id, "endpoint": sheets.url, **FAST_RETRY})
        assert self.export(sink, results[:1])[0].status is Status.EXPORTED
        assert "GOOGLE_APPLICATION_CREDENTIALS" in sink.check().message

    def test_missing_or_unusable_credentials_fail_with_what_to_do(
        self, sheets, tmp_path, results, monkeypatch
    ):
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        sink = GsheetsSink({"spreadsheet_id": "x", "endpoint": sheets.url})
        (outcome,) = sink.export(self.items(sink, results[:1]))
        assert outcome.status is Status.FAILED and "service_account_file" in outcome.reason
        odd = tmp_path / "client.json"
        odd.write_text('{"something": "else"}')
        result = GsheetsSink({"spreadsheet_id": "x", "oauth_file": odd, "endpoint": sheets.url}).check()
        assert not result.ok and "neither a service-account key nor an OAuth client file" in result.message

    def test_a_grid_resized_by_someone_else_between_exports_is_respected(
        self, make_sink, results, sheets, key_file, spreadsheet_id
    ):
        import gspread

        from tests.support.sheets_server import http_client_for

        sink = make_sink()
        self.export(sink, results[:1])
        other = gspread.service_account(filename=str(key_file), http_client=http_client_for(sheets.url))
        other.open_by_key(spreadsheet_id).sheet1.resize(rows=2, cols=40)  # a person trims the rows
        sheets.set_cells(spreadsheet_id, "AN1", [["Owner"]])
        self.export(sink, results[1:])  # the same sink: must not trust a cached grid size
        rows, cols = sheets.grid_size(spreadsheet_id)
        header = sheets.cells(spreadsheet_id)[0]
        assert rows == 1 + len(results) and cols == len(header) > 40  # new metrics after "Owner"
        assert header[39] == "Owner" and "" not in header[40:]
        for result, _ in results:
            self.only(stored_runs(sheets, spreadsheet_id, result.job_id))

    def test_a_column_a_person_inserted_before_job_id_is_followed(
        self, make_sink, results, sheets, key_file, spreadsheet_id
    ):
        import gspread

        from tests.support.sheets_server import http_client_for

        self.export(make_sink(), results)
        other = gspread.service_account(filename=str(key_file), http_client=http_client_for(sheets.url))
        spreadsheet = other.open_by_key(spreadsheet_id)
        span = {"sheetId": spreadsheet.sheet1.id, "dimension": "COLUMNS", "startIndex": 0, "endIndex": 1}
        spreadsheet.batch_update({"requests": [{"insertDimension": {"range": span}}]})
        sheets.set_cells(spreadsheet_id, "A1", [["Reviewer"], ["ana"]])
        result, directory = results[0]
        first = result.metrics[0]
        changed = result.with_metrics([replace(first, value=first.value + 1), *result.metrics[1:]])
        outcomes = self.export(make_sink(), [(changed, directory), *results[1:]])
        assert [o.status for o in outcomes] == [Status.UPDATED] + [Status.UNCHANGED] * (len(results) - 1)
        cells = sheets.cells(spreadsheet_id)
        assert [row[0] for row in cells[:2]] == ["Reviewer", "ana"] and len(cells) == 1 + len(results)
        stored = self.only(stored_runs(sheets, spreadsheet_id, result.job_id))
        assert stored.metrics[first.name] == pytest.approx(first.value + 1)

    def test_text_cells_are_written_raw_so_a_formula_stays_text(
        self, make_sink, results, sheets, spreadsheet_id
    ):
        result, directory = results[0]
        odd = {"model_id": '=IMPORTXML("http://evil.invalid","//a")', "harness": "'quoted", "task": "+1"}
        odd |= {"container": "0042", "executor": "TRUE"}
        hostile = replace(result, job_id="=1+1", **odd)
        first = self.export(make_sink(), [(hostile, directory)])
        again = self.export(make_sink(), [(hostile, directory)])
        assert (first[0].status, again[0].status) == (Status.EXPORTED, Status.UNCHANGED)
        header, *rows = sheets.cells(spreadsheet_id)
        assert len(rows) == 1
        cells = dict(zip(header, rows[0], strict=False))
        assert cells["Job ID"] == "=1+1" and cells["Model Name"] == odd["model_id"]
        assert (cells["Harness"], cells["Task Name"]) == ("'quoted", "+1")
        assert (cells["Container"], cells["Executor"]) == ("0042", "TRUE")

    def test_a_sheet_that_goes_down_mid_export_leaves_the_rest_not_tried_and_a_rerun_completes_them(
        self, make_sink, results, sheets, spreadsheet_id
    ):
        result, directory = results[0]
        count = 2 * MAX_ROWS_PER_WRITE + 10  # three write requests: written, failed, not tried
        many = [(replace(result, job_id=f"{result.invocation_id}.{n}"), directory) for n in range(count)]
        sheets.go_down_after(1)  # right after the first write request is answered
        try:
            started = time.perf_counter()
            first = self.export(make_sink(), many)
            elapsed = time.perf_counter() - started
        finally:
            sheets.restart()

        statuses = [o.status for o in first]
        assert statuses == [Status.EXPORTED] * MAX_ROWS_PER_WRITE + [Status.FAILED] * (
            count - MAX_ROWS_PER_WRITE
        )
        failed, skipped = first[MAX_ROWS_PER_WRITE], first[2 * MAX_ROWS_PER_WRITE :]
        assert "cannot reach the Google Sheets API" in failed.reason and "3 attempts" in failed.reason
        assert all(o.reason == f"not tried: {failed.reason}" for o in skipped), skipped[0].reason
        assert elapsed < 10, "the requests after the failed one are not attempted"

        again = self.export(make_sink(), many)
        assert [o.status for o in again] == [Status.UNCHANGED] * MAX_ROWS_PER_WRITE + [Status.EXPORTED] * (
            count - MAX_ROWS_PER_WRITE
        )
        header, *rows = sheets.cells(spreadsheet_id)
        ids = [row[header.index(JOB_ID)] for row in rows]
        assert sorted(ids) == sorted(r.job_id for r, _ in many), "every job once: no duplicate, no gap"

    def test_still_holds_names_the_jobs_whose_rows_are_there(
        self, make_sink, results, sheets, spreadsheet_id
    ):
        located = {o.job_id: o.location for o in self.export(make_sink(), results)}
        sink = make_sink()
        assert sink.still_holds(located) == set(located)
        assert sink.still_holds({}) == set()
        gone = results[1][0].job_id
        header, *rows = sheets.cells(spreadsheet_id)
        row = 2 + [r[header.index(JOB_ID)] for r in rows].index(gone)
        sheets.set_cells(spreadsheet_id, f"A{row}", [[""] * len(header)])  # a person clears the row
        sheets.reset_requests()
        assert make_sink().still_holds(located) == set(located) - {gone}
        assert len([r for r in sheets.requests if "values" in r.path]) == 1, sheets.requests
        assert not [r for r in sheets.requests if r.method != "GET"], sheets.requests

    def test_still_holds_finds_nothing_in_a_deleted_spreadsheet_or_worksheet(
        self, make_sink, results, sheets, spreadsheet_id
    ):
        located = {o.job_id: o.location for o in self.export(make_sink(), results[:2])}
        assert make_sink(spreadsheet_id="deleted-spreadsheet").still_holds(located) == set()
        assert make_sink(worksheet="renamed").still_holds(located) == set()
        assert sheets.sheet_titles(spreadsheet_id) == ["Sheet1"], "a check must not create a worksheet"

    def test_still_holds_does_not_create_a_named_spreadsheet(self, sheets, key_file, results):
        name = f"never-created-{uuid.uuid4().hex[:8]}"
        sink = GsheetsSink(
            {"spreadsheet_name": name, "service_account_file": key_file, "endpoint": sheets.url}
        )
        assert sink.still_holds({results[0][0].job_id: "somewhere"}) == set()
        assert sheets.find_spreadsheets(name) == []

    def test_still_holds_is_empty_when_the_api_fails(self, refusing_sink, make_sink, results, sheets):
        located = {o.job_id: o.location for o in self.export(make_sink(), results[:1])}
        assert refusing_sink.still_holds(located) == set()
        sheets.fail_next(FAST_RETRY["retries"], status=500)
        assert make_sink().still_holds(located) == set()

    def test_credentials_never_appear_in_outcomes_or_checks(self, sheets, key_file, results):
        import json

        private_key = json.loads(key_file.read_text())["private_key"]
        secret_line = private_key.splitlines()[1]
        sink = GsheetsSink(
            {
                "spreadsheet_id": "missing",
                "service_account_file": key_file,
                "endpoint": sheets.url,
                **FAST_RETRY,
            }
        )
        texts = [o.reason for o in sink.export(self.items(sink, results[:1]))] + [
            sink.check().message,
            repr(sink.config),
        ]
        assert all(secret_line not in t for t in texts)


def test_a_proxys_html_502_is_retryable_and_explained():
    import requests
    from gspread.exceptions import APIError

    from evalport.adapters.sinks.gsheets_sink import google_message, http_status, is_retryable

    response = requests.Response()
    response.status_code = 502
    response._content = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    error = APIError(response)
    assert error.code == -1  # what gspread reports for a body that is not Google's JSON
    assert http_status(error) == 502 and is_retryable(error)
    assert google_message(error).startswith("502 (not a Google API response): <html>")
