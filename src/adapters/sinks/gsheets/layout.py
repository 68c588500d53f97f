"""Pure planning for the Google Sheets sink: which columns and rows to write, nothing else.

No network and no gspread here: A1 ranges, cells, the records of jobs, where columns go.
:mod:`.plan` builds the write plan from them.

Ownership: the sink owns the base columns and the metric columns it created; every other
column (a person's ``Notes``) is never written: rows carry ``None`` there, which the Sheets API
skips. Cells are compared as the API returns them with ``UNFORMATTED_VALUE``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalport.domain.model import TaskResult

BASE_COLUMNS: tuple[str, ...] = (
    "Model Name",
    "Harness",
    "Task Name",
    "Executor",
    "Container",
    "Invocation ID",
    "Job ID",
)
JOB_ID = "Job ID"
JOB_ID_COLUMN = BASE_COLUMNS.index(JOB_ID)  # 0-based; G on a sheet this sink created
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

Cell = Any  # str | int | float | bool | None (None: leave the cell as it is)


# ---- A1 notation --------------------------------------------------------------------------------


def column_letters(index: int) -> str:
    """0-based column index -> letters (0 -> A, 25 -> Z, 26 -> AA)."""
    if index < 0:
        raise ValueError(f"column indexes start at 0, got {index}")
    index += 1
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def quote_title(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def a1(title: str, row0: int, col0: int, row1: int | None = None, col1: int | None = None) -> str:
    """``'Title'!B3:D5`` from 1-based rows and 0-based columns; ``None`` ends are open."""
    start = f"{column_letters(col0)}{row0}"
    end = (column_letters(col1) if col1 is not None else "") + (str(row1) if row1 is not None else "")
    return f"{quote_title(title)}!{start}:{end}" if end else f"{quote_title(title)}!{start}"


def header_range(title: str) -> str:
    return f"{quote_title(title)}!1:1"


def column_range(title: str, col: int, first_row: int = 2) -> str:
    """One column from ``first_row`` down to the grid's end (``'T'!G2:G``)."""
    letters = column_letters(col)
    return f"{quote_title(title)}!{letters}{first_row}:{letters}"


# ---- values -------------------------------------------------------------------------------------


def cell_value(value: Any) -> Cell:
    """What to send for a value: JSON has no NaN or infinity, so those go as Google's spellings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None:
        return ""
    return value


def same_cell(stored: Any, wanted: Cell) -> bool:
    """Equal as the API returns cells (missing == ""; 1 == 1.0; bools are not numbers)."""
    if wanted is None:
        return True
    stored = "" if stored is None else stored
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return type(stored) is type(wanted) and stored == wanted
    if isinstance(wanted, (int, float)) and isinstance(stored, (int, float)):
        return float(stored) == float(wanted)
    return type(stored) is type(wanted) and stored == wanted


def launcher_metric_name(task: str, name: str) -> str:
    """The launcher's column for a metric: its flat name without the ``<task>_`` prefix."""
    return name[len(task) + 1 :] if name.startswith(task + "_") else name


def record_for(result: TaskResult, launcher: bool = False) -> dict[str, Cell]:
    """Column name -> cell for one job: the base columns, then each metric and its stats.

    With ``launcher`` the metric columns are named as nemo-evaluator-launcher 0.2.6 names them
    (:func:`launcher_metric_name`), so rows of one task line up in the launcher's columns.
    """
    record: dict[str, Cell] = {
        "Model Name": result.model_id,
        "Harness": result.harness,
        "Task Name": result.task,
        "Executor": result.executor,
        "Container": result.container,
        "Invocation ID": result.invocation_id,
        JOB_ID: result.job_id,
    }
    record = {k: cell_value(v) for k, v in record.items()}
    for name, value in result.flat_metrics().items():
        column = launcher_metric_name(result.task, name) if launcher else name
        record[metric_column(column)] = cell_value(float(value))
    return record


METRIC_SUFFIX = " (metric)"


def metric_column(name: str) -> str:
    """The header of a metric's column: its flat name, unless that would shadow a base column.

    A name that already ends in the suffix gets one more, so two metrics never share a column.
    """
    return name + METRIC_SUFFIX if name in BASE_COLUMNS or name.endswith(METRIC_SUFFIX) else name


# ---- reading what is there ----------------------------------------------------------------------


def header_index(header: Sequence[Any]) -> dict[str, int]:
    """Header text -> 0-based column of its first occurrence; empty cells are ignored."""
    index: dict[str, int] = {}
    for col, cell in enumerate(header):
        text = "" if cell is None else str(cell)
        if text and text not in index:
            index[text] = col
    return index


def job_rows(column: Sequence[Sequence[Any]], first_row: int = 2) -> tuple[dict[str, int], int]:
    """From the Job ID column as read (one list per row): job id -> first row, and the last used row.

    Rows are 1-based. The last used row is ``first_row - 1`` when the column is empty.
    """
    rows: dict[str, int] = {}
    last = first_row - 1
    for offset, cells in enumerate(column):
        value = cells[0] if cells else ""
        text = "" if value is None else str(value)
        if not text:
            continue
        row = first_row + offset
        last = row
        rows.setdefault(text, row)
    return rows, last


# ---- columns and rows -----------------------------------------------------------------------------------


@dataclass
class ColumnPlan:
    """Where each wanted column lives; new ones go after the last used header cell."""

    index: dict[str, int]
    new: list[tuple[int, str]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return max(self.index.values(), default=-1) + 1


def plan_columns(header: Sequence[Any], wanted: Iterable[str]) -> ColumnPlan:
    index = header_index(header)
    next_col = len(header)  # the API trims the row, so this is just after the last used cell
    while next_col and header[next_col - 1] in ("", None):
        next_col -= 1
    new: list[tuple[int, str]] = []
    for name in wanted:
        if name not in index:
            index[name] = next_col
            new.append((next_col, name))
            next_col += 1
    return ColumnPlan(index, new)


def wanted_columns(records: Iterable[Mapping[str, Cell]], sort: bool = False) -> list[str]:
    """Base columns first, then metric columns in the order they first appear (``sort``: by name,
    the launcher's order)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    metrics = [n for n in names if n not in BASE_COLUMNS]
    return [*BASE_COLUMNS, *(sorted(metrics) if sort else metrics)]


def row_cells(record: Mapping[str, Cell], columns: ColumnPlan, width: int) -> list[Cell]:
    """A whole row, ``None`` (left alone) in every column this record does not own."""
    row: list[Cell] = [None] * width
    for name, value in record.items():
        row[columns.index[name]] = value
    return row


def row_unchanged(stored: Sequence[Any], wanted: Sequence[Cell]) -> bool:
    return all(same_cell(stored[c] if c < len(stored) else "", w) for c, w in enumerate(wanted))


def contiguous(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted row numbers grouped into inclusive (first, last) runs: [3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    runs: list[tuple[int, int]] = []
    for row in sorted(set(rows)):
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
