"""The Google Sheets sink (``--dest gsheets``): see :mod:`.sink`; the write plan in :mod:`.plan`."""

from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig
from evalport.adapters.sinks.gsheets.sink import GsheetsSink

__all__ = ["GsheetsSink", "GsheetsSinkConfig"]
