"""The sheet write plan, pure: from what the sheet holds and the jobs' records, what to write.

The sink reads the header row and the Job ID column (a :class:`Table`), asks :func:`rows_to_read`
which rows it must see (the rows of jobs being re-exported, and what lies below the table), reads
them, and gets from :func:`plan_export` the header's new cells, the rows to rewrite and the rows
to append, with every job's status. Applying a plan and planning again gives an empty plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from evalport.adapters.sinks.gsheets import layout
from evalport.adapters.sinks.gsheets.layout import Cell, ColumnPlan
from evalport.domain.report import Status

MAX_ROWS_PER_WRITE = 500  # rows per values:batchUpdate; keeps each request well under Google's size limit


@dataclass(frozen=True)
class Table:
    """What the first read of a worksheet gives: its header row and where each job's row is."""

    header: list[Cell]
    job_rows: dict[str, int]  # job id -> its first row (1-based)
    last_row: int  # the last row holding a Job ID (1 when there is none)

    @classmethod
    def read(cls, header: Sequence[Cell], job_column: Sequence[Sequence[Cell]]) -> Table:
        """From the header row and the Job ID column from row 2 down, as the API returns them."""
        rows, last = layout.job_rows(job_column)
        return cls(list(header), rows, last)


@dataclass(frozen=True)
class RowReads:
    """Rows to read before planning: runs of known jobs' rows, and from ``below`` down (or None)."""

    spans: list[tuple[int, int]]
    below: int | None
    last_col: int  # 0-based: read columns A up to this one


@dataclass(frozen=True)
class RowWrite:
    row: int
    cells: list[Cell]
    job_id: str


@dataclass(frozen=True)
class Write:
    """One range of a ``values:batchUpdate`` and the jobs whose rows it carries."""

    range: str
    values: list[list[Cell]]
    job_ids: tuple[str, ...] = ()


@dataclass
class ExportPlan:
    columns: ColumnPlan
    updates: list[RowWrite] = field(default_factory=list)  # rows of known jobs, rewritten whole
    appends: list[RowWrite] = field(default_factory=list)  # consecutive new rows
    statuses: dict[str, Status] = field(default_factory=dict)
    rows_of: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing to send: new metric columns alone, for jobs that are all unchanged, wait."""
        return not self.updates and not self.appends

    @property
    def needed_rows(self) -> int:
        return max((w.row for w in (*self.updates, *self.appends)), default=0)

    @property
    def needed_cols(self) -> int:
        return self.columns.width


def unique_records(records: Sequence[Mapping[str, Cell]]) -> list[Mapping[str, Cell]]:
    """One record per job id, the later one winning, in the order jobs first appear."""
    by_job: dict[str, Mapping[str, Cell]] = {}
    for record in records:
        by_job[str(record[layout.JOB_ID])] = record
    return list(by_job.values())


def rows_to_read(
    table: Table, records: Sequence[Mapping[str, Cell]], grid: tuple[int, int], sort: bool = False
) -> RowReads:
    """The rows the plan needs; ``grid`` is the worksheet's (rows, columns)."""
    rows, cols = grid
    columns = layout.plan_columns(table.header, layout.wanted_columns(records, sort))
    known = [table.job_rows[job] for r in records if (job := str(r[layout.JOB_ID])) in table.job_rows]
    has_new = any(str(r[layout.JOB_ID]) not in table.job_rows for r in records)
    below = table.last_row + 1 if has_new and table.last_row + 1 <= rows else None
    return RowReads(layout.contiguous(known), below, max(1, min(columns.width, cols)) - 1)


def append_row(table: Table, stored: Mapping[int, Sequence[Cell]]) -> int:
    """The first row new jobs go to: below the last Job ID and below anything a person put there."""
    last = table.last_row
    for row, cells in stored.items():
        if row > last and any(c not in ("", None) for c in cells):
            last = row
    return last + 1


def plan_export(
    table: Table,
    stored: Mapping[int, Sequence[Cell]],
    records: Sequence[Mapping[str, Cell]],
    sort: bool = False,
) -> ExportPlan:
    """What to write for ``records`` (one per job, see :func:`layout.record_for`).

    ``stored`` maps row numbers to the cells read there: the rows :func:`rows_to_read` named (more
    rows are fine). A known job whose owned cells all equal the stored ones is unchanged; a
    changed one is rewritten whole (``None`` in columns it does not own); a new one is appended.
    A job is known by its ``Job ID`` cell wherever that column is, so rows nemo-evaluator-launcher
    wrote are updated in place. ``sort`` orders new metric columns by name (the launcher's order).
    """
    unique = unique_records(records)
    columns = layout.plan_columns(table.header, layout.wanted_columns(unique, sort))
    plan = ExportPlan(columns)
    next_row = append_row(table, stored)
    for record in unique:
        job_id = str(record[layout.JOB_ID])
        cells = layout.row_cells(record, columns, columns.width)
        row = table.job_rows.get(job_id)
        if row is None:
            row, next_row = next_row, next_row + 1
            plan.appends.append(RowWrite(row, cells, job_id))
            plan.statuses[job_id] = Status.EXPORTED
        elif layout.row_unchanged(stored.get(row, []), cells):
            plan.statuses[job_id] = Status.UNCHANGED
        else:
            plan.updates.append(RowWrite(row, cells, job_id))
            plan.statuses[job_id] = Status.UPDATED
        plan.rows_of[job_id] = row
    plan.updates.sort(key=lambda w: w.row)
    return plan


def writes(plan: ExportPlan, title: str, max_rows: int = MAX_ROWS_PER_WRITE) -> list[Write]:
    """The plan as ranges: the header's new cells, each rewritten row, the appended rows in blocks."""
    if plan.empty:
        return []
    out: list[Write] = []
    new = plan.columns.new
    if new:
        out.append(Write(layout.a1(title, 1, new[0][0], 1, new[-1][0]), [[name for _, name in new]]))
    for row in plan.updates:
        out.append(
            Write(layout.a1(title, row.row, 0, row.row, len(row.cells) - 1), [row.cells], (row.job_id,))
        )
    for start in range(0, len(plan.appends), max_rows):
        block = plan.appends[start : start + max_rows]
        first, last = block[0].row, block[-1].row
        width = max(len(w.cells) for w in block)
        out.append(
            Write(
                layout.a1(title, first, 0, last, width - 1),
                [w.cells for w in block],
                tuple(w.job_id for w in block),
            )
        )
    return out


def batches(ranges: Sequence[Write], max_rows: int = MAX_ROWS_PER_WRITE) -> list[list[Write]]:
    """Ranges grouped into requests of at most ``max_rows`` job rows; the header's cells ride along."""
    out: list[list[Write]] = [[]]
    rows = 0
    for write in ranges:
        size = len(write.values) if write.job_ids else 0
        if rows and rows + size > max_rows:
            out.append([])
            rows = 0
        out[-1].append(write)
        rows += size
    return out if out[0] else []
