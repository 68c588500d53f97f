"""The pure column/row planning of the gsheets sink (no network, no gspread)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalport.adapters.sinks.gsheets import layout
from evalport.domain.model import Metric, TaskResult


def result(job_id: str = "abcd.0", metrics: tuple[Metric, ...] = ()) -> TaskResult:
    return TaskResult(job_id, "abcd", "gsm8k", "lm-eval", "meta/llama", "local", metrics, container=None)


@pytest.mark.parametrize(
    ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (51, "AZ"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letters_go_past_z(index, letters):
    assert layout.column_letters(index) == letters


def test_ranges_quote_the_sheet_title_and_double_its_quotes():
    assert layout.a1("It's", 2, 0, 5, 27) == "'It''s'!A2:AB5"
    assert layout.a1("S", 3, 1) == "'S'!B3"
    assert layout.a1("S", 2001, 0, None, 3) == "'S'!A2001:D"
    assert layout.header_range("S") == "'S'!1:1"
    assert layout.column_range("S", 6) == "'S'!G2:G"


def test_non_finite_values_become_googles_spellings_and_come_back():
    assert [layout.cell_value(v) for v in (math.nan, math.inf, -math.inf, 0.5)] == [
        "NaN",
        "Infinity",
        "-Infinity",
        0.5,
    ]
    back = [layout.NON_FINITE[layout.cell_value(v)] for v in (math.nan, math.inf, -math.inf)]
    assert math.isnan(back[0]) and back[1:] == [math.inf, -math.inf]


def test_a_record_holds_the_base_columns_then_metrics_with_their_stats():
    record = layout.record_for(result(metrics=(Metric("gsm8k_em", 0.5, {"stderr": 0.01}),)))
    assert list(record)[:7] == list(layout.BASE_COLUMNS)
    assert record["Container"] == "" and record["Job ID"] == "abcd.0"
    assert record["gsm8k_em"] == 0.5 and record["gsm8k_em_stderr"] == 0.01


def test_a_metric_named_like_a_base_column_gets_its_own_column():
    record = layout.record_for(result(metrics=(Metric("Job ID", 1.0),)))
    assert record["Job ID"] == "abcd.0" and record["Job ID (metric)"] == 1.0


def test_a_metric_already_named_with_the_suffix_stays_apart_from_a_renamed_one():
    record = layout.record_for(result(metrics=(Metric("Job ID", 1.0), Metric("Job ID (metric)", 2.0))))
    assert record["Job ID (metric)"] == 1.0 and record["Job ID (metric) (metric)"] == 2.0


def test_new_columns_go_after_the_last_used_header_cell_and_a_persons_column_stays():
    header = [*layout.BASE_COLUMNS, "m1", "Notes", "", ""]
    plan = layout.plan_columns(header, [*layout.BASE_COLUMNS, "m1", "m2", "m3"])
    assert plan.index["Notes"] == 8 and plan.index["m1"] == 7
    assert plan.new == [(9, "m2"), (10, "m3")]
    assert plan.width == 11


def test_an_empty_header_plans_every_column_from_a():
    plan = layout.plan_columns([], ["a", "b"])
    assert plan.new == [(0, "a"), (1, "b")]


def test_rows_leave_columns_a_record_does_not_own_untouched():
    plan = layout.plan_columns(["Job ID", "Notes", "m"], ["Job ID", "m"])
    assert layout.row_cells({"Job ID": "j", "m": 2.0}, plan, plan.width) == ["j", None, 2.0]


def test_job_rows_skip_empty_cells_and_keep_the_first_duplicate():
    rows, last = layout.job_rows([["a"], [], ["b"], ["a"], [""]])
    assert rows == {"a": 2, "b": 4} and last == 5
    assert layout.job_rows([]) == ({}, 1)


@pytest.mark.parametrize(
    ("stored", "wanted", "same"),
    [
        (1, 1.0, True),  # UNFORMATTED_VALUE gives integers for whole numbers
        (0.1 + 0.2, 0.30000000000000004, True),
        ("0.5", 0.5, False),  # a person typed text
        ("", "", True),
        (None, "", True),
        ("anything", None, True),  # a cell we do not own
        (True, 1.0, False),
        ("NaN", "NaN", True),
    ],
)
def test_cells_compare_as_the_api_returns_them(stored, wanted, same):
    assert layout.same_cell(stored, wanted) is same


def test_a_short_stored_row_equals_a_row_of_empty_owned_cells():
    assert layout.row_unchanged(["a"], ["a", "", None])
    assert not layout.row_unchanged(["a"], ["a", 0.5])


@given(st.lists(st.integers(min_value=2, max_value=60), max_size=30))
def test_contiguous_runs_cover_exactly_the_rows(rows):
    runs = layout.contiguous(rows)
    covered = [r for a, b in runs for r in range(a, b + 1)]
    assert covered == sorted(set(rows))
    assert all(runs[i][1] + 1 < runs[i + 1][0] for i in range(len(runs) - 1))
