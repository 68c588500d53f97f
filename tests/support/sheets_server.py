"""TEST SUPPORT ONLY: an in-memory fake of the Google Sheets API v4 / Drive API v3.

It speaks the subset of the two APIs that the real ``gspread`` 6.2.x client uses, on
127.0.0.1 only, so code that drives gspread can be tested end to end without mocks and
without the internet::

    with FakeSheetsServer() as server:
        creds = server.write_service_account_file(tmp_path / "sa.json")
        gc = gspread.service_account(filename=creds, http_client=http_client_for(server.url))
        ws = gc.create("results").sheet1
        ws.append_rows([["a", 1]])
        assert server.cells(ws.spreadsheet_id) == [["a", 1]]

The module itself is standard library only (``cryptography`` is imported lazily to generate
the service-account RSA key, ``gspread`` lazily inside :func:`http_client_for`).

Known simplifications (real Google differs):
  * formulas are not evaluated: with USER_ENTERED a string such as ``=1+1`` is stored as text;
  * USER_ENTERED converts plain numbers, TRUE/FALSE and a leading apostrophe only; dates,
    percentages and currencies stay text (Google would turn them into numbers);
  * FORMATTED_VALUE renders numbers with Python's ``%.15g`` (Google applies the cell format);
  * the "table" searched by ``values:append`` is everything from the range's first row down
    to the last non-empty row within the range's columns (Google looks for a contiguous block);
  * ``values:append`` grows the grid by rows, never by columns;
  * formatting-only batchUpdate requests are accepted and ignored (see ``_COSMETIC_REQUESTS``).
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from gspread.http_client import HTTPClient

__all__ = [
    "DEFAULT_CLIENT_EMAIL",
    "FakeSheetsServer",
    "RecordedRequest",
    "column_index",
    "column_letters",
    "http_client_for",
]

DEFAULT_CLIENT_EMAIL = "evalport-tests@fake-project.iam.gserviceaccount.com"
SHEETS_MIME_TYPE = "application/vnd.google-apps.spreadsheet"
MAX_CELLS = 10_000_000
MAX_COLUMNS = 18_278  # column ZZZ

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_DEFAULT_FAILURE_MESSAGES = {
    429: (
        "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute "
        "per user' of service 'sheets.googleapis.com' for consumer 'project_number:000000000000'."
    ),
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}

_UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)

# batchUpdate request kinds that only change formatting: accepted, recorded, ignored.
_COSMETIC_REQUESTS = frozenset(
    {
        "repeatCell",
        "updateBorders",
        "autoResizeDimensions",
        "updateDimensionProperties",
        "setBasicFilter",
        "clearBasicFilter",
        "mergeCells",
        "unmergeCells",
        "addConditionalFormatRule",
        "setDataValidation",
    }
)

_VALUE_INPUT_OPTIONS = ("RAW", "USER_ENTERED")
_VALUE_RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_CELLS_RE = re.compile(r"\$?([A-Za-z]*)\$?(\d*)(?::\$?([A-Za-z]*)\$?(\d*))?")
_PLAIN_SHEET_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CELL_LIKE_RE = re.compile(r"[A-Za-z]{1,3}\d+|[Rr]\d+[Cc]\d+")


# --------------------------------------------------------------------------------------------
# A1 notation helpers
# --------------------------------------------------------------------------------------------


def column_letters(index: int) -> str:
    """1-based column number -> letters (1 -> A, 26 -> Z, 27 -> AA, 703 -> AAA)."""
    if index < 1:
        raise ValueError(f"column numbers start at 1, got {index}")
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def column_index(letters: str) -> int:
    """Column letters -> 1-based number (A -> 1, AA -> 27, ZZ -> 702, AAA -> 703)."""
    if not letters or not letters.isalpha() or not letters.isascii():
        raise ValueError(f"not column letters: {letters!r}")
    number = 0
    for char in letters.upper():
        number = number * 26 + (ord(char) - ord("A") + 1)
    return number


def _quote_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _response_sheet(title: str) -> str:
    """Sheet name the way Google writes it in responses: quoted only when needed."""
    if _PLAIN_SHEET_NAME_RE.fullmatch(title) and not _CELL_LIKE_RE.fullmatch(title):
        return title
    return _quote_sheet(title)


def _cells_a1(r0: int, c0: int, r1: int | None, c1: int | None) -> str:
    """0-based inclusive bounds -> A1 text; ``None`` ends are open (``A1:B``, ``A1:1``)."""
    start = f"{column_letters(c0 + 1)}{r0 + 1}"
    if r1 == r0 and c1 == c0:
        return start
    end = (column_letters(c1 + 1) if c1 is not None else "") + (str(r1 + 1) if r1 is not None else "")
    return f"{start}:{end}"


def _split_sheet_name(text: str) -> tuple[str | None, str | None, bool]:
    """``'My ''x'' sheet'!A1`` -> (name, cells, explicit). ``cells`` None means the whole sheet."""
    text = text.strip()
    if text.startswith("'"):
        chars: list[str] = []
        i = 1
        while i < len(text):
            if text[i] == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    chars.append("'")
                    i += 2
                    continue
                break
            chars.append(text[i])
            i += 1
        else:
            raise _parse_error(text)
        rest = text[i + 1 :]
        if rest == "":
            return "".join(chars), None, True
        if not rest.startswith("!"):
            raise _parse_error(text)
        return "".join(chars), rest[1:], True
    if "!" in text:
        name, _, cells = text.rpartition("!")
        return name, cells, True
    return None, text, False


def _parse_cells(cells: str, original: str) -> tuple[int, int, int | None, int | None]:
    """A1 cells part -> 0-based (r0, c0, r1, c1), ``None`` = open towards the grid end."""
    match = _CELLS_RE.fullmatch(cells.strip())
    if not match:
        raise _parse_error(original)
    col_a, row_a, col_b, row_b = match.groups()
    has_colon = ":" in cells
    if not has_colon:
        if not (col_a and row_a):
            raise _parse_error(original)
        r, c = int(row_a) - 1, column_index(col_a) - 1
        if r < 0:
            raise _parse_error(original)
        return r, c, r, c
    if not (col_a or row_a) or not (col_b or row_b):
        raise _parse_error(original)
    if (not col_a and col_b) or (not row_a and row_b):
        raise _parse_error(original)
    r0 = int(row_a) - 1 if row_a else 0
    c0 = column_index(col_a) - 1 if col_a else 0
    r1 = int(row_b) - 1 if row_b else None
    c1 = column_index(col_b) - 1 if col_b else None
    if r0 < 0 or (r1 is not None and r1 < 0):
        raise _parse_error(original)
    if r1 is not None and r1 < r0:
        r0, r1 = r1, r0
    if c1 is not None and c1 < c0:
        c0, c1 = c1, c0
    return r0, c0, r1, c1


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered in Google's JSON shape."""

    def __init__(self, code: int, message: str, status: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or GOOGLE_STATUS.get(code, "UNKNOWN")
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status, **self.extra}}


def _parse_error(text: str) -> ApiError:
    return ApiError(400, f"Unable to parse range: {text}")


def _invalid(message: str) -> ApiError:
    return ApiError(400, message)


class RecordedRequest(NamedTuple):
    """One API request seen by the server (token requests are not recorded).

    ``path`` is URL-decoded (``/v4/spreadsheets/ID/values/'Sheet1'!A1:append``);
    ``query`` maps each parameter to the list of its values.
    """

    method: str
    path: str
    query: dict[str, list[str]]


@dataclass
class _Sheet:
    sheet_id: int
    title: str
    rows: int
    cols: int
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)
    hidden: bool = False
    frozen_rows: int = 0
    frozen_cols: int = 0

    def properties(self, index: int) -> dict[str, Any]:
        grid: dict[str, Any] = {"rowCount": self.rows, "columnCount": self.cols}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_cols:
            grid["frozenColumnCount"] = self.frozen_cols
        props: dict[str, Any] = {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }
        if self.hidden:
            props["hidden"] = True
        return props

    def drop_outside_grid(self) -> None:
        self.cells = {(r, c): v for (r, c), v in self.cells.items() if r < self.rows and c < self.cols}


@dataclass
class _Spreadsheet:
    spreadsheet_id: str
    name: str
    sheets: list[_Sheet]
    owner: str
    created: str
    modified: str
    parents: list[str] = field(default_factory=list)
    permissions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Range:
    sheet: _Sheet
    r0: int
    c0: int
    r1: int | None  # None: up to the grid's last row
    c1: int | None  # None: up to the grid's last column
    text: str  # as requested, with the sheet name quoted, for error messages
    anchor: bool = False  # a single cell (``A1``): writes may extend from it

    def end_row(self) -> int:
        return self.sheet.rows - 1 if self.r1 is None else self.r1

    def end_col(self) -> int:
        return self.sheet.cols - 1 if self.c1 is None else self.c1

    def check_inside_grid(self) -> None:
        sheet = self.sheet
        too_low = self.r0 >= sheet.rows or (self.r1 is not None and self.r1 >= sheet.rows)
        too_wide = self.c0 >= sheet.cols or (self.c1 is not None and self.c1 >= sheet.cols)
        if too_low or too_wide:
            raise _grid_error(self.text, sheet)

    def response_text(self) -> str:
        """Range clamped to the grid, as Google echoes it (``Sheet1!A1:Z1000``)."""
        cells = _cells_a1(self.r0, self.c0, self.end_row(), self.end_col())
        return f"{_response_sheet(self.sheet.title)}!{cells}"


def _grid_error(range_text: str, sheet: _Sheet) -> ApiError:
    return _invalid(
        f"Range ({range_text}) exceeds grid limits. Max rows: {sheet.rows}, max columns: {sheet.cols}"
    )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _new_id() -> str:
    return "fake-" + secrets.token_urlsafe(30)


# --------------------------------------------------------------------------------------------
# Value conversion
# --------------------------------------------------------------------------------------------


def _check_cell(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    kind = "list_value" if isinstance(value, list) else "struct_value"
    raise _invalid(f"Invalid {where}: {kind} {json.dumps(value, default=str)}")


def _user_entered(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value.startswith("'"):
        return value[1:]
    text = value.strip()
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    if text.upper() in ("TRUE", "FALSE"):
        return text.upper() == "TRUE"
    return value


def _format_number(number: int | float) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    if isinstance(number, int):
        return str(number)
    return f"{number:.15g}".replace("e+", "E+").replace("e-", "E-")


def _render(value: Any, option: str) -> Any:
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if option == "FORMATTED_VALUE" else value
    if isinstance(value, (int, float)):
        if option == "FORMATTED_VALUE":
            return _format_number(value)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    return value


def _trimmed_rows(cells: dict[tuple[int, int], Any], r0: int, c0: int, r1: int, c1: int) -> list[list[Any]]:
    """Stored values inside the bounds, rows first, trailing empties trimmed like Google."""
    by_row: dict[int, dict[int, Any]] = {}
    for (r, c), value in cells.items():
        if r0 <= r <= r1 and c0 <= c <= c1:
            by_row.setdefault(r - r0, {})[c - c0] = value
    if not by_row:
        return []
    rows: list[list[Any]] = []
    for r in range(max(by_row) + 1):
        row_cells = by_row.get(r, {})
        width = max(row_cells) + 1 if row_cells else 0
        rows.append([row_cells.get(c, "") for c in range(width)])
    return rows


def _transpose_trimmed(rows: list[list[Any]]) -> list[list[Any]]:
    width = max((len(row) for row in rows), default=0)
    columns: list[list[Any]] = []
    for c in range(width):
        column = [row[c] if c < len(row) else "" for row in rows]
        while column and column[-1] == "":
            column.pop()
        columns.append(column)
    return columns


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeSheets/1.0"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        fake: FakeSheetsServer = self.server.fake  # type: ignore[attr-defined]
        if fake._going_down:  # accepted before the listener closed: dropped unanswered
            self.close_connection = True
            return
        status, payload = fake._dispatch(self.command, self.path, self.headers, raw)
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        if fake._count_towards_going_down(unquote(urlsplit(self.path).path)):
            self.wfile.flush()
            threading.Thread(target=fake.stop, daemon=True).start()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSheetsServer


_KEY_LOCK = threading.Lock()
_KEY_CACHE: dict[str, str] = {}


def _private_key_pem() -> str:
    """A locally generated RSA key (generated once per process)."""
    with _KEY_LOCK:
        if "pem" not in _KEY_CACHE:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _KEY_CACHE["pem"] = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii")
        return _KEY_CACHE["pem"]


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeSheetsServer:
    """In-memory Sheets v4 + Drive v3 server on ``127.0.0.1:<free port>``, for tests only.

    Starts serving on construction; use as a context manager or call :meth:`stop`.
    """

    def __init__(self, *, require_auth: bool = True) -> None:
        self._lock = threading.RLock()
        self._spreadsheets: dict[str, _Spreadsheet] = {}
        self._tokens: set[str] = set()
        self._client_emails: set[str] = set()
        self._failures: deque[tuple[int, str]] = deque()
        self._requests: list[RecordedRequest] = []
        self._token_requests = 0
        self._next_sheet_id = 1_000_000
        self._require_auth = require_auth
        self._stopped = True
        self._down_after: tuple[int, str] | None = None
        self._going_down = False
        self.port: int = 0
        self._serve()
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self._httpd = _LoopbackHTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeSheetsServer:{self.port}",
            daemon=True,
        )
        self._stopped = False
        self._thread.start()

    # ---- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> FakeSheetsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def restart(self) -> None:
        """Serve again on the same port, with the same spreadsheets and tokens (after :meth:`stop`)."""
        with self._lock:
            self._down_after = None
            self._going_down = False
        if self._stopped:
            self._serve()

    def go_down_after(self, n: int, path_contains: str = "values:batchUpdate") -> None:
        """Stop serving right after answering the ``n``-th request whose path holds ``path_contains``.

        Later connections are refused (a request already queued is dropped unanswered), like a
        server that went down in the middle of an export; :meth:`restart` brings it back.
        """
        with self._lock:
            self._down_after = (n, path_contains)

    def _count_towards_going_down(self, path: str) -> bool:
        """True when this answered request is the one after which the server goes down."""
        with self._lock:
            if self._down_after is None or self._down_after[1] not in path:
                return False
            left = self._down_after[0] - 1
            self._down_after = (left, self._down_after[1]) if left > 0 else None
            self._going_down = left <= 0
            return self._going_down

    # ---- credentials ----------------------------------------------------------------------

    def service_account_info(self, client_email: str = DEFAULT_CLIENT_EMAIL) -> dict[str, Any]:
        """Service-account JSON content whose ``token_uri`` points at this server."""
        with self._lock:
            self._client_emails.add(client_email)
        return {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": "fake-key-id",
            "private_key": _private_key_pem(),
            "client_email": client_email,
            "client_id": "000000000000000000000",
            "auth_uri": f"{self.url}/auth",
            "token_uri": f"{self.url}/token",
            "auth_provider_x509_cert_url": f"{self.url}/certs",
            "client_x509_cert_url": f"{self.url}/certs/{client_email}",
            "universe_domain": "googleapis.com",
        }

    def write_service_account_file(self, path: str | Path, client_email: str = DEFAULT_CLIENT_EMAIL) -> Path:
        """Write a service-account file usable by ``gspread.service_account(filename=...)``."""
        target = Path(path)
        target.write_text(json.dumps(self.service_account_info(client_email), indent=2), encoding="utf-8")
        return target

    def expire_tokens(self) -> None:
        """Invalidate every issued access token (the next API call gets a 401)."""
        with self._lock:
            self._tokens.clear()

    @property
    def token_requests(self) -> int:
        """How many times ``POST /token`` was called."""
        with self._lock:
            return self._token_requests

    # ---- test controls --------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 429, message: str | None = None) -> None:
        """Make the next ``n`` API requests (not token requests) fail with ``status``.

        Calls queue up: ``fail_next(1, 500); fail_next(1, 429)`` fails with 500, then 429.
        """
        if n < 0 or not 400 <= status <= 599:
            raise ValueError("n must be >= 0 and status an HTTP error code")
        text = message or _DEFAULT_FAILURE_MESSAGES.get(status, f"Injected failure {status}.")
        with self._lock:
            self._failures.extend([(status, text)] * n)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the API requests seen so far, oldest first.

        Every request to the API is recorded, including ones answered with an error (a 401
        that google-auth then retries after refreshing its token shows up twice).
        """
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def create_spreadsheet(
        self,
        name: str,
        *,
        rows: int = 1000,
        cols: int = 26,
        values: Sequence[Sequence[Any]] | None = None,
        sheet_title: str = "Sheet1",
    ) -> str:
        """Create a spreadsheet without HTTP (``values`` stored as-is from A1); returns its id."""
        sheet = self._make_sheet(sheet_title, rows, cols, values)
        now = _now()
        spreadsheet = _Spreadsheet(_new_id(), name, [sheet], DEFAULT_CLIENT_EMAIL, now, now)
        with self._lock:
            self._spreadsheets[spreadsheet.spreadsheet_id] = spreadsheet
        return spreadsheet.spreadsheet_id

    def add_sheet(
        self,
        spreadsheet_id: str,
        title: str,
        *,
        rows: int = 1000,
        cols: int = 26,
        values: Sequence[Sequence[Any]] | None = None,
    ) -> int:
        """Add a worksheet without HTTP; returns its sheetId."""
        sheet = self._make_sheet(title, rows, cols, values)
        with self._lock:
            spreadsheet = self._get_spreadsheet(spreadsheet_id, for_tests=True)
            if self._find_sheet(spreadsheet, title) is not None:
                raise ValueError(f"sheet {title!r} already exists")
            spreadsheet.sheets.append(sheet)
        return sheet.sheet_id

    def find_spreadsheets(self, name: str) -> list[str]:
        """Ids of the spreadsheets named ``name`` (oldest first)."""
        with self._lock:
            return [s.spreadsheet_id for s in self._spreadsheets.values() if s.name == name]

    def sheet_titles(self, spreadsheet_id: str) -> list[str]:
        with self._lock:
            return [s.title for s in self._get_spreadsheet(spreadsheet_id, for_tests=True).sheets]

    def cells(self, spreadsheet_id: str, sheet_title: str | None = None) -> list[list[Any]]:
        """Stored (unformatted) content of a worksheet, trailing empty cells and rows trimmed."""
        with self._lock:
            sheet = self._sheet_for_tests(spreadsheet_id, sheet_title)
            return copy.deepcopy(_trimmed_rows(sheet.cells, 0, 0, sheet.rows - 1, sheet.cols - 1))

    def grid_size(self, spreadsheet_id: str, sheet_title: str | None = None) -> tuple[int, int]:
        """(rowCount, columnCount) of a worksheet."""
        with self._lock:
            sheet = self._sheet_for_tests(spreadsheet_id, sheet_title)
            return sheet.rows, sheet.cols

    def set_cells(self, spreadsheet_id: str, range_a1: str, values: Sequence[Sequence[Any]]) -> None:
        """Simulate a person typing: write ``values`` (as-is) starting at ``range_a1``.

        ``range_a1`` may name a sheet (``'My Sheet'!B2``); ``""`` clears a cell, ``None`` skips it.
        Raises ValueError when the values do not fit in the grid.
        """
        with self._lock:
            spreadsheet = self._get_spreadsheet(spreadsheet_id, for_tests=True)
            try:
                rng = self._resolve_range(spreadsheet, range_a1)
                self._write(spreadsheet, rng, values, "RAW", "ROWS")
            except ApiError as exc:
                raise ValueError(exc.message) from exc

    def permissions(self, spreadsheet_id: str) -> list[dict[str, Any]]:
        """Permissions created through the Drive API (the owner's is not included)."""
        with self._lock:
            return copy.deepcopy(self._get_spreadsheet(spreadsheet_id, for_tests=True).permissions)

    # ---- state helpers (call with the lock held) ------------------------------------------

    def _make_sheet(self, title: str, rows: int, cols: int, values: Sequence[Sequence[Any]] | None) -> _Sheet:
        if rows < 1 or not 1 <= cols <= MAX_COLUMNS or rows * cols > MAX_CELLS:
            raise ValueError(f"invalid grid size {rows}x{cols}")
        with self._lock:
            self._next_sheet_id += 1
            sheet = _Sheet(self._next_sheet_id, title, rows, cols)
        if values is not None:
            if len(values) > rows or any(len(row) > cols for row in values):
                raise ValueError(f"values do not fit in a {rows}x{cols} grid")
            for r, row in enumerate(values):
                for c, value in enumerate(row):
                    if value is not None and value != "":
                        sheet.cells[(r, c)] = value
        return sheet

    def _get_spreadsheet(self, spreadsheet_id: str, *, for_tests: bool = False) -> _Spreadsheet:
        spreadsheet = self._spreadsheets.get(spreadsheet_id)
        if spreadsheet is None:
            if for_tests:
                raise KeyError(f"no spreadsheet with id {spreadsheet_id!r}")
            raise ApiError(404, "Requested entity was not found.")
        return spreadsheet

    def _sheet_for_tests(self, spreadsheet_id: str, sheet_title: str | None) -> _Sheet:
        spreadsheet = self._get_spreadsheet(spreadsheet_id, for_tests=True)
        if sheet_title is None:
            return spreadsheet.sheets[0]
        sheet = self._find_sheet(spreadsheet, sheet_title)
        if sheet is None:
            raise KeyError(f"no sheet {sheet_title!r} in {spreadsheet_id!r}")
        return sheet

    @staticmethod
    def _find_sheet(spreadsheet: _Spreadsheet, title: str) -> _Sheet | None:
        for sheet in spreadsheet.sheets:
            if sheet.title == title:
                return sheet
        folded = title.casefold()
        for sheet in spreadsheet.sheets:
            if sheet.title.casefold() == folded:
                return sheet
        return None

    def _sheet_by_id(self, spreadsheet: _Spreadsheet, sheet_id: Any, where: str) -> _Sheet:
        for sheet in spreadsheet.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        raise _invalid(f"Invalid {where}: No grid with id: {sheet_id}")

    def _resolve_range(self, spreadsheet: _Spreadsheet, text: str) -> _Range:
        name, cells, explicit = _split_sheet_name(text)
        if not explicit:
            # A bare word is a sheet name if such a sheet exists, else cells on the first sheet.
            assert cells is not None
            sheet = self._find_sheet(spreadsheet, cells)
            if sheet is not None:
                name, cells = cells, None
        if name is None:
            sheet = spreadsheet.sheets[0]
        else:
            sheet = self._find_sheet(spreadsheet, name)
            if sheet is None:
                raise _parse_error(text)
        if cells is None:
            return _Range(sheet, 0, 0, None, None, _quote_sheet(sheet.title))
        r0, c0, r1, c1 = _parse_cells(cells, text)
        anchor = ":" not in cells
        return _Range(sheet, r0, c0, r1, c1, f"{_quote_sheet(sheet.title)}!{cells.strip()}", anchor)

    def _check_cell_limit(self, spreadsheet: _Spreadsheet) -> None:
        total = sum(s.rows * s.cols for s in spreadsheet.sheets)
        if total > MAX_CELLS:
            raise _invalid(
                f"This action would increase the number of cells in the workbook above the limit of "
                f"{MAX_CELLS} cells."
            )

    def _touch(self, spreadsheet: _Spreadsheet) -> None:
        spreadsheet.modified = _now()

    # ---- values core ----------------------------------------------------------------------

    @staticmethod
    def _positions(values: Any, major: str, where: str = "values") -> list[tuple[int, int, Any]]:
        if not isinstance(values, list) or any(not isinstance(row, list) for row in values):
            raise _invalid(f"Invalid {where}: expected a list of lists")
        positions = []
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                _check_cell(value, f"{where}[{i}][{j}]")
                r, c = (i, j) if major == "ROWS" else (j, i)
                positions.append((r, c, value))
        return positions

    def _write(
        self,
        spreadsheet: _Spreadsheet,
        rng: _Range,
        values: Any,
        input_option: str,
        major: str,
        *,
        apply: bool = True,
    ) -> dict[str, Any]:
        positions = self._positions(values, major)
        sheet = rng.sheet
        rng.check_inside_grid()
        height = max((r for r, _, _ in positions), default=-1) + 1
        width = max((c for _, c, _ in positions), default=-1) + 1
        last_row, last_col = rng.r0 + height - 1, rng.c0 + width - 1
        if height and not rng.anchor and rng.r1 is not None and last_row > rng.r1:
            raise _invalid(
                f"Requested writing within range [{rng.text}], but tried writing to row [{last_row + 1}]"
            )
        if width and not rng.anchor and rng.c1 is not None and last_col > rng.c1:
            raise _invalid(
                f"Requested writing within range [{rng.text}], but tried writing to column "
                f"[{column_letters(last_col + 1)}]"
            )
        if height and (last_row >= sheet.rows or last_col >= sheet.cols):
            written = f"{_quote_sheet(sheet.title)}!{_cells_a1(rng.r0, rng.c0, last_row, last_col)}"
            raise _grid_error(written, sheet)
        result: dict[str, Any] = {"spreadsheetId": spreadsheet.spreadsheet_id}
        if not height:
            result["updatedRange"] = rng.response_text()
            return result
        if apply:
            for r, c, value in positions:
                if value is None:
                    continue
                stored = _user_entered(value) if input_option == "USER_ENTERED" else value
                if stored == "":
                    sheet.cells.pop((rng.r0 + r, rng.c0 + c), None)
                else:
                    sheet.cells[(rng.r0 + r, rng.c0 + c)] = stored
            self._touch(spreadsheet)
        written_cells = [(r, c) for r, c, v in positions if v is not None]
        result.update(
            {
                "updatedRange": f"{_response_sheet(sheet.title)}!"
                f"{_cells_a1(rng.r0, rng.c0, last_row, last_col)}",
                "updatedRows": len({r for r, _ in written_cells}),
                "updatedColumns": len({c for _, c in written_cells}),
                "updatedCells": len(written_cells),
            }
        )
        return result

    def _read(self, rng: _Range, render: str, major: str) -> dict[str, Any]:
        rng.check_inside_grid()
        rows = _trimmed_rows(rng.sheet.cells, rng.r0, rng.c0, rng.end_row(), rng.end_col())
        rendered = [[_render(v, render) for v in row] for row in rows]
        if major == "COLUMNS":
            rendered = _transpose_trimmed(rendered)
        result: dict[str, Any] = {"range": rng.response_text(), "majorDimension": major}
        if rendered:
            result["values"] = rendered
        return result

    def _clear(self, spreadsheet: _Spreadsheet, rng: _Range) -> str:
        rng.check_inside_grid()
        r1, c1 = rng.end_row(), rng.end_col()
        for key in [k for k in rng.sheet.cells if rng.r0 <= k[0] <= r1 and rng.c0 <= k[1] <= c1]:
            del rng.sheet.cells[key]
        self._touch(spreadsheet)
        return rng.response_text()

    def _append(
        self, spreadsheet: _Spreadsheet, rng: _Range, values: Any, input_option: str, insert: str, major: str
    ) -> dict[str, Any]:
        sheet = rng.sheet
        rng.check_inside_grid()
        positions = self._positions(values, major)
        # a single cell (``A1``) means "the table that starts here", not that one cell
        r_end, c_end = (sheet.rows - 1, sheet.cols - 1) if rng.anchor else (rng.end_row(), rng.end_col())
        table = [(r, c) for (r, c) in sheet.cells if rng.r0 <= r <= r_end and rng.c0 <= c <= c_end]
        result: dict[str, Any] = {"spreadsheetId": spreadsheet.spreadsheet_id}
        if table:
            first_row = min(r for r, _ in table)
            last_row = max(r for r, _ in table)
            first_col = min(c for _, c in table)
            last_col = max(c for _, c in table)
            result["tableRange"] = (
                f"{_response_sheet(sheet.title)}!{_cells_a1(first_row, first_col, last_row, last_col)}"
            )
            target_row, target_col = last_row + 1, first_col
        else:
            target_row, target_col = rng.r0, rng.c0
        height = max((r for r, _, _ in positions), default=-1) + 1
        width = max((c for _, c, _ in positions), default=-1) + 1
        if height and target_col + width > sheet.cols:
            written = _cells_a1(target_row, target_col, target_row + height - 1, target_col + width - 1)
            raise _grid_error(f"{_quote_sheet(sheet.title)}!{written}", sheet)
        if height:
            if insert == "INSERT_ROWS":
                self._insert_rows(sheet, target_row, height)
            elif target_row + height > sheet.rows:
                sheet.rows = target_row + height
            self._check_cell_limit(spreadsheet)
        target = _Range(sheet, target_row, target_col, None, None, "")
        target.text = (
            f"{_quote_sheet(sheet.title)}!{_cells_a1(target_row, target_col, target_row, target_col)}"
        )
        result["updates"] = self._write(spreadsheet, target, values, input_option, major)
        return result

    @staticmethod
    def _insert_rows(sheet: _Sheet, at: int, count: int) -> None:
        sheet.cells = {((r + count) if r >= at else r, c): v for (r, c), v in sheet.cells.items()}
        sheet.rows += count

    @staticmethod
    def _insert_cols(sheet: _Sheet, at: int, count: int) -> None:
        sheet.cells = {(r, (c + count) if c >= at else c): v for (r, c), v in sheet.cells.items()}
        sheet.cols += count

    @staticmethod
    def _delete_span(sheet: _Sheet, dimension: str, start: int, end: int) -> None:
        count = end - start
        moved: dict[tuple[int, int], Any] = {}
        for (r, c), v in sheet.cells.items():
            pos = r if dimension == "ROWS" else c
            if start <= pos < end:
                continue
            if pos >= end:
                pos -= count
            moved[(pos, c) if dimension == "ROWS" else (r, pos)] = v
        sheet.cells = moved
        if dimension == "ROWS":
            sheet.rows -= count
        else:
            sheet.cols -= count

    # ---- request dispatch -----------------------------------------------------------------

    def _dispatch(self, method: str, raw_target: str, headers: Any, raw_body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_target)
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            if parts.path == "/token":
                return self._token(method, raw_body)
            with self._lock:
                self._requests.append(RecordedRequest(method, unquote(parts.path), query))
                self._authenticate(headers)
                if self._failures:
                    status, message = self._failures.popleft()
                    raise ApiError(status, message)
                body = self._json_body(raw_body)
                return self._route(method, parts.path, query, body)
        except ApiError as exc:
            return exc.code, exc.body()
        except Exception as exc:  # a bug in the fake: make it visible to the test
            return 500, ApiError(500, f"fake Sheets server bug: {exc!r}").body()

    def _token(self, method: str, raw_body: bytes) -> tuple[int, Any]:
        with self._lock:
            self._token_requests += 1
        form = parse_qs(raw_body.decode("utf-8"), keep_blank_values=True)
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        error = None
        if method != "POST":
            error = "token requests must be POSTed"
        elif grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            error = f"unsupported grant_type {grant!r}"
        else:
            try:
                claims = _b64url_json(assertion.split(".")[1])
            except Exception:
                claims = None
            if assertion.count(".") != 2 or not isinstance(claims, dict):
                error = "assertion is not a JWT"
            elif not self._known_email(claims.get("iss")):
                error = f"unknown service account {claims.get('iss')!r}"
        if error:
            return 400, {"error": "invalid_grant", "error_description": error}
        token = "fake-access-token-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _known_email(self, email: Any) -> bool:
        with self._lock:
            return email in self._client_emails

    def _authenticate(self, headers: Any) -> None:
        if not self._require_auth:
            return
        header = headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self._tokens:
            raise ApiError(401, _UNAUTHENTICATED_MESSAGE)

    @staticmethod
    def _json_body(raw_body: bytes) -> Any:
        if not raw_body:
            return {}
        try:
            return json.loads(raw_body)
        except ValueError as exc:
            raise _invalid(f"Invalid JSON payload received. {exc}") from exc

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        segments = path.split("/")[1:]
        if segments[:3] == ["drive", "v3", "files"]:
            return self._route_drive(method, [unquote(s) for s in segments[3:]], query, body)
        if segments[:2] == ["v4", "spreadsheets"] and len(segments) >= 3:
            return self._route_sheets(method, segments[2:], query, body)
        raise ApiError(404, f"The fake Sheets server does not implement {method} {unquote(path)}")

    @staticmethod
    def _method(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(405, f"Method {method} is not allowed here.", "METHOD_NOT_ALLOWED")

    # ---- Drive ----------------------------------------------------------------------------

    def _drive_not_found(self, file_id: str) -> ApiError:
        message = f"File not found: {file_id}."
        return ApiError(
            404,
            message,
            errors=[
                {
                    "message": message,
                    "domain": "global",
                    "reason": "notFound",
                    "location": "fileId",
                    "locationType": "parameter",
                }
            ],
        )

    def _drive_file(self, file_id: str) -> _Spreadsheet:
        spreadsheet = self._spreadsheets.get(file_id)
        if spreadsheet is None:
            raise self._drive_not_found(file_id)
        return spreadsheet

    @staticmethod
    def _file_fields(spreadsheet: _Spreadsheet) -> dict[str, Any]:
        return {
            "id": spreadsheet.spreadsheet_id,
            "name": spreadsheet.name,
            "createdTime": spreadsheet.created,
            "modifiedTime": spreadsheet.modified,
        }

    def _route_drive(
        self, method: str, rest: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if not rest or rest == [""]:
            self._method(method, "GET", "POST")
            return self._drive_list(query) if method == "GET" else self._drive_create(body)
        file_id = rest[0]
        if len(rest) == 1:
            self._method(method, "GET", "DELETE")
            spreadsheet = self._drive_file(file_id)
            if method == "DELETE":
                del self._spreadsheets[file_id]
                return 204, None
            return 200, {"kind": "drive#file", "mimeType": SHEETS_MIME_TYPE, **self._file_fields(spreadsheet)}
        if rest[1] == "permissions" and len(rest) <= 3:
            spreadsheet = self._drive_file(file_id)
            if len(rest) == 3:
                self._method(method, "DELETE")
                before = len(spreadsheet.permissions)
                spreadsheet.permissions = [p for p in spreadsheet.permissions if p["id"] != rest[2]]
                if len(spreadsheet.permissions) == before:
                    raise ApiError(404, f"Permission not found: {rest[2]}.")
                return 204, None
            self._method(method, "GET", "POST")
            if method == "GET":
                owner = {
                    "kind": "drive#permission",
                    "id": "owner",
                    "type": "user",
                    "role": "owner",
                    "emailAddress": spreadsheet.owner,
                }
                shared = [{k: v for k, v in p.items() if k != "request"} for p in spreadsheet.permissions]
                return 200, {"kind": "drive#permissionList", "permissions": [owner, *shared]}
            return 200, self._drive_share(spreadsheet, query, body)
        raise ApiError(
            404, f"The fake Sheets server does not implement {method} drive/v3/files/{'/'.join(rest)}"
        )

    def _drive_list(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        q = query.get("q", [""])[0]
        name_match = re.search(r"""\bname\s*=\s*(["'])((?:\\.|(?!\1).)*)\1""", q)
        parent_match = re.search(
            r"""(["'])((?:\\.|(?!\1).)*)\1\s+in\s+parents|parents\s+in\s+(["'])(.*?)\3""", q
        )
        files = list(self._spreadsheets.values())
        if name_match:
            wanted = re.sub(r"\\(.)", r"\1", name_match.group(2))
            files = [f for f in files if f.name == wanted]
        if parent_match:
            parent = parent_match.group(2) or parent_match.group(4)
            files = [f for f in files if parent in f.parents]
        try:
            page_size = max(1, min(1000, int(query.get("pageSize", ["100"])[0])))
            offset = int(query.get("pageToken", ["0"])[0] or 0)
        except ValueError as exc:
            raise _invalid("Invalid pageSize or pageToken") from exc
        page = files[offset : offset + page_size]
        result: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [self._file_fields(f) for f in page],
        }
        if offset + page_size < len(files):
            result["nextPageToken"] = str(offset + page_size)
        return 200, result

    def _drive_create(self, body: Any) -> tuple[int, Any]:
        name = body.get("name") or "Untitled spreadsheet"
        mime = body.get("mimeType")
        if mime != SHEETS_MIME_TYPE:
            raise ApiError(400, f"The fake Drive API only creates spreadsheets, not {mime!r}.")
        sheet = self._make_sheet("Sheet1", 1000, 26, None)
        now = _now()
        owner = next(iter(sorted(self._client_emails)), DEFAULT_CLIENT_EMAIL)
        spreadsheet = _Spreadsheet(_new_id(), name, [sheet], owner, now, now, list(body.get("parents") or []))
        self._spreadsheets[spreadsheet.spreadsheet_id] = spreadsheet
        return 200, {"kind": "drive#file", "id": spreadsheet.spreadsheet_id, "name": name, "mimeType": mime}

    def _drive_share(
        self, spreadsheet: _Spreadsheet, query: dict[str, list[str]], body: Any
    ) -> dict[str, Any]:
        perm_type, role = body.get("type"), body.get("role")
        if perm_type not in ("user", "group", "domain", "anyone"):
            raise _invalid(f"Invalid permission type: {perm_type}")
        if role not in ("owner", "organizer", "fileOrganizer", "writer", "commenter", "reader"):
            raise _invalid(f"Invalid permission role: {role}")
        if perm_type in ("user", "group") and not body.get("emailAddress"):
            raise _invalid("The permission emailAddress field is required.")
        if perm_type == "domain" and not body.get("domain"):
            raise _invalid("The permission domain field is required.")
        permission: dict[str, Any] = {
            "kind": "drive#permission",
            "id": "perm-" + secrets.token_hex(8),
            "type": perm_type,
            "role": role,
        }
        for key in ("emailAddress", "domain"):
            if body.get(key):
                permission[key] = body[key]
        permission["request"] = {
            "withLink": body.get("withLink"),
            "sendNotificationEmail": query.get("sendNotificationEmail", [None])[0],
            "emailMessage": query.get("emailMessage", [None])[0],
        }
        spreadsheet.permissions.append(permission)
        return {k: v for k, v in permission.items() if k in ("kind", "id", "type", "role")}

    # ---- Sheets ---------------------------------------------------------------------------

    def _metadata(self, spreadsheet: _Spreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": spreadsheet.spreadsheet_id,
            "properties": {
                "title": spreadsheet.name,
                "locale": "en_US",
                "autoRecalc": "ON_CHANGE",
                "timeZone": "Etc/GMT",
                "defaultFormat": {},
            },
            "sheets": [{"properties": s.properties(i)} for i, s in enumerate(spreadsheet.sheets)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{spreadsheet.spreadsheet_id}/edit",
        }

    @staticmethod
    def _option(source: dict[str, Any], key: str, allowed: Iterable[str], default: str | None) -> str:
        value = source.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value in (None, ""):
            if default is None:
                raise _invalid(f"'{key}' is required but not specified")
            return default
        if value == "DIMENSION_UNSPECIFIED":
            return default or "ROWS"
        if value not in allowed:
            raise _invalid(f"Invalid value at '{key}', \"{value}\"")
        return str(value)

    def _render_option(self, source: dict[str, Any], key: str = "valueRenderOption") -> str:
        return self._option(source, key, _VALUE_RENDER_OPTIONS, "FORMATTED_VALUE")

    def _major(self, source: dict[str, Any]) -> str:
        return self._option(source, "majorDimension", ("ROWS", "COLUMNS"), "ROWS")

    @staticmethod
    def _flag(source: dict[str, Any], key: str) -> bool:
        value = source.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        return str(value).lower() == "true"

    def _route_sheets(
        self, method: str, raw_segments: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        head = unquote(raw_segments[0])
        if len(raw_segments) == 1:
            if head.endswith(":batchUpdate"):
                self._method(method, "POST")
                spreadsheet = self._get_spreadsheet(head[: -len(":batchUpdate")])
                return 200, self._batch_update(spreadsheet, body)
            self._method(method, "GET")
            return 200, self._metadata(self._get_spreadsheet(head))
        spreadsheet = self._get_spreadsheet(head)
        second = raw_segments[1]
        if len(raw_segments) == 2 and second.startswith("values:"):
            action = second[len("values:") :]
            if action == "batchGet":
                self._method(method, "GET")
                return 200, self._values_batch_get(spreadsheet, query)
            if action == "batchUpdate":
                self._method(method, "POST")
                return 200, self._values_batch_update(spreadsheet, body)
            if action == "batchClear":
                self._method(method, "POST")
                return 200, self._values_batch_clear(spreadsheet, body)
        if len(raw_segments) == 3 and second == "values":
            raw_range = raw_segments[2]
            action = ""
            if ":" in raw_range and raw_range.rsplit(":", 1)[1] in ("append", "clear"):
                raw_range, action = raw_range.rsplit(":", 1)
            rng = self._resolve_range(spreadsheet, unquote(raw_range))
            if action == "append":
                self._method(method, "POST")
                return 200, self._values_append(spreadsheet, rng, query, body)
            if action == "clear":
                self._method(method, "POST")
                return 200, {
                    "spreadsheetId": spreadsheet.spreadsheet_id,
                    "clearedRange": self._clear(spreadsheet, rng),
                }
            self._method(method, "GET", "PUT")
            if method == "GET":
                return 200, self._read(rng, self._render_option(query), self._major(query))
            return 200, self._values_update(spreadsheet, rng, query, body)
        raise ApiError(
            404,
            f"The fake Sheets server does not implement {method} /v4/spreadsheets/{'/'.join(raw_segments)}",
        )

    def _with_response_values(
        self, spreadsheet: _Spreadsheet, update: dict[str, Any], options: dict[str, Any]
    ) -> dict[str, Any]:
        if self._flag(options, "includeValuesInResponse") and "updatedRange" in update:
            rng = self._resolve_range(spreadsheet, update["updatedRange"])
            update["updatedData"] = self._read(
                rng, self._render_option(options, "responseValueRenderOption"), "ROWS"
            )
        return update

    def _values_update(
        self, spreadsheet: _Spreadsheet, rng: _Range, query: dict[str, list[str]], body: Any
    ) -> dict[str, Any]:
        input_option = self._option(query, "valueInputOption", _VALUE_INPUT_OPTIONS, None)
        result = self._write(spreadsheet, rng, body.get("values", []), input_option, self._major(body))
        return self._with_response_values(spreadsheet, result, query)

    def _values_append(
        self, spreadsheet: _Spreadsheet, rng: _Range, query: dict[str, list[str]], body: Any
    ) -> dict[str, Any]:
        input_option = self._option(query, "valueInputOption", _VALUE_INPUT_OPTIONS, None)
        insert = self._option(query, "insertDataOption", ("OVERWRITE", "INSERT_ROWS"), "OVERWRITE")
        snapshot = copy.deepcopy(spreadsheet.sheets)
        try:
            result = self._append(
                spreadsheet, rng, body.get("values", []), input_option, insert, self._major(body)
            )
        except ApiError:
            spreadsheet.sheets = snapshot
            raise
        self._with_response_values(spreadsheet, result["updates"], query)
        return result

    def _values_batch_get(self, spreadsheet: _Spreadsheet, query: dict[str, list[str]]) -> dict[str, Any]:
        render, major = self._render_option(query), self._major(query)
        ranges = [self._resolve_range(spreadsheet, text) for text in query.get("ranges", [])]
        return {
            "spreadsheetId": spreadsheet.spreadsheet_id,
            "valueRanges": [self._read(rng, render, major) for rng in ranges],
        }

    def _values_batch_update(self, spreadsheet: _Spreadsheet, body: Any) -> dict[str, Any]:
        input_option = self._option(body, "valueInputOption", _VALUE_INPUT_OPTIONS, None)
        data = body.get("data") or []
        if not isinstance(data, list):
            raise _invalid("Invalid data: expected a list of ValueRange")
        planned = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "range" not in item:
                raise _invalid(f"Invalid data[{i}]: a range is required")
            rng = self._resolve_range(spreadsheet, item["range"])
            major = self._major(item)
            self._write(spreadsheet, rng, item.get("values", []), input_option, major, apply=False)
            planned.append((rng, item.get("values", []), major))
        responses = [
            self._with_response_values(
                spreadsheet, self._write(spreadsheet, rng, values, input_option, major), body
            )
            for rng, values, major in planned
        ]
        written = [r for r in responses if r.get("updatedCells")]
        return {
            "spreadsheetId": spreadsheet.spreadsheet_id,
            "totalUpdatedRows": sum(r["updatedRows"] for r in written),
            "totalUpdatedColumns": sum(r["updatedColumns"] for r in written),
            "totalUpdatedCells": sum(r["updatedCells"] for r in written),
            "totalUpdatedSheets": len({r["updatedRange"].rsplit("!", 1)[0] for r in written}),
            "responses": responses,
        }

    def _values_batch_clear(self, spreadsheet: _Spreadsheet, body: Any) -> dict[str, Any]:
        ranges = [self._resolve_range(spreadsheet, text) for text in body.get("ranges") or []]
        for rng in ranges:
            rng.check_inside_grid()
        cleared = [self._clear(spreadsheet, rng) for rng in ranges]
        return {"spreadsheetId": spreadsheet.spreadsheet_id, "clearedRanges": cleared}

    # ---- spreadsheets:batchUpdate ---------------------------------------------------------

    def _batch_update(self, spreadsheet: _Spreadsheet, body: Any) -> dict[str, Any]:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise _invalid("Invalid requests: at least one request is required.")
        snapshot = (copy.deepcopy(spreadsheet.sheets), spreadsheet.name)
        replies = []
        try:
            for i, request in enumerate(requests):
                if not isinstance(request, dict) or len(request) != 1:
                    raise _invalid(f"Invalid requests[{i}]: exactly one request kind is required")
                ((kind, payload),) = request.items()
                replies.append(self._apply_request(spreadsheet, kind, payload or {}, f"requests[{i}].{kind}"))
            self._check_cell_limit(spreadsheet)
        except ApiError:
            spreadsheet.sheets, spreadsheet.name = snapshot
            raise
        self._touch(spreadsheet)
        return {"spreadsheetId": spreadsheet.spreadsheet_id, "replies": replies}

    def _apply_request(
        self, spreadsheet: _Spreadsheet, kind: str, payload: dict[str, Any], where: str
    ) -> dict:
        if kind in _COSMETIC_REQUESTS:
            return {}
        if kind == "updateSheetProperties":
            self._update_sheet_properties(spreadsheet, payload, where)
            return {}
        if kind == "addSheet":
            return {"addSheet": {"properties": self._add_sheet_request(spreadsheet, payload, where)}}
        if kind == "deleteSheet":
            sheet = self._sheet_by_id(spreadsheet, payload.get("sheetId"), where)
            if len(spreadsheet.sheets) == 1:
                raise _invalid(f"Invalid {where}: You can't remove all the sheets in a document.")
            spreadsheet.sheets.remove(sheet)
            return {}
        if kind == "appendDimension":
            sheet = self._sheet_by_id(spreadsheet, payload.get("sheetId"), where)
            length = payload.get("length")
            if not isinstance(length, int) or length < 1:
                raise _invalid(f"Invalid {where}: length must be at least 1")
            if payload.get("dimension") == "ROWS":
                sheet.rows += length
            elif payload.get("dimension") == "COLUMNS":
                sheet.cols += length
            else:
                raise _invalid(f"Invalid {where}: dimension must be ROWS or COLUMNS")
            self._check_columns(sheet, where)
            return {}
        if kind in ("insertDimension", "deleteDimension"):
            span = payload.get("range") or {}
            sheet = self._sheet_by_id(spreadsheet, span.get("sheetId"), where)
            dimension = span.get("dimension")
            start, end = span.get("startIndex", 0), span.get("endIndex")
            limit = sheet.rows if dimension == "ROWS" else sheet.cols
            if dimension not in ("ROWS", "COLUMNS") or not isinstance(end, int) or not 0 <= start < end:
                raise _invalid(f"Invalid {where}: invalid range")
            if kind == "insertDimension":
                if start > limit:
                    raise _invalid(f"Invalid {where}: range exceeds grid limits")
                (self._insert_rows if dimension == "ROWS" else self._insert_cols)(sheet, start, end - start)
                self._check_columns(sheet, where)
            else:
                if end > limit:
                    raise _invalid(f"Invalid {where}: range exceeds grid limits")
                if end - start >= limit:
                    raise _invalid(f"Invalid {where}: You can't delete all the rows/columns on the sheet.")
                self._delete_span(sheet, dimension, start, end)
            return {}
        if kind == "updateSpreadsheetProperties":
            fields = self._fields(payload, where)
            title = (payload.get("properties") or {}).get("title")
            if "title" in fields or "*" in fields:
                if not title:
                    raise _invalid(f"Invalid {where}: the title must not be empty")
                spreadsheet.name = title
            return {}
        raise _invalid(f"Invalid {where}: the fake Sheets server does not implement '{kind}' requests")

    @staticmethod
    def _fields(payload: dict[str, Any], where: str) -> set[str]:
        fields = {
            f.strip().replace("/", ".") for f in str(payload.get("fields") or "").split(",") if f.strip()
        }
        if not fields:
            raise _invalid(f"Invalid {where}: You must specify at least one field to update.")
        return fields

    @staticmethod
    def _check_columns(sheet: _Sheet, where: str) -> None:
        if sheet.cols > MAX_COLUMNS:
            raise _invalid(f"Invalid {where}: the sheet would have more than {MAX_COLUMNS} columns.")

    def _update_sheet_properties(
        self, spreadsheet: _Spreadsheet, payload: dict[str, Any], where: str
    ) -> None:
        props = payload.get("properties") or {}
        sheet = self._sheet_by_id(spreadsheet, props.get("sheetId", 0), where)
        fields = self._fields(payload, where)
        grid = props.get("gridProperties") or {}
        supported = {
            "title": ("title", None),
            "hidden": ("hidden", None),
            "index": ("index", None),
            "gridProperties.rowCount": ("rows", "rowCount"),
            "gridProperties.columnCount": ("cols", "columnCount"),
            "gridProperties.frozenRowCount": ("frozen_rows", "frozenRowCount"),
            "gridProperties.frozenColumnCount": ("frozen_cols", "frozenColumnCount"),
        }
        if "*" in fields:
            fields = {"title", "hidden", "index"} | {k for k, (_, g) in supported.items() if g in grid}
            fields = {f for f in fields if f in supported and (f.startswith("grid") or f in props)}
        if "gridProperties" in fields:
            fields.discard("gridProperties")
            fields |= {k for k, (_, g) in supported.items() if g in grid}
        for name in fields:
            if name not in supported:
                raise _invalid(f"Invalid {where}: the fake Sheets server does not support field '{name}'")
            attribute, grid_key = supported[name]
            if grid_key is not None:
                value = grid.get(grid_key, 0)
                if not isinstance(value, int) or value < 0:
                    raise _invalid(f"Invalid {where}: {grid_key} must be a non-negative integer")
                if attribute in ("rows", "cols") and value < 1:
                    raise _invalid(f"Invalid {where}: the sheet must keep at least one {grid_key[:-5]}")
                setattr(sheet, attribute, value)
            elif attribute == "title":
                title = props.get("title")
                other = self._find_sheet(spreadsheet, title or "")
                if not title or (other is not None and other is not sheet):
                    raise _invalid(
                        f'Invalid {where}: A sheet with the name "{title}" already exists. '
                        "Please enter another name."
                    )
                sheet.title = title
            elif attribute == "hidden":
                sheet.hidden = bool(props.get("hidden"))
            else:
                index = props.get("index", 0)
                spreadsheet.sheets.remove(sheet)
                spreadsheet.sheets.insert(max(0, min(int(index), len(spreadsheet.sheets))), sheet)
        self._check_columns(sheet, where)
        sheet.drop_outside_grid()

    def _add_sheet_request(self, spreadsheet: _Spreadsheet, payload: dict[str, Any], where: str) -> dict:
        props = payload.get("properties") or {}
        title = props.get("title")
        if not title:
            n = len(spreadsheet.sheets) + 1
            while self._find_sheet(spreadsheet, f"Sheet{n}") is not None:
                n += 1
            title = f"Sheet{n}"
        if self._find_sheet(spreadsheet, title) is not None:
            raise _invalid(
                f'Invalid {where}: A sheet with the name "{title}" already exists. Please enter another name.'
            )
        grid = props.get("gridProperties") or {}
        rows, cols = grid.get("rowCount", 1000), grid.get("columnCount", 26)
        if not (isinstance(rows, int) and isinstance(cols, int)) or rows < 1 or not 1 <= cols <= MAX_COLUMNS:
            raise _invalid(f"Invalid {where}: invalid grid size {rows}x{cols}")
        sheet = _Sheet(0, title, rows, cols)
        if "sheetId" in props:
            if any(s.sheet_id == props["sheetId"] for s in spreadsheet.sheets):
                raise _invalid(f"Invalid {where}: A sheet with id {props['sheetId']} already exists.")
            sheet.sheet_id = int(props["sheetId"])
        else:
            self._next_sheet_id += 1
            sheet.sheet_id = self._next_sheet_id
        index = props.get("index")
        position = (
            len(spreadsheet.sheets) if index is None else max(0, min(int(index), len(spreadsheet.sheets)))
        )
        spreadsheet.sheets.insert(position, sheet)
        return sheet.properties(position)


# --------------------------------------------------------------------------------------------
# gspread client pointed at the fake
# --------------------------------------------------------------------------------------------

_GOOGLE_API_PREFIXES = ("https://sheets.googleapis.com", "https://www.googleapis.com")


def http_client_for(endpoint: str) -> type[HTTPClient]:
    """TEST SUPPORT: a ``gspread.HTTPClient`` subclass that sends every API call to ``endpoint``.

    Pass it as ``http_client=`` to ``gspread.service_account(...)``. Requests to any other
    ``http(s)://`` host raise RuntimeError, so a test can never reach the internet.
    (Production code must use its own rewriting client; this one is for tests.)
    """
    from gspread.http_client import HTTPClient

    base = endpoint.rstrip("/")

    def rewrite(url: str) -> str:
        for prefix in _GOOGLE_API_PREFIXES:
            if url.startswith(prefix + "/"):
                return base + url[len(prefix) :]
        if url.startswith(base + "/"):
            return url
        raise RuntimeError(f"test HTTP client refuses to send a request to {url!r}")

    class LocalEndpointHTTPClient(HTTPClient):
        """gspread HTTPClient whose Google API URLs are rewritten to a local fake server."""

        endpoint = base

        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
            return super().request(method, rewrite(endpoint), *args, **kwargs)

    return LocalEndpointHTTPClient
