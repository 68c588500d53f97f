"""The comparison matrix, cell by cell: headline choice, latest run, best, stderr and deltas."""

from __future__ import annotations

import math

import pytest

from evalport.domain.comparison import build_comparison, choose_headline, is_subgroup_metric
from evalport.domain.errors import UsageError
from evalport.domain.model import Metric, TaskResult


def res(model: str, task: str, metrics: dict, *, job: str = "", harness: str = "h", ts: float | None = 1.0):
    return TaskResult(
        job_id=job or f"{model}-{task}",
        invocation_id="inv",
        task=task,
        harness=harness,
        model_id=model,
        executor="local",
        metrics=tuple(
            Metric(n, v[0], {"stderr": v[1]}) if isinstance(v, tuple) else Metric(n, v)
            for n, v in metrics.items()
        ),
        timestamp=ts,
    )


def test_the_preferred_headline_names_win_in_priority_order():
    names = {"mmlu_pro_score_macro", "mmlu_pro_score_micro", "mmlu_pro_stem_score_micro"}
    assert choose_headline("mmlu_pro", names) == ("mmlu_pro_score_micro", "preferred name 'score_micro'")
    gsm = {"gsm8k_exact_match_flexible-extract", "gsm8k_exact_match_strict-match"}
    assert choose_headline("gsm8k", gsm)[0] == "gsm8k_exact_match_strict-match"
    assert choose_headline("hellaswag", {"hellaswag_acc_norm", "hellaswag_acc"})[0] == "hellaswag_acc"
    assert choose_headline("humaneval", {"humaneval_pass@1"})[0] == "humaneval_pass@1"


def test_a_configured_headline_wins_by_full_or_short_name_and_a_wrong_one_falls_back():
    names = {"gsm8k_exact_match_flexible-extract", "gsm8k_exact_match_strict-match"}
    assert choose_headline("gsm8k", names, "exact_match_flexible-extract") == (
        "gsm8k_exact_match_flexible-extract",
        "configured",
    )
    assert choose_headline("gsm8k", names, "gsm8k_exact_match_flexible-extract")[1] == "configured"
    assert choose_headline("gsm8k", names, "nope")[0] == "gsm8k_exact_match_strict-match"


def test_without_a_known_name_the_first_task_level_metric_by_name_is_chosen():
    names = {"mytask_zeta", "mytask_beta", "mytask_groupa_beta", "other_alpha"}
    assert is_subgroup_metric("mytask_groupa_beta", "mytask", names)
    assert not is_subgroup_metric("mytask_beta", "mytask", names)
    assert choose_headline("mytask", names) == ("mytask_beta", "first task-level metric by name")
    assert choose_headline("t", {"unprefixed"}) == ("unprefixed", "first task-level metric by name")
    assert choose_headline("t", set()) == (None, "no metric")


def test_subgroup_metrics_are_never_the_headline_even_when_they_sort_first():
    names = {"mmlu_zz", "mmlu_aa_zz"}
    assert choose_headline("mmlu", names)[0] == "mmlu_zz"


def test_every_cell_holds_the_headline_value_stderr_best_and_delta_against_the_baseline():
    results = [
        res(
            "a",
            "gsm8k",
            {"gsm8k_exact_match_strict-match": (0.5, 0.01), "gsm8k_exact_match_flexible-extract": 0.9},
        ),
        res("b", "gsm8k", {"gsm8k_exact_match_strict-match": (0.7, 0.02)}),
        res("c", "gsm8k", {"gsm8k_exact_match_strict-match": 0.6}),
        res("a", "mmlu", {"mmlu_acc": (0.4, 0.03), "mmlu_stem_acc": 0.99}),
        res("b", "mmlu", {"mmlu_acc": 0.8}),
    ]
    cmp = build_comparison(results, baseline="c")
    assert cmp.models == ("c", "a", "b")  # the baseline first, then by name
    assert [(t.label, t.metric) for t in cmp.tasks] == [
        ("gsm8k", "gsm8k_exact_match_strict-match"),
        ("mmlu", "mmlu_acc"),
    ]
    g, m = "h/gsm8k", "h/mmlu"
    a, b, c = cmp.cell("a", g), cmp.cell("b", g), cmp.cell("c", g)
    assert (a.value, a.stderr, a.best, a.job_id, a.runs) == (0.5, 0.01, False, "a-gsm8k", 1)
    assert (b.value, b.stderr, b.best) == (0.7, 0.02, True)
    assert (c.value, c.stderr, c.best, c.delta, c.is_baseline) == (0.6, None, False, None, True)
    assert a.delta == pytest.approx(-0.1) and b.delta == pytest.approx(0.1)
    assert (cmp.cell("a", m).value, cmp.cell("a", m).stderr, cmp.cell("a", m).best) == (0.4, 0.03, False)
    assert cmp.cell("b", m).best and cmp.cell("b", m).delta is None  # the baseline has no mmlu result
    empty = cmp.cell("c", m)
    assert (empty.value, empty.job_id, empty.runs, empty.best, empty.delta) == (None, None, 0, False, None)


def test_the_latest_run_of_a_model_on_a_task_is_shown_and_the_others_counted():
    results = [
        res("a", "t", {"t_acc": 0.1}, job="old", ts=10.0),
        res("a", "t", {"t_acc": 0.3}, job="new", ts=20.0),
        res("a", "t", {"t_acc": 0.2}, job="untimed", ts=None),
    ]
    cell = build_comparison(results).cell("a", "h/t")
    assert (cell.value, cell.job_id, cell.runs) == (0.3, "new", 3)
    assert not cell.best  # one model: nothing to be best against


def test_ties_are_all_best_and_nan_is_never_best():
    results = [
        res("a", "t", {"t_acc": 0.5}),
        res("b", "t", {"t_acc": 0.5}),
        res("c", "t", {"t_acc": math.nan}),
    ]
    cmp = build_comparison(results, baseline="c")
    assert [cmp.cell(x, "h/t").best for x in "abc"] == [True, True, False]
    assert cmp.cell("a", "h/t").delta is None  # no delta against a NaN baseline


def test_lower_is_better_metrics_mark_the_smallest_value_best():
    results = [res("a", "t", {"t_perplexity": 7.0}), res("b", "t", {"t_perplexity": 5.0})]
    cmp = build_comparison(results)
    assert cmp.tasks[0].higher_is_better is False
    assert cmp.cell("b", "h/t").best and not cmp.cell("a", "h/t").best


def test_a_stderr_kept_as_its_own_metric_is_used():
    cell = build_comparison([res("a", "t", {"t_acc": 0.5, "t_acc_stderr": 0.02})]).cell("a", "h/t")
    assert cell.stderr == 0.02


def test_the_same_task_name_from_two_harnesses_gets_two_labelled_columns():
    results = [
        res("a", "mmlu", {"mmlu_acc": 0.5}, harness="lm"),
        res("a", "mmlu", {"mmlu_acc": 0.6}, harness="se"),
    ]
    cmp = build_comparison(results)
    assert [t.label for t in cmp.tasks] == ["lm/mmlu", "se/mmlu"]
    assert [cmp.cell("a", t.key).value for t in cmp.tasks] == [0.5, 0.6]


def test_headlines_apply_per_task_and_unknown_ones_become_notes():
    results = [res("a", "t", {"t_acc": 0.5, "t_f1": 0.7})]
    cmp = build_comparison(results, headline={"t": "f1", "missing": "acc"})
    assert cmp.tasks[0].metric == "t_f1" and cmp.cell("a", "h/t").value == 0.7
    assert any("'missing'" in n for n in cmp.notes)
    cmp = build_comparison(results, headline={"t": "nope"})
    assert cmp.tasks[0].metric == "t_acc" and "'nope'" in cmp.notes[0]


def test_the_order_of_the_results_does_not_change_the_comparison():
    results = [
        res("a", "t", {"t_x": 0.1, "t_y": 0.2}),
        res("b", "t", {"t_y": 0.3, "t_w": 0.4}),
        res("b", "u", {"u_acc": 0.5}),
    ]
    one, two = build_comparison(results), build_comparison(results[::-1])
    assert one.models == two.models and one.tasks == two.tasks and dict(one.cells) == dict(two.cells)
    assert one.tasks[0].metric == "t_w"


def test_an_unknown_baseline_is_a_usage_error_naming_the_models():
    with pytest.raises(UsageError, match=r"'z'.*\(a\)"):
        build_comparison([res("a", "t", {"t_acc": 0.5})], baseline="z")
