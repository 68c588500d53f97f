"""The Markdown report parsed back, cell by cell, against the comparison it was made from."""

from __future__ import annotations

import math
import re

from evalport.adapters.report.markdown import render_markdown
from evalport.domain.comparison import Comparison, build_comparison
from evalport.domain.model import Metric, TaskResult


def res(model: str, task: str, metrics: dict) -> TaskResult:
    return TaskResult(
        job_id=f"{model}-{task}",
        invocation_id="inv",
        task=task,
        harness="h",
        model_id=model,
        executor="local",
        metrics=tuple(Metric(n, v, {"stderr": s} if s is not None else {}) for n, (v, s) in metrics.items()),
        timestamp=1.0,
    )


def split_row(line: str) -> list[str]:
    """A GFM table row's cells, honouring ``\\|`` escapes, with Markdown escapes undone."""
    cells, cur, i = [], "", 0
    body = line.strip()[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            cur += body[i + 1]
            i += 2
            continue
        if body[i] == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += body[i]
        i += 1
    cells.append(cur.strip())
    return cells


def parse_table(text: str) -> tuple[list[str], list[list[str]]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert re.fullmatch(r"\|:---(\|---:)+\|", rows[1]), rows[1]
    return split_row(rows[0]), [split_row(r) for r in rows[2:]]


CELL = re.compile(
    r"(?P<bold>\*\*)?(?P<value>[^*\s]+)(?P=bold)?(?: ± (?P<stderr>\S+))?(?: \((?P<delta>[+-]\S+)\))?"
)


def check_cells(text: str, cmp: Comparison) -> None:
    header, rows = parse_table(text)
    assert header[0] == "Model"
    for column, shown in zip(cmp.tasks, header[1:], strict=True):
        assert shown == f"{column.label} `{column.metric_short}`"
    assert len(rows) == len(cmp.models)
    for model, row in zip(cmp.models, rows, strict=True):
        assert row[0] == model + (" (baseline)" if model == cmp.baseline else "")
        for column, text_cell in zip(cmp.tasks, row[1:], strict=True):
            cell = cmp.cell(model, column.key)
            if cell.value is None:
                assert text_cell == "—"
                continue
            got = CELL.fullmatch(text_cell)
            assert got, text_cell
            assert bool(got["bold"]) == cell.best
            assert math.isclose(float(got["value"]), cell.value, abs_tol=5e-5)
            if cell.stderr is None:
                assert got["stderr"] is None
            else:
                assert math.isclose(float(got["stderr"]), cell.stderr, abs_tol=5e-5)
            if cell.delta is None:
                assert got["delta"] is None
            else:
                assert math.isclose(float(got["delta"]), cell.delta, abs_tol=5e-5)


RESULTS = [
    res("meta/llama-3.1-8b-instruct", "gsm8k", {"gsm8k_exact_match_strict-match": (0.6213, 0.0134)}),
    res("meta/llama-3.1-8b-instruct", "mmlu", {"mmlu_acc": (0.684, 0.0041)}),
    res("qwen/qwen2.5-7b-instruct", "gsm8k", {"gsm8k_exact_match_strict-match": (0.8105, 0.0111)}),
    res("qwen/qwen2.5-7b-instruct", "humaneval", {"humaneval_pass@1": (0.35, None)}),
    res("odd|model_*name*", "gsm8k", {"gsm8k_exact_match_strict-match": (0.4, 0.0142)}),
    res("odd|model_*name*", "mmlu", {"mmlu_acc": (0.7123, 0.004)}),
]


def test_every_cell_of_the_markdown_table_matches_the_comparison():
    cmp = build_comparison(RESULTS)
    check_cells(render_markdown(cmp), cmp)


def test_deltas_against_the_baseline_are_in_the_cells_and_the_baseline_is_named():
    cmp = build_comparison(RESULTS, baseline="meta/llama-3.1-8b-instruct")
    text = render_markdown(cmp, title="PR #12")
    check_cells(text, cmp)
    assert text.startswith("# PR #12\n")
    _, rows = parse_table(text)
    assert rows[0][0] == "meta/llama-3.1-8b-instruct (baseline)"
    qwen = next(r for r in rows if r[0].startswith("qwen/"))
    assert qwen[1:] == ["**0.8105** ± 0.0111 (+0.1892)", "0.3500", "—"]


def test_pipes_and_markdown_characters_in_names_do_not_break_the_table():
    cmp = build_comparison(RESULTS)
    text = render_markdown(cmp)
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len({len(split_row(r)) for r in rows}) == 1  # every row has the same number of cells
    assert r"odd\|model\_\*name\*" in text


def test_notes_follow_the_table_and_an_empty_comparison_says_so():
    cmp = build_comparison(RESULTS, headline={"nothing": "acc"})
    assert "- headline for 'nothing' ignored" in render_markdown(cmp)
    assert "No results to compare." in render_markdown(build_comparison([]))


def test_a_comparison_of_one_job_one_model_one_task_says_so_in_the_singular():
    from evalport.adapters.report.formatting import counted

    assert [counted(1, "model"), counted(2, "model"), counted(0, "task")] == [
        "1 model",
        "2 models",
        "0 tasks",
    ]
