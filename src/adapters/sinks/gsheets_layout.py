"""The old import path of the Sheets layout rules; they live in :mod:`.gsheets.layout`."""

from evalport.adapters.sinks.gsheets.layout import (
    BASE_COLUMNS,
    JOB_ID,
    JOB_ID_COLUMN,
    METRIC_SUFFIX,
    NON_FINITE,
    a1,
    cell_value,
    column_letters,
    metric_column,
    record_for,
)

__all__ = [
    "BASE_COLUMNS",
    "JOB_ID",
    "JOB_ID_COLUMN",
    "METRIC_SUFFIX",
    "NON_FINITE",
    "a1",
    "cell_value",
    "column_letters",
    "metric_column",
    "record_for",
]
