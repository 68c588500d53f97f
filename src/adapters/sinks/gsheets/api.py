"""The few Sheets and Drive calls the sink makes, through gspread, each through the export's Destination.

gspread is imported lazily; every call goes through :class:`~evalport.adapters.sinks.remote.Destination`
(429 and 5xx, bounded retries that stop once the API is known to be down for this export), never
through gspread's unbounded ``BackOffHTTPClient``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.gsheets.errors import CREATE_RULES, SHEETS_RULES, SheetsError, explain
from evalport.adapters.sinks.remote import CallFailed, Destination, DestinationDown, ErrorRules

T = TypeVar("T")

_GOOGLE_PREFIXES = ("https://sheets.googleapis.com", "https://www.googleapis.com")
SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
MAX_RANGES_PER_READ = 100  # ranges per values:batchGet; keeps the URL short


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


class SheetsApi:
    """The few Sheets/Drive calls the sink makes, each through :attr:`dest`.

    A call that fails after its retries raises :class:`SheetsError` with a sentence for a person
    (``not tried: ...`` once the API is down for this export). :meth:`new_export` starts afresh.
    """

    def __init__(self, client: Any, policy: RetryPolicy, endpoint: str) -> None:
        self.client = client
        self.http = client.http_client
        self.policy = policy
        self.endpoint = endpoint
        self.dest = self.new_export()

    def new_export(self) -> Destination:
        """A fresh view of the API for one export: tried again even if it was down last time."""
        endpoint = self.endpoint
        self.dest = Destination(self.policy, SHEETS_RULES, explain=lambda failure: explain(failure, endpoint))
        return self.dest

    def call(self, what: str, fn: Callable[[], T], rules: ErrorRules | None = None) -> T:
        from google.auth.exceptions import GoogleAuthError
        from gspread.exceptions import GSpreadException
        from requests import RequestException

        try:
            return self.dest.call(what, fn, rules)
        except DestinationDown as failure:
            raise SheetsError(failure.reason) from None
        except CallFailed as failure:
            if not isinstance(failure.error, (GSpreadException, RequestException, GoogleAuthError, OSError)):
                raise failure.error from None  # a bug, not the API: not worded as Google's refusal
            raise SheetsError(failure.reason) from failure.error

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
            CREATE_RULES,
        )
        return str(got["id"])

    def share(self, spreadsheet_id: str, email: str) -> None:
        self.call(
            f"sharing the spreadsheet with {email}",
            lambda: self.client.insert_permission(spreadsheet_id, email, perm_type="user", role="writer"),
            CREATE_RULES,
        )

    def batch_get(self, spreadsheet_id: str, ranges: list[str]) -> list[list[list[Any]]]:
        out: list[list[list[Any]]] = []
        params = {"valueRenderOption": "UNFORMATTED_VALUE", "majorDimension": "ROWS"}
        for i in range(0, len(ranges), MAX_RANGES_PER_READ):
            chunk = ranges[i : i + MAX_RANGES_PER_READ]
            got = self.call(
                "reading the sheet", functools.partial(self._values, spreadsheet_id, chunk, params)
            )
            out.extend(vr.get("values", []) for vr in got.get("valueRanges", []))
        return out

    def _values(self, spreadsheet_id: str, ranges: list[str], params: dict[str, str]) -> dict[str, Any]:
        return dict(self.http.values_batch_get(spreadsheet_id, ranges, dict(params)))

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
            f"adding worksheet {title!r}", lambda: self.http.batch_update(spreadsheet_id, body), CREATE_RULES
        )
        return got["replies"][0]["addSheet"]["properties"]

    def write(self, spreadsheet_id: str, data: list[dict[str, Any]]) -> None:
        body = {"valueInputOption": "RAW", "includeValuesInResponse": False, "data": data}
        self.call("writing rows", lambda: self.http.values_batch_update(spreadsheet_id, body))


def connect(credentials: Any, endpoint: str, timeout: float, policy: RetryPolicy) -> SheetsApi:
    """An authorized gspread client for ``endpoint``, each request bounded by ``timeout`` seconds."""
    import gspread

    client = gspread.authorize(credentials, http_client=endpoint_http_client(endpoint))
    client.set_timeout(timeout)
    return SheetsApi(client, policy, endpoint)
