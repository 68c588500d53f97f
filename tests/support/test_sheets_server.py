"""The fake Sheets/Drive server, exercised through the REAL gspread client."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

gspread = pytest.importorskip("gspread")

from gspread.exceptions import APIError, SpreadsheetNotFound  # noqa: E402
from gspread.utils import InsertDataOption, ValueInputOption, ValueRenderOption  # noqa: E402

from .sheets_server import (  # noqa: E402
    DEFAULT_CLIENT_EMAIL,
    FakeSheetsServer,
    column_index,
    column_letters,
    http_client_for,
)


@pytest.fixture
def server() -> Iterator[FakeSheetsServer]:
    with FakeSheetsServer() as fake:
        yield fake


@pytest.fixture
def gc(server: FakeSheetsServer, tmp_path: Path) -> Any:
    creds = server.write_service_account_file(tmp_path / "service_account.json")
    return gspread.service_account(filename=str(creds), http_client=http_client_for(server.url))


def _raw(server: FakeSheetsServer, method: str, path: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(server.url + path, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _api_paths(server: FakeSheetsServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


# ---- authentication ------------------------------------------------------------------------


def test_the_service_account_file_authenticates_the_real_gspread_client_with_one_token_request(
    server: FakeSheetsServer, tmp_path: Path
) -> None:
    path = server.write_service_account_file(tmp_path / "sa.json")
    info = json.loads(path.read_text())
    assert info["token_uri"] == f"{server.url}/token"
    assert info["client_email"] == DEFAULT_CLIENT_EMAIL
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")

    client = gspread.service_account(filename=str(path), http_client=http_client_for(server.url))
    client.create("first")
    client.open("first")

    assert server.token_requests == 1
    assert len(server.find_spreadsheets("first")) == 1


def test_api_requests_without_a_valid_bearer_token_get_401_in_googles_shape(server: FakeSheetsServer) -> None:
    sid = server.create_spreadsheet("secret")

    status, body = _raw(server, "GET", f"/v4/spreadsheets/{sid}")
    assert status == 401
    assert body["error"]["code"] == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"

    status, _ = _raw(server, "GET", f"/v4/spreadsheets/{sid}", token="made-up")
    assert status == 401


def test_expired_tokens_are_refreshed_transparently_by_gspread(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("refresh").sheet1
    assert server.token_requests == 1

    server.expire_tokens()
    ws.update([["still works"]], "A1")

    assert server.token_requests == 2
    assert server.cells(ws.spreadsheet_id) == [["still works"]]


def test_a_token_request_for_an_unknown_service_account_is_refused(server: FakeSheetsServer) -> None:
    other = FakeSheetsServer()
    try:
        info = other.service_account_info("stranger@example.com")
    finally:
        other.stop()
    info["token_uri"] = f"{server.url}/token"
    client = gspread.service_account_from_dict(info, http_client=http_client_for(server.url))

    with pytest.raises(Exception, match="unknown service account"):
        client.create("nope")
    assert server.find_spreadsheets("nope") == []


# ---- Drive: create, open by name, share ------------------------------------------------------


def test_create_then_open_by_name_gives_one_default_sheet1_of_1000_rows_by_26_columns(
    server: FakeSheetsServer, gc: Any
) -> None:
    created = gc.create("Eval results")
    opened = gc.open("Eval results")

    assert opened.id == created.id
    assert opened.title == "Eval results"
    assert [ws.title for ws in opened.worksheets()] == ["Sheet1"]
    ws = opened.sheet1
    assert (ws.row_count, ws.col_count) == (1000, 26)
    assert server.grid_size(created.id) == (1000, 26)
    assert opened.creationTime.endswith("Z")


def test_open_by_name_of_a_missing_spreadsheet_raises_spreadsheet_not_found(
    server: FakeSheetsServer, gc: Any
) -> None:
    server.create_spreadsheet("something else")
    with pytest.raises(SpreadsheetNotFound):
        gc.open("Eval results")


def test_open_by_key_finds_a_preloaded_spreadsheet_and_an_unknown_key_is_not_found(
    server: FakeSheetsServer, gc: Any
) -> None:
    sid = server.create_spreadsheet("preloaded", values=[["a", "b"]])
    assert gc.open_by_key(sid).sheet1.get_all_values() == [["a", "b"]]

    with pytest.raises(SpreadsheetNotFound):
        gc.open_by_key("no-such-id")
    status, body = _raw(server, "GET", "/v4/spreadsheets/no-such-id", token=gc.http_client.auth.token)
    assert (status, body["error"]["status"]) == (404, "NOT_FOUND")


def test_drive_listing_honours_page_size_and_page_token(server: FakeSheetsServer, gc: Any) -> None:
    for _ in range(3):
        server.create_spreadsheet("same name")
    assert len(gc.list_spreadsheet_files("same name")) == 3
    token = gc.http_client.auth.token
    query = "q=name%20%3D%20%22same%20name%22&pageSize=2&supportsAllDrives=True"

    status, first = _raw(server, "GET", f"/drive/v3/files?{query}", token=token)
    status2, second = _raw(
        server, "GET", f"/drive/v3/files?{query}&pageToken={first['nextPageToken']}", token=token
    )

    assert (status, status2) == (200, 200)
    assert len(first["files"]) == 2 and len(second["files"]) == 1
    assert "nextPageToken" not in second
    assert set(first["files"][0]) == {"id", "name", "createdTime", "modifiedTime"}


def test_share_records_the_permission(server: FakeSheetsServer, gc: Any) -> None:
    sh = gc.create("shared")
    sh.share("alice@example.com", perm_type="user", role="writer", notify=False)

    [permission] = server.permissions(sh.id)
    assert (permission["type"], permission["role"], permission["emailAddress"]) == (
        "user",
        "writer",
        "alice@example.com",
    )
    assert permission["request"]["sendNotificationEmail"] == "False"
    emails = {p.get("emailAddress") for p in sh.list_permissions()}
    assert emails == {DEFAULT_CLIENT_EMAIL, "alice@example.com"}


def test_sharing_with_an_invalid_role_is_a_400(gc: Any) -> None:
    sh = gc.create("shared")
    with pytest.raises(APIError) as caught:
        sh.share("bob@example.com", perm_type="user", role="emperor", notify=False)
    assert caught.value.code == 400


# ---- values: update / get ------------------------------------------------------------------


def test_update_then_get_round_trips_and_trims_trailing_empty_cells_and_rows(
    server: FakeSheetsServer, gc: Any
) -> None:
    ws = gc.create("rt").sheet1
    ws.update([["name", "score", ""], ["a", 1, ""], ["", "", ""]], "A1")

    assert ws.get("A1:C3", pad_values=False) == [["name", "score"], ["a", "1"]]
    assert server.cells(ws.spreadsheet_id) == [["name", "score"], ["a", 1]]
    assert ws.get("Z1000") == [[]]


def test_unformatted_reads_return_numbers_and_formatted_reads_return_strings(gc: Any) -> None:
    ws = gc.create("render").sheet1
    ws.update([[1, 2.5, True, "x", 3.0]], "A1")

    assert ws.get("A1:E1") == [["1", "2.5", "TRUE", "x", "3"]]
    unformatted = ws.get("A1:E1", value_render_option=ValueRenderOption.unformatted)
    assert unformatted == [[1, 2.5, True, "x", 3]]
    assert isinstance(unformatted[0][0], int)


def test_user_entered_turns_numeric_strings_into_numbers_while_raw_keeps_text(
    server: FakeSheetsServer, gc: Any
) -> None:
    ws = gc.create("input").sheet1
    ws.update([["42", "0.5", "'7", "TRUE", "abc"]], "A1", value_input_option=ValueInputOption.user_entered)
    ws.update([["42", "0.5"]], "A2", value_input_option=ValueInputOption.raw)

    assert server.cells(ws.spreadsheet_id) == [[42, 0.5, "7", True, "abc"], ["42", "0.5"]]


def test_get_with_columns_major_dimension_and_whole_column_and_row_ranges(gc: Any) -> None:
    ws = gc.create("dims").sheet1
    ws.update([["a", "b"], ["c"], ["", "d"]], "A1")

    assert ws.col_values(2) == ["b", "", "d"]
    assert ws.row_values(1) == ["a", "b"]
    assert ws.get("A:A", pad_values=False) == [["a"], ["c"]]
    assert ws.get("2:2", pad_values=False) == [["c"]]
    assert ws.get("A1:B3", major_dimension="COLUMNS", pad_values=False) == [["a", "c"], ["b", "", "d"]]
    assert ws.get("A:A").range == "Sheet1!A1:A1000"


def test_a_write_past_the_last_column_is_refused_like_google(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("limits").sheet1

    with pytest.raises(APIError) as caught:
        ws.update([["x"]], "AA1")

    error = caught.value
    assert error.code == 400
    assert error.error["status"] == "INVALID_ARGUMENT"
    assert error.error["message"] == (
        "Range ('Sheet1'!AA1) exceeds grid limits. Max rows: 1000, max columns: 26"
    )
    assert server.cells(ws.spreadsheet_id) == []


def test_a_row_of_27_values_written_at_a1_is_refused_and_nothing_is_written(
    server: FakeSheetsServer, gc: Any
) -> None:
    ws = gc.create("wide").sheet1
    with pytest.raises(APIError, match=r"Range \('Sheet1'!A1:AA1\) exceeds grid limits"):
        ws.update([list(range(27))], "A1")
    assert server.cells(ws.spreadsheet_id) == []


def test_a_write_past_the_last_row_is_refused(gc: Any) -> None:
    ws = gc.create("rows").sheet1
    with pytest.raises(APIError, match=r"exceeds grid limits. Max rows: 1000, max columns: 26"):
        ws.update([["a"], ["b"]], "A1000")


def test_writing_more_values_than_the_requested_range_holds_is_a_400(gc: Any) -> None:
    ws = gc.create("small range").sheet1
    with pytest.raises(APIError, match=r"tried writing to column \[C\]"):
        ws.update([["a", "b", "c"]], "A1:B1")


def test_an_unknown_sheet_name_is_unable_to_parse_range(gc: Any) -> None:
    sh = gc.create("names")
    with pytest.raises(APIError, match=r"Unable to parse range: 'Nope'!A1"):
        sh.values_get("'Nope'!A1")


# ---- resize / add_cols / add_worksheet -------------------------------------------------------


def test_add_cols_past_column_z_makes_column_aa_writable(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("wider").sheet1
    ws.add_cols(2)
    ws.update([["aa", "ab"]], "AA1")

    assert server.grid_size(ws.spreadsheet_id) == (1000, 28)
    assert ws.get("AA1:AB1") == [["aa", "ab"]]
    assert gc.open_by_key(ws.spreadsheet_id).sheet1.col_count == 28
    with pytest.raises(APIError, match=r"Range \('Sheet1'!AC1\) exceeds grid limits.*max columns: 28"):
        ws.update([["no"]], "AC1")


def test_resize_shrinks_the_grid_and_drops_cells_outside_it(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("shrink").sheet1
    ws.update([["keep", "drop"], ["drop", "drop"]], "A1")
    ws.resize(rows=1, cols=1)

    assert server.grid_size(ws.spreadsheet_id) == (1, 1)
    assert server.cells(ws.spreadsheet_id) == [["keep"]]


def test_add_worksheet_with_a_quoted_name_and_spaces_is_addressable(
    server: FakeSheetsServer, gc: Any
) -> None:
    sh = gc.create("tabs")
    ws = sh.add_worksheet("Bob's runs", rows=10, cols=3)
    ws.update([["x", "y"]], "B2")

    assert server.sheet_titles(sh.id) == ["Sheet1", "Bob's runs"]
    assert server.grid_size(sh.id, "Bob's runs") == (10, 3)
    assert server.cells(sh.id, "Bob's runs") == [[], ["", "x", "y"]]
    assert sh.worksheet("Bob's runs").get("B2:C2") == [["x", "y"]]
    assert server.cells(sh.id) == []
    with pytest.raises(APIError, match="already exists"):
        sh.add_worksheet("Bob's runs", rows=1, cols=1)


# ---- append ----------------------------------------------------------------------------------


def test_append_rows_goes_after_the_last_non_empty_row_and_grows_the_grid(
    server: FakeSheetsServer, gc: Any
) -> None:
    sid = server.create_spreadsheet("log", rows=3, cols=3, values=[["h1", "h2"], ["a", 1], ["", ""]])
    ws = gc.open_by_key(sid).sheet1

    response = ws.append_rows([["b", 2], ["c", 3]])

    assert response["updates"]["updatedRange"] == "Sheet1!A3:B4"
    assert response["tableRange"] == "Sheet1!A1:B2"
    assert server.cells(sid) == [["h1", "h2"], ["a", 1], ["b", 2], ["c", 3]]
    assert server.grid_size(sid) == (4, 3)


def test_append_to_a_preloaded_2000_row_sheet_lands_on_row_2001(server: FakeSheetsServer, gc: Any) -> None:
    values = [["id", "score"]] + [[f"r{i}", i] for i in range(1, 2000)]
    sid = server.create_spreadsheet("big", rows=2000, cols=2, values=values)
    ws = gc.open_by_key(sid).sheet1

    response = ws.append_row(["new", 1.5])

    assert response["updates"]["updatedRange"] == "Sheet1!A2001:B2001"
    assert server.grid_size(sid) == (2001, 2)
    assert server.cells(sid)[-1] == ["new", 1.5]
    assert len(ws.get_all_values()) == 2001


def test_append_with_table_range_a1_appends_below_the_whole_table(server: FakeSheetsServer, gc: Any) -> None:
    sid = server.create_spreadsheet("anchored", values=[["h"], ["1"], ["2"]])
    ws = gc.open_by_key(sid).sheet1
    ws.append_row(["3"], table_range="A1")
    assert server.cells(sid) == [["h"], ["1"], ["2"], ["3"]]


def test_append_with_insert_rows_adds_rows_even_when_there_is_room(server: FakeSheetsServer, gc: Any) -> None:
    sid = server.create_spreadsheet("ins", rows=10, cols=2, values=[["h"]])
    ws = gc.open_by_key(sid).sheet1
    ws.append_rows([["x"], ["y"]], insert_data_option=InsertDataOption.insert_rows)
    assert server.grid_size(sid) == (12, 2)
    assert server.cells(sid) == [["h"], ["x"], ["y"]]


def test_append_wider_than_the_grid_is_refused_and_changes_nothing(server: FakeSheetsServer, gc: Any) -> None:
    sid = server.create_spreadsheet("narrow", rows=2, cols=2, values=[["a", "b"], ["c", "d"]])
    ws = gc.open_by_key(sid).sheet1

    with pytest.raises(APIError, match=r"exceeds grid limits. Max rows: 2, max columns: 2"):
        ws.append_row(["x", "y", "z"])
    assert server.grid_size(sid) == (2, 2)
    assert server.cells(sid) == [["a", "b"], ["c", "d"]]


# ---- batch calls -----------------------------------------------------------------------------


def test_batch_get_and_batch_update_take_one_request_each(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("batch").sheet1
    server.reset_requests()

    ws.batch_update([{"range": "A1:B1", "values": [["a", "b"]]}, {"range": "D5", "values": [[5]]}])
    ranges = ws.batch_get(["A1:B1", "D5"])

    assert _api_paths(server) == [
        f"POST /v4/spreadsheets/{ws.spreadsheet_id}/values:batchUpdate",
        f"GET /v4/spreadsheets/{ws.spreadsheet_id}/values:batchGet",
    ]
    assert server.requests[1].query["ranges"] == ["'Sheet1'!A1:B1", "'Sheet1'!D5"]
    assert [list(r) for r in ranges] == [[["a", "b"]], [["5"]]]
    assert ranges[1].range == "Sheet1!D5"


def test_batch_update_is_atomic_when_one_range_is_outside_the_grid(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("atomic").sheet1
    with pytest.raises(APIError, match="exceeds grid limits"):
        ws.batch_update([{"range": "A1", "values": [["ok"]]}, {"range": "AB1", "values": [["bad"]]}])
    assert server.cells(ws.spreadsheet_id) == []


def test_clear_and_batch_clear_remove_values(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("clear").sheet1
    ws.update([["a", "b"], ["c", "d"]], "A1")
    ws.batch_clear(["B1:B2"])
    assert server.cells(ws.spreadsheet_id) == [["a"], ["c"]]
    ws.clear()
    assert server.cells(ws.spreadsheet_id) == []


# ---- test controls ---------------------------------------------------------------------------


def test_fail_next_two_429s_make_two_calls_fail_then_calls_succeed(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("flaky").sheet1
    server.fail_next(2, 429)

    for _ in range(2):
        with pytest.raises(APIError) as caught:
            ws.update([["x"]], "A1")
        assert caught.value.code == 429
        assert caught.value.error["status"] == "RESOURCE_EXHAUSTED"
    assert server.cells(ws.spreadsheet_id) == []

    ws.update([["x"]], "A1")
    assert server.cells(ws.spreadsheet_id) == [["x"]]


@pytest.mark.parametrize(("status", "name"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_injected_server_errors_use_googles_status_names(
    server: FakeSheetsServer, gc: Any, status: int, name: str
) -> None:
    ws = gc.create("errors").sheet1
    server.fail_next(1, status, "boom")
    with pytest.raises(APIError) as caught:
        ws.get("A1")
    assert caught.value.error == {"code": status, "message": "boom", "status": name}


def test_the_request_log_counts_each_api_call_and_can_be_reset(server: FakeSheetsServer, gc: Any) -> None:
    ws = gc.create("counted").sheet1
    # Drive create, then metadata fetched by Spreadsheet() and again by .sheet1
    assert [r.method for r in server.requests] == ["POST", "GET", "GET"]
    server.reset_requests()

    ws.update([["a"]], "A1")
    ws.append_rows([["b"]])
    ws.add_cols(1)

    sid = ws.spreadsheet_id
    assert _api_paths(server) == [
        f"PUT /v4/spreadsheets/{sid}/values/'Sheet1'!A1",
        f"POST /v4/spreadsheets/{sid}/values/'Sheet1':append",
        f"POST /v4/spreadsheets/{sid}:batchUpdate",
    ]
    assert server.requests[0].query["valueInputOption"] == ["RAW"]
    assert server.requests[1].query == {"valueInputOption": ["RAW"]}


def test_set_cells_simulates_a_person_editing_and_gspread_sees_it(server: FakeSheetsServer, gc: Any) -> None:
    sid = server.create_spreadsheet("edited", values=[["a"], ["b"]])
    server.set_cells(sid, "Sheet1!C5", [["typed by hand"]])
    ws = gc.open_by_key(sid).sheet1

    assert ws.get("C5") == [["typed by hand"]]
    ws.append_row(["after"])
    assert server.cells(sid)[5] == ["after"]
    with pytest.raises(ValueError, match="exceeds grid limits"):
        server.set_cells(sid, "AA1", [["x"]])


# ---- A1 notation, lifecycle, safety ----------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "letters"),
    [(1, "A"), (26, "Z"), (27, "AA"), (28, "AB"), (52, "AZ"), (702, "ZZ"), (703, "AAA")],
)
def test_column_letters_past_z_convert_both_ways(number: int, letters: str) -> None:
    assert column_letters(number) == letters
    assert column_index(letters) == number


def test_a1_ranges_with_and_without_sheet_names_reach_the_right_cells(
    server: FakeSheetsServer, gc: Any
) -> None:
    sid = server.create_spreadsheet("a1", cols=800, values=[["first"]])
    server.add_sheet(sid, "My Sheet", values=[["m1"], ["m2"]])
    server.set_cells(sid, "ZZ1", [["zz", "aaa"]])
    sh = gc.open_by_key(sid)

    assert sh.values_get("A1")["values"] == [["first"]]
    assert sh.values_get("'My Sheet'!A:A")["values"] == [["m1"], ["m2"]]
    assert sh.values_get("'My Sheet'")["range"] == "'My Sheet'!A1:Z1000"
    assert sh.values_get("Sheet1!ZZ1:AAA1")["values"] == [["zz", "aaa"]]
    assert sh.values_get("1:1")["values"][0][701:] == ["zz", "aaa"]


def test_stop_frees_the_port_and_refuses_connections() -> None:
    fake = FakeSheetsServer()
    port = fake.port
    assert fake.url == f"http://127.0.0.1:{port}"
    fake.stop()
    fake.stop()  # idempotent

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_the_server_listens_on_loopback_only(server: FakeSheetsServer) -> None:
    assert server._httpd.server_address[0] == "127.0.0.1"


def test_the_test_http_client_refuses_hosts_other_than_google_apis(gc: Any) -> None:
    with pytest.raises(RuntimeError, match="refuses"):
        gc.http_client.request("get", "https://example.com/anything")
