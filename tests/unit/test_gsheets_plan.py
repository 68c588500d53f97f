"""The Sheets write plan from the sheet's values and the jobs' records (pure: no server, no gspread)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalport.adapters.sinks.gsheets import layout
from evalport.adapters.sinks.gsheets import plan as planning
from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig
from evalport.domain.model import Metric, TaskResult
from evalport.domain.report import Status

JOB_COL = layout.JOB_ID_COLUMN


def result(job_id: str, **metrics: float) -> TaskResult:
    invocation = job_id.split(".")[0]
    ms = tuple(Metric(name, value) for name, value in metrics.items())
    return TaskResult(job_id, invocation, "gsm8k", "lm-eval", "meta/llama", "local", ms, container=None)


def records(*results: TaskResult) -> list[dict[str, Any]]:
    return [layout.record_for(r) for r in results]


def plan_for(values: Sequence[Sequence[Any]], recs: Sequence[dict[str, Any]]) -> planning.ExportPlan:
    """Plans against a whole sheet, read the way the sink reads it (header, Job ID column, rows)."""
    header = list(values[0]) if values else []
    job_col = layout.header_index(header).get(layout.JOB_ID, JOB_COL)
    column = [[row[job_col]] if job_col < len(row) else [] for row in values[1:]]
    table = planning.Table.read(header, column)
    stored = {n: list(row) for n, row in enumerate(values, start=1) if n > 1}
    return planning.plan_export(table, stored, recs)


_A1 = re.compile(r"^'(?:[^']|'')*'!([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?$")


def letters_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - ord("A") + 1
    return index - 1


def apply(values: list[list[Any]], plan: planning.ExportPlan) -> list[list[Any]]:
    """What a Sheets API with RAW input makes of the plan's writes (``None`` leaves a cell alone)."""
    grid = [list(row) for row in values]
    for write in planning.writes(plan, "S"):
        match = _A1.match(write.range)
        assert match, write.range
        row0, col0 = int(match[2]), letters_index(match[1])
        for r, cells in enumerate(write.values):
            while len(grid) < row0 + r:
                grid.append([])
            row = grid[row0 + r - 1]
            for c, cell in enumerate(cells):
                if cell is None:
                    continue
                row.extend([""] * (col0 + c + 1 - len(row)))
                row[col0 + c] = cell
    return grid


def test_an_empty_sheet_gets_the_header_and_every_job_appended_from_row_2():
    plan = plan_for([], records(result("a.0", m=1.0), result("a.1", m=2.0)))
    assert [w.row for w in plan.appends] == [2, 3] and not plan.updates
    assert [name for _, name in plan.columns.new] == [*layout.BASE_COLUMNS, "m"]
    assert plan.statuses == {"a.0": Status.EXPORTED, "a.1": Status.EXPORTED}


def test_a_job_whose_row_holds_the_same_values_is_unchanged_and_nothing_is_written():
    sheet = apply([], plan_for([], records(result("a.0", m=1.0))))
    plan = plan_for(sheet, records(result("a.0", m=1.0)))
    assert plan.empty and plan.statuses == {"a.0": Status.UNCHANGED}
    assert planning.writes(plan, "S") == []


def test_a_changed_job_rewrites_its_own_row_and_leaves_a_persons_column_alone():
    sheet = apply([], plan_for([], records(result("a.0", m=1.0), result("a.1", m=2.0))))
    sheet[0].append("Notes")
    sheet[1].append("keep me")
    plan = plan_for(sheet, records(result("a.0", m=1.5)))
    assert [(w.row, w.job_id) for w in plan.updates] == [(2, "a.0")] and not plan.appends
    assert plan.statuses == {"a.0": Status.UPDATED}
    after = apply(sheet, plan)
    assert after[1][-1] == "keep me" and after[1][layout.BASE_COLUMNS.index("Job ID") + 1] == 1.5


def test_a_new_job_is_appended_below_what_a_person_wrote_under_the_table():
    sheet = apply([], plan_for([], records(result("a.0", m=1.0))))
    sheet += [[], ["a note"]]
    plan = plan_for(sheet, records(result("a.1", m=2.0)))
    assert [w.row for w in plan.appends] == [5]


def test_a_new_metric_gets_a_column_after_the_last_used_header_cell():
    sheet = apply([], plan_for([], records(result("a.0", m=1.0))))
    sheet[0] += ["", "Owner"]
    plan = plan_for(sheet, records(result("a.0", m=1.0, n=3.0)))
    assert plan.columns.new == [(len(sheet[0]), "n")]
    assert plan.statuses == {"a.0": Status.UPDATED}


def test_the_same_job_twice_in_one_export_gets_one_row_with_the_later_values():
    plan = plan_for([], records(result("a.0", m=1.0), result("a.0", m=2.0)))
    assert len(plan.appends) == 1 and plan.appends[0].cells[plan.columns.index["m"]] == 2.0


def test_rows_to_read_are_the_known_jobs_rows_and_what_lies_below_when_jobs_are_new():
    sheet = apply([], plan_for([], records(*(result(f"a.{i}", m=1.0) for i in range(5)))))
    header, column = sheet[0], [[row[JOB_COL]] for row in sheet[1:]]
    table = planning.Table.read(header, column)
    reads = planning.rows_to_read(table, records(result("a.1"), result("a.2"), result("a.4")), (1000, 26))
    assert reads.spans == [(3, 4), (6, 6)] and reads.below is None
    reads = planning.rows_to_read(table, records(result("a.1"), result("b.0")), (1000, 26))
    assert reads.spans == [(3, 3)] and reads.below == 7
    assert planning.rows_to_read(table, records(result("b.0")), (6, 26)).below is None  # the grid ends


def test_appended_rows_are_written_in_blocks_and_requests_stay_under_the_row_limit():
    plan = plan_for([], records(*(result(f"a.{i}", m=float(i)) for i in range(7))))
    ranges = planning.writes(plan, "S", max_rows=3)
    assert [len(w.values) for w in ranges] == [1, 3, 3, 1]  # the header, then the rows
    assert [j for w in ranges for j in w.job_ids] == [f"a.{i}" for i in range(7)]
    batches = planning.batches(ranges, max_rows=3)
    assert [[len(w.values) for w in b] for b in batches] == [[1, 3], [3], [1]]  # the header rides along
    assert planning.batches([]) == []


def test_retry_attempts_is_the_old_name_of_retries_and_still_works():
    with pytest.warns(DeprecationWarning, match="'retry_attempts' is deprecated; use 'retries'"):
        config = GsheetsSinkConfig.model_validate({"retry_attempts": 2})
    assert config.retries == 2 and config.retry_policy().attempts == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert GsheetsSinkConfig.model_validate({"retries": 4}).retries == 4
    with pytest.raises(ValueError, match="give only 'retries'"):
        GsheetsSinkConfig.model_validate({"retry_attempts": 2, "retries": 3})


# ---- planning again after applying a plan gives an empty plan ------------------------------------

job_ids = st.sampled_from([f"inv{i}.{k}" for i in range(3) for k in range(3)])
metric_names = st.sampled_from(["m", "n", "Job ID", "x_stderr"])
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5).map(float))
job_results = st.builds(
    lambda job, ms: result(job, **ms), job_ids, st.dictionaries(metric_names, values, max_size=3)
)


@st.composite
def sheets(draw: st.DrawFn) -> list[list[Any]]:
    """A sheet this sink wrote before, with a person's column, notes below and cleared rows."""
    earlier = draw(st.lists(job_results, max_size=5))
    sheet = apply([], plan_for([], records(*earlier))) if earlier else []
    if sheet and draw(st.booleans()):
        sheet[0].append("Notes")
        sheet[-1].append("a person's note")
    for _ in range(draw(st.integers(0, 2))):
        sheet.append(draw(st.sampled_from([[], [""], ["", "", "text"]])))
    return sheet


@settings(max_examples=150, deadline=None)
@given(sheets(), st.lists(job_results, min_size=1, max_size=6))
def test_planning_again_after_applying_a_plan_writes_nothing_and_duplicates_no_row(sheet, batch):
    recs = records(*batch)
    after = apply(sheet, plan_for(sheet, recs))
    again = plan_for(after, recs)

    assert again.empty and set(again.statuses.values()) == {Status.UNCHANGED}
    job_col = after[0].index(layout.JOB_ID)
    ids = [row[job_col] for row in after[1:] if job_col < len(row) and row[job_col] != ""]
    assert len(ids) == len(set(ids)) and {r.job_id for r in batch} <= set(ids)
    if sheet and "Notes" in sheet[0]:
        notes = sheet[0].index("Notes")

        def cell(row: list[Any]) -> Any:
            return row[notes] if notes < len(row) else ""

        assert [cell(row) for row in after[: len(sheet)]] == [cell(row) for row in sheet]
