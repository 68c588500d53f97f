"""The Google Sheets sink: one row per job in a shared spreadsheet, upserted by Job ID.

An export costs a handful of requests whatever the sheet's size: the spreadsheet's metadata,
one ``values:batchGet`` for the header row and the Job ID column, one more for the rows of jobs
being re-exported (and the rows just below the table), an explicit grid resize when rows or
columns are needed, and one ``values:batchUpdate`` carrying the header's new cells and every
changed or new row whole. Columns a person added are never written. The planning is pure and
lives in :mod:`evalport.adapters.sinks.gsheets_layout`.

gspread is imported lazily; every call goes through :class:`~evalport.adapters.retry.RetryPolicy`
(429 and 5xx, bounded), never through gspread's unbounded ``BackOffHTTPClient``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import Field, field_validator, model_validator

from evalport.adapters.retry import RETRYABLE_STATUS, RetryPolicy, is_transient, status_of
from evalport.adapters.sinks import gsheets_layout as layout
from evalport.adapters.sinks.base import BaseSink, SinkConfig
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities
from evalport.domain.report import Outcome, Status

T = TypeVar("T")
log = logging.getLogger(__name__)

GOOGLE_ENDPOINT = "https://sheets.googleapis.com"
_GOOGLE_PREFIXES = ("https://sheets.googleapis.com", "https://www.googleapis.com")
DEFAULT_NAME = "evalport results"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive")
SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
MAX_ROWS_PER_WRITE = 500  # rows per values:batchUpdate; keeps each request well under Google's size limit
MAX_RANGES_PER_READ = 100  # ranges per values:batchGet; keeps the URL short


class GsheetsSinkConfig(SinkConfig):
    spreadsheet_id: str | None = Field(default=None, description="open this spreadsheet (from its URL)")
    spreadsheet_name: str | None = Field(
        default=None, description=f"open (or create) the spreadsheet with this name; default {DEFAULT_NAME!r}"
    )
    worksheet: str | None = Field(
        default=None, description="worksheet title (created if absent); default the first"
    )
    service_account_file: Path | None = Field(
        default=None, description="service-account JSON key; default $GOOGLE_APPLICATION_CREDENTIALS"
    )
    oauth_file: Path | None = Field(
        default=None, description="OAuth client-ID JSON, instead of a service account"
    )
    share_with: list[str] = Field(
        default_factory=list, description="e-mails given edit access to a new spreadsheet"
    )
    endpoint: str = Field(default=GOOGLE_ENDPOINT, description="API base URL (a proxy, or a test server)")
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP request")
    retry_attempts: int = Field(default=5, ge=1, description="tries per request on 429/5xx")
    retry_wait: float = Field(
        default=1.0, ge=0, description="first backoff wait in seconds (doubles, max 16)"
    )
    retry_timeout: float = Field(default=90.0, gt=0, description="total seconds spent retrying one request")

    @field_validator("share_with", mode="before")
    @classmethod
    def _split_emails(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [e.strip() for e in value.split(",") if e.strip()]
        return value

    @field_validator("spreadsheet_id")
    @classmethod
    def _id_from_url(cls, value: str | None) -> str | None:
        """A pasted spreadsheet URL is fine: keep the id between ``/d/`` and the next ``/``."""
        if value and "/d/" in value:
            return value.split("/d/", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        return value

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http(s) URL, e.g. {GOOGLE_ENDPOINT}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_of_each(self) -> GsheetsSinkConfig:
        if self.spreadsheet_id and self.spreadsheet_name:
            raise ValueError("give spreadsheet_id or spreadsheet_name, not both")
        if self.service_account_file and self.oauth_file:
            raise ValueError("give service_account_file or oauth_file, not both")
        return self

    @property
    def name(self) -> str:
        return self.spreadsheet_name or DEFAULT_NAME

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_wait, 16.0, self.retry_timeout)


class SheetsError(Exception):
    """A destination problem, already phrased for a person (no credentials in it)."""


# ---- HTTP ---------------------------------------------------------------------------------------


@functools.cache
def endpoint_http_client(endpoint: str) -> type:
    """A ``gspread.HTTPClient`` subclass sending Google API calls to ``endpoint`` (Google's: plain)."""
    from gspread.http_client import HTTPClient

    base = endpoint.rstrip("/")
    if base in _GOOGLE_PREFIXES:
        return HTTPClient

    class EndpointHTTPClient(HTTPClient):
        """Rewrites ``https://sheets.googleapis.com`` and ``https://www.googleapis.com`` to the endpoint."""

        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
            for prefix in _GOOGLE_PREFIXES:
                if endpoint.startswith(prefix + "/"):
                    endpoint = base + endpoint[len(prefix) :]
                    break
            return super().request(method, endpoint, *args, **kwargs)

    EndpointHTTPClient.__qualname__ = f"EndpointHTTPClient[{base}]"
    return EndpointHTTPClient


def google_message(exc: BaseException) -> str:
    """Google's words for an error (``429 RESOURCE_EXHAUSTED: Quota exceeded ...``); no credentials."""
    error = getattr(exc, "error", None)
    if isinstance(error, dict) and error.get("message"):
        code, status = error.get("code"), error.get("status") or ""
        if code == -1:  # not Google's JSON: a proxy or load balancer answered
            code = http_status(exc)
            status = "(not a Google API response)"
        text = " ".join(str(error["message"]).split())
        text = text if len(text) < 300 else text[:297] + "..."
        return f"{code} {status}: {text}".replace(" :", ":")
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def http_status(exc: BaseException) -> int | None:
    """The HTTP status; gspread reports ``code -1`` when the body is not Google's JSON (a proxy's 502)."""
    status = status_of(exc)
    if status is not None and status < 0:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx and connection problems (see :func:`evalport.adapters.retry.is_transient`)."""
    status = http_status(exc)
    return status in RETRYABLE_STATUS if status is not None else is_transient(exc)


def _retry_create(exc: BaseException) -> bool:
    """Creating is not idempotent: retry only when Google surely did nothing (429, refused connection)."""
    status = http_status(exc)
    return (
        status == 429
        if status is not None
        else type(exc).__name__ in {"ConnectionError", "NewConnectionError"}
    )


class SheetsApi:
    """The few Sheets/Drive calls the sink makes, each bounded by the retry policy."""

    def __init__(self, client: Any, policy: RetryPolicy, endpoint: str) -> None:
        self.client = client
        self.http = client.http_client
        self.policy = policy
        self.endpoint = endpoint

    def call(
        self, what: str, fn: Callable[[], T], retryable: Callable[[BaseException], bool] = is_retryable
    ) -> T:
        from google.auth.exceptions import GoogleAuthError
        from gspread.exceptions import GSpreadException
        from requests import RequestException

        tries = 0
        started = time.monotonic()

        def attempt() -> T:
            nonlocal tries
            tries += 1
            return fn()

        try:
            return self.policy.call(attempt, retryable)
        except (GSpreadException, RequestException, GoogleAuthError, OSError) as exc:
            raise SheetsError(self.explain(what, exc, tries, time.monotonic() - started)) from exc

    def explain(self, what: str, exc: BaseException, tries: int, seconds: float) -> str:
        from google.auth.exceptions import GoogleAuthError

        after = f" (gave up after {tries} attempts in {seconds:.1f}s)" if tries > 1 else ""
        status = http_status(exc)
        if isinstance(exc, GoogleAuthError):
            return (
                f"could not obtain a Google access token while {what}: {google_message(exc)}; "
                "check the credentials file and that its service account still exists"
            )
        if status is None:
            return (
                f"cannot reach the Google Sheets API at {self.endpoint} while {what}: "
                f"{type(exc).__name__}{after}; check the network or the endpoint option"
            )
        hint = {
            401: "the credentials were refused; create a new key for the service account",
            403: "share the spreadsheet with the service account's e-mail as Editor",
            404: "check spreadsheet_id (the long id in the spreadsheet's URL) and that it is shared "
            "with the service account",
            429: "the Sheets quota is exhausted; export again in a minute or export fewer jobs at once",
        }.get(status, "try again later" if status >= 500 else "check the gsheets options")
        return f"Google Sheets refused {what} ({google_message(exc)}){after}; {hint}"

    # -- the calls ----------------------------------------------------------------------------
    def metadata(self, spreadsheet_id: str) -> dict[str, Any]:
        params = {"includeGridData": "false"}
        return self.call(
            "reading the spreadsheet", lambda: self.http.fetch_sheet_metadata(spreadsheet_id, params)
        )

    def find(self, name: str) -> str | None:
        from gspread.urls import DRIVE_FILES_API_V3_URL

        escaped = name.replace("\\", "\\\\").replace("'", "\\'")
        params = {
            "q": f"mimeType='{SHEETS_MIME}' and name = '{escaped}' and trashed = false",
            "pageSize": 10,
            "supportsAllDrives": True,
            "includeItemsFromAllDrives": True,
            "fields": "files(id,name)",
        }
        got = self.call(
            "looking the spreadsheet up by name",
            lambda: self.http.request("get", DRIVE_FILES_API_V3_URL, params=params).json(),
        )
        ids = [f["id"] for f in got.get("files", []) if f.get("name") == name]
        return ids[0] if ids else None

    def create(self, name: str) -> str:
        from gspread.urls import DRIVE_FILES_API_V3_URL

        body = {"name": name, "mimeType": SHEETS_MIME}
        got = self.call(
            "creating the spreadsheet",
            lambda: self.http.request(
                "post", DRIVE_FILES_API_V3_URL, json=body, params={"supportsAllDrives": True}
            ).json(),
            _retry_create,
        )
        return str(got["id"])

    def share(self, spreadsheet_id: str, email: str) -> None:
        self.call(
            f"sharing the spreadsheet with {email}",
            lambda: self.client.insert_permission(spreadsheet_id, email, perm_type="user", role="writer"),
            _retry_create,
        )

    def batch_get(self, spreadsheet_id: str, ranges: list[str]) -> list[list[list[Any]]]:
        out: list[list[list[Any]]] = []
        params = {"valueRenderOption": "UNFORMATTED_VALUE", "majorDimension": "ROWS"}
        for i in range(0, len(ranges), MAX_RANGES_PER_READ):
            chunk = ranges[i : i + MAX_RANGES_PER_READ]
            got = self.call(
                "reading the sheet",
                lambda chunk=chunk: self.http.values_batch_get(spreadsheet_id, chunk, dict(params)),
            )
            out.extend(vr.get("values", []) for vr in got.get("valueRanges", []))
        return out

    def resize(self, spreadsheet_id: str, sheet_id: int, rows: int, cols: int) -> None:
        body = {
            "requests": [
                {
                    "updateSheetProperties": {
                        "properties": {
                            "sheetId": sheet_id,
                            "gridProperties": {"rowCount": rows, "columnCount": cols},
                        },
                        "fields": "gridProperties.rowCount,gridProperties.columnCount",
                    }
                }
            ]
        }
        self.call("growing the sheet", lambda: self.http.batch_update(spreadsheet_id, body))

    def add_worksheet(self, spreadsheet_id: str, title: str) -> dict[str, Any]:
        body = {"requests": [{"addSheet": {"properties": {"title": title}}}]}
        got = self.call(
            f"adding worksheet {title!r}", lambda: self.http.batch_update(spreadsheet_id, body), _retry_create
        )
        return got["replies"][0]["addSheet"]["properties"]

    def write(self, spreadsheet_id: str, data: list[dict[str, Any]]) -> None:
        body = {"valueInputOption": "RAW", "includeValuesInResponse": False, "data": data}
        self.call("writing rows", lambda: self.http.values_batch_update(spreadsheet_id, body))


# ---- the sink -----------------------------------------------------------------------------------


@dataclass
class _Target:
    spreadsheet_id: str
    url: str
    title: str
    sheet_id: int
    rows: int
    cols: int


@dataclass
class _Write:
    range: str
    values: list[list[Any]]
    job_ids: tuple[str, ...] = ()


class GsheetsSink(BaseSink):
    """Google Sheets: one row per job, metrics as columns, updated in place."""

    name: ClassVar[str] = "gsheets"
    Config = GsheetsSinkConfig
    capabilities = SinkCapabilities(
        artifacts=False, logs=False, upsert=True, multi_task=False, non_finite_values=True
    )
    config: GsheetsSinkConfig

    def __init__(self, config: GsheetsSinkConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._api: SheetsApi | None = None
        self._spreadsheet_id: str | None = self.config.spreadsheet_id
        self._url: str | None = None

    # -- credentials ------------------------------------------------------------------------------
    def credentials_file(self) -> tuple[Path, str]:
        """(path, where it came from) of the credentials this sink uses."""
        if self.config.service_account_file:
            return self.config.service_account_file.expanduser(), "service_account_file"
        if self.config.oauth_file:
            return self.config.oauth_file.expanduser(), "oauth_file"
        env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if env:
            return Path(env).expanduser(), "GOOGLE_APPLICATION_CREDENTIALS"
        raise SheetsError(
            "no Google credentials: set -o export.gsheets.service_account_file=KEY.json "
            "(or GOOGLE_APPLICATION_CREDENTIALS, or oauth_file); see docs/sinks/gsheets.md"
        )

    def _credentials(self) -> Any:
        path, origin = self.credentials_file()
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SheetsError(f"credentials file {path} (from {origin}) does not exist") from None
        except OSError as exc:
            raise SheetsError(
                f"cannot read credentials file {path} (from {origin}): {exc.strerror}"
            ) from None
        except ValueError:
            raise SheetsError(
                f"credentials file {path} (from {origin}) is not JSON; download the key again"
            ) from None
        if not isinstance(info, dict):
            raise SheetsError(f"credentials file {path} (from {origin}) is not a Google credentials file")
        kind = info.get("type")
        try:
            if kind == "service_account":
                from google.oauth2.service_account import Credentials

                return Credentials.from_service_account_info(info, scopes=list(SCOPES))
            if kind == "authorized_user":
                from google.oauth2.credentials import Credentials as UserCredentials

                return UserCredentials.from_authorized_user_info(info, list(SCOPES))
            if "installed" in info or "web" in info:
                return self._oauth_flow(path)
        except (ValueError, KeyError) as exc:
            field = exc.args[0] if isinstance(exc, KeyError) else "its fields"
            raise SheetsError(f"credentials file {path} is incomplete ({field}); download it again") from None
        raise SheetsError(
            f"credentials file {path} (from {origin}) is neither a service-account key nor "
            "an OAuth client file; see docs/sinks/gsheets.md"
        )

    @staticmethod
    def _oauth_flow(client_file: Path) -> Any:
        """OAuth client ID: reuse gspread's stored user token, else run its browser flow once."""
        from gspread.auth import (
            DEFAULT_AUTHORIZED_USER_FILENAME,
            load_credentials,
            local_server_flow,
            store_credentials,
        )

        creds = load_credentials(filename=DEFAULT_AUTHORIZED_USER_FILENAME)
        if creds is None:
            config = json.loads(client_file.read_text(encoding="utf-8"))
            creds = local_server_flow(config, list(SCOPES))
            store_credentials(creds, filename=DEFAULT_AUTHORIZED_USER_FILENAME)
        return creds

    def api(self) -> SheetsApi:
        if self._api is None:
            import gspread

            client = gspread.authorize(
                self._credentials(), http_client=endpoint_http_client(self.config.endpoint)
            )
            client.set_timeout(self.config.timeout)
            self._api = SheetsApi(client, self.config.retry_policy, self.config.endpoint)
        return self._api

    # -- describing -------------------------------------------------------------------------------
    def describe(self) -> str:
        if self._url:
            return self._url
        if self._spreadsheet_id:
            return f"https://docs.google.com/spreadsheets/d/{self._spreadsheet_id}"
        return f"spreadsheet {self.config.name!r} (created on first export)"

    # -- opening ------------------------------------------------------------------------------------
    def _open(self, api: SheetsApi, *, create: bool = True) -> _Target | None:
        """The spreadsheet and the worksheet, with a fresh grid size.

        Both are created (the spreadsheet shared) when absent, unless ``create`` is False: then
        None says there is nothing to find.
        """
        if self._spreadsheet_id is None:
            found = api.find(self.config.name)
            if found is None:
                if not create:
                    return None
                found = api.create(self.config.name)
                for email in self.config.share_with:
                    api.share(found, email)
            self._spreadsheet_id = found
        meta = api.metadata(self._spreadsheet_id)
        self._url = (
            meta.get("spreadsheetUrl") or f"https://docs.google.com/spreadsheets/d/{self._spreadsheet_id}"
        )
        sheets = [s.get("properties", {}) for s in meta.get("sheets", [])]
        props = self._pick_sheet(sheets)
        if props is None:
            if not create:
                return None
            props = api.add_worksheet(self._spreadsheet_id, str(self.config.worksheet))
        grid = props.get("gridProperties", {})
        return _Target(
            self._spreadsheet_id,
            self._url,
            props["title"],
            props["sheetId"],
            int(grid.get("rowCount", 0)),
            int(grid.get("columnCount", 0)),
        )

    def _pick_sheet(self, sheets: list[dict[str, Any]]) -> dict[str, Any] | None:
        wanted = self.config.worksheet
        if not wanted:
            if not sheets:
                raise SheetsError(f"spreadsheet {self._url} has no worksheet")
            return sheets[0]
        for match in (lambda t: t == wanted, lambda t: t.casefold() == wanted.casefold()):
            for props in sheets:
                if match(props.get("title", "")):
                    return props
        return None

    # -- exporting ----------------------------------------------------------------------------------
    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        if not items:
            return []
        try:
            api = self.api()
            target = self._open(api)
            assert target is not None
            outcomes = self._upsert(api, target, items)
        except SheetsError as exc:
            where = self.describe()
            return [
                Outcome(i.result.job_id, self.destination, Status.FAILED, f"{exc} [{where}]") for i in items
            ]
        return [outcomes[i.result.job_id] for i in items]

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """The job ids whose rows the worksheet still holds, of those the ledger says were written.

        ``located`` maps job id -> the row link this sink returned. Two reads (the spreadsheet's
        metadata, then the header and Job ID column in one batchGet); nothing is created. Any
        failure to read holds nothing: exporting again is the safe answer, and says what is wrong.
        """
        if not located:
            return set()
        try:
            api = self.api()
            target = self._open(api, create=False)
            if target is None:
                return set()
            _header, id_rows, _last = self._read_table(api, target)
        except Exception:  # an unreadable destination confirms nothing
            log.debug("gsheets: could not confirm the ledger's rows", exc_info=True)
            return set()
        return {job_id for job_id in located if job_id in id_rows}

    def _read_table(self, api: SheetsApi, t: _Target) -> tuple[list[Any], dict[str, int], int]:
        """Header row, job id -> row, last row with a Job ID: one batchGet (two if Job ID moved)."""
        ranges = [layout.header_range(t.title)]
        guess = layout.JOB_ID_COLUMN
        if t.cols > guess and t.rows >= 2:
            ranges.append(layout.column_range(t.title, guess))
        got = api.batch_get(t.spreadsheet_id, ranges)
        header = got[0][0] if got and got[0] else []
        index = layout.header_index(header)
        if header and layout.JOB_ID not in index:
            raise SheetsError(
                f"worksheet {t.title!r} has a header row without a {layout.JOB_ID!r} column, so evalport "
                "cannot tell its rows apart; choose another worksheet (-o export.gsheets.worksheet=NAME)"
            )
        column = got[1] if len(got) > 1 else []
        job_col = index.get(layout.JOB_ID, guess)
        if job_col != guess:
            column = api.batch_get(t.spreadsheet_id, [layout.column_range(t.title, job_col)])[0]
        rows, last = layout.job_rows(column)
        return list(header), rows, last

    def _upsert(self, api: SheetsApi, t: _Target, items: Sequence[ExportItem]) -> dict[str, Outcome]:
        header, id_rows, last_row = self._read_table(api, t)
        records = [layout.record_for(i.result) for i in items]
        columns = layout.plan_columns(header, layout.wanted_columns(records))
        width = columns.width
        known = sorted({id_rows[r[layout.JOB_ID]] for r in records if r[layout.JOB_ID] in id_rows})
        append_at = last_row + 1
        has_new = any(r[layout.JOB_ID] not in id_rows for r in records)

        # Read the rows being re-exported (to compare) and what lies below the table (to append past it).
        read_cols = max(1, min(width, t.cols)) - 1
        ranges = [layout.a1(t.title, a, 0, b, read_cols) for a, b in layout.contiguous(known)]
        below = has_new and append_at <= t.rows
        if below:
            ranges.append(layout.a1(t.title, append_at, 0, None, read_cols))
        got = api.batch_get(t.spreadsheet_id, ranges) if ranges else []
        stored: dict[int, list[Any]] = {}
        for (a, _b), values in zip(layout.contiguous(known), got, strict=False):
            for offset, row in enumerate(values):
                stored[a + offset] = row
        if below:
            last = layout.last_used_row(got[-1], append_at)
            if last is not None:
                append_at = last + 1

        statuses: dict[str, Status] = {}
        rows_of: dict[str, int] = {}
        pending: dict[int, list[Any]] = {}
        new_rows: list[tuple[str, list[Any]]] = []
        for record in records:
            job_id = str(record[layout.JOB_ID])
            cells = layout.row_cells(record, columns, width)
            row = id_rows.get(job_id)
            if row is None:
                row = append_at + len(new_rows)
                id_rows[job_id] = row
                new_rows.append((job_id, cells))
                pending[row] = cells
                statuses[job_id] = Status.EXPORTED
            elif row in pending:  # the same job twice in one batch: the later one wins
                pending[row][:] = cells
                statuses.setdefault(job_id, Status.UPDATED)
            elif layout.row_unchanged(stored.get(row, []), cells):
                statuses[job_id] = Status.UNCHANGED
            else:
                pending[row] = cells
                statuses[job_id] = Status.UPDATED
            rows_of[job_id] = row

        writes = self._plan_writes(t, columns, pending, new_rows, append_at, id_rows)
        failed = self._send(api, t, writes, needed_rows=max(pending, default=0), needed_cols=width)
        outcomes: dict[str, Outcome] = {}
        for job_id, status in statuses.items():
            location = f"{t.url}#gid={t.sheet_id}&range={rows_of[job_id]}:{rows_of[job_id]}"
            if job_id in failed:
                outcomes[job_id] = Outcome(
                    job_id, self.destination, Status.FAILED, f"{failed[job_id]} [{t.url}]"
                )
            else:
                outcomes[job_id] = Outcome(job_id, self.destination, status, location=location)
        return outcomes

    @staticmethod
    def _plan_writes(
        t: _Target,
        columns: layout.ColumnPlan,
        pending: dict[int, list[Any]],
        new_rows: list[tuple[str, list[Any]]],
        append_at: int,
        id_rows: dict[str, int],
    ) -> list[_Write]:
        writes: list[_Write] = []
        if columns.new:
            first, last = columns.new[0][0], columns.new[-1][0]
            writes.append(_Write(layout.a1(t.title, 1, first, 1, last), [[name for _, name in columns.new]]))
        job_at = {row: job for job, row in id_rows.items()}
        new_block = {append_at + k for k in range(len(new_rows))}
        for row in sorted(set(pending) - new_block):
            cells = pending[row]
            writes.append(_Write(layout.a1(t.title, row, 0, row, len(cells) - 1), [cells], (job_at[row],)))
        for start in range(0, len(new_rows), MAX_ROWS_PER_WRITE):
            block = new_rows[start : start + MAX_ROWS_PER_WRITE]
            first = append_at + start
            width = max(len(cells) for _, cells in block)
            writes.append(
                _Write(
                    layout.a1(t.title, first, 0, first + len(block) - 1, width - 1),
                    [cells for _, cells in block],
                    tuple(job for job, _ in block),
                )
            )
        return writes

    @staticmethod
    def _send(
        api: SheetsApi, t: _Target, writes: list[_Write], *, needed_rows: int, needed_cols: int
    ) -> dict[str, str]:
        """Grow the grid, then write in as few batchUpdates as the size limit allows.

        Returns job id -> reason for jobs whose rows were not written. Each request carries whole
        rows; after a failed request nothing more is sent (later rows could depend on its header).
        """
        if not any(w.job_ids for w in writes):
            writes = []  # new metric columns alone, for jobs that are all unchanged, are not worth a write
        if not writes:
            return {}
        all_jobs = [j for w in writes for j in w.job_ids]
        if needed_rows > t.rows or needed_cols > t.cols:
            try:
                api.resize(t.spreadsheet_id, t.sheet_id, max(t.rows, needed_rows), max(t.cols, needed_cols))
            except SheetsError as exc:
                return dict.fromkeys(all_jobs, str(exc))
        batches: list[list[_Write]] = [[]]
        rows_in_batch = 0
        for w in writes:
            if rows_in_batch and rows_in_batch + len(w.values) > MAX_ROWS_PER_WRITE:
                batches.append([])
                rows_in_batch = 0
            batches[-1].append(w)
            rows_in_batch += len(w.values)
        failed: dict[str, str] = {}
        for n, batch in enumerate(batches):
            data = [{"range": w.range, "majorDimension": "ROWS", "values": w.values} for w in batch]
            try:
                api.write(t.spreadsheet_id, data)
            except SheetsError as exc:
                for later in batches[n:]:
                    failed.update(dict.fromkeys((j for w in later for j in w.job_ids), str(exc)))
                break
        return failed

    # -- doctor -------------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Credentials readable, a token obtained, the spreadsheet reachable; a few seconds at most."""
        started = time.monotonic()
        try:
            path, origin = self.credentials_file()
            creds = self._credentials()
            self._token(creds)
            import gspread

            client = gspread.authorize(creds, http_client=endpoint_http_client(self.config.endpoint))
            client.set_timeout(min(self.config.timeout, 5.0))
            api = SheetsApi(
                client,
                RetryPolicy(attempts=2, initial_wait=0.2, max_wait=1.0, total_timeout=5.0),
                self.config.endpoint,
            )
            if self._spreadsheet_id is None:
                found = api.find(self.config.name)
                if found is None:
                    return CheckResult(
                        True,
                        f"gsheets: credentials from {origin} ({path}) work; spreadsheet "
                        f"{self.config.name!r} will be created on the first export",
                    )
                self._spreadsheet_id = found
            meta = api.metadata(self._spreadsheet_id)
        except SheetsError as exc:
            return CheckResult(False, f"gsheets: {exc}")
        self._url = meta.get("spreadsheetUrl") or self.describe()
        titles = [s.get("properties", {}).get("title") for s in meta.get("sheets", [])]
        took = time.monotonic() - started
        return CheckResult(
            True,
            f"gsheets: {self._url} is reachable with credentials from {origin} "
            f"(worksheets: {', '.join(map(str, titles))}; {took:.1f}s)",
            {"url": self._url, "worksheets": titles},
        )

    def _token(self, creds: Any) -> None:
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import Request

        base = Request()

        def quick(*args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = 5
            return base(*args, **kwargs)

        try:
            creds.refresh(quick)
        except GoogleAuthError as exc:
            raise SheetsError(f"could not obtain an access token: {google_message(exc)}") from None

    def close(self) -> None:
        if self._api is not None:
            session = getattr(self._api.http, "session", None)
            if session is not None:
                session.close()
            self._api = None
