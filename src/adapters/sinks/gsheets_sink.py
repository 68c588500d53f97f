"""The old import path of the Google Sheets sink (entry points and plugins name it); see :mod:`.gsheets`."""

from evalport.adapters.sinks.gsheets.api import SheetsApi, endpoint_http_client
from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig
from evalport.adapters.sinks.gsheets.errors import SheetsError, google_message, http_status, is_retryable
from evalport.adapters.sinks.gsheets.sink import GsheetsSink

__all__ = [
    "GsheetsSink",
    "GsheetsSinkConfig",
    "SheetsApi",
    "SheetsError",
    "endpoint_http_client",
    "google_message",
    "http_status",
    "is_retryable",
]
