import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalport.domain.errors import MetricConflictError, ResultError
from evalport.domain.results import flatten_results


def flat(results):
    out = {}
    for m in flatten_results(results):
        out.update(m.flat())
    return out


def score(value, **stats):
    return {"value": value, **({"stats": stats} if stats else {})}


def test_a_score_named_like_its_metric_is_not_repeated_in_the_name():
    results = {"tasks": {"mmlu": {"metrics": {"acc": {"scores": {"acc": score(0.5)}}}}}}
    assert flat(results) == {"mmlu_acc": 0.5}


def test_other_score_types_are_appended_to_the_name():
    results = {
        "tasks": {
            "gsm8k": {
                "metrics": {
                    "exact_match": {"scores": {"strict-match": score(0.7), "flexible-extract": score(0.8)}}
                }
            }
        }
    }
    assert flat(results) == {"gsm8k_exact_match_strict-match": 0.7, "gsm8k_exact_match_flexible-extract": 0.8}


def test_stats_under_scores_and_under_metrics_are_both_kept_under_each_score_as_the_launcher_names_them():
    results = {
        "tasks": {
            "t": {
                "metrics": {
                    "score": {
                        "scores": {"micro": score(0.4, stderr=0.16, stddev=0.49)},
                        "stats": {"count": 10},
                    }
                }
            }
        }
    }
    assert flat(results) == {
        "t_score_micro": 0.4,
        "t_score_micro_stderr": 0.16,
        "t_score_micro_stddev": 0.49,
        "t_score_micro_count": 10.0,
    }


def test_a_scores_own_statistic_wins_over_the_metrics():
    results = {
        "tasks": {
            "t": {
                "metrics": {
                    "acc": {
                        "scores": {"micro": score(0.5, stderr=0.2), "macro": score(0.25)},
                        "stats": {"stderr": 0.1},
                    }
                }
            }
        }
    }
    assert flat(results) == {
        "t_acc_micro": 0.5,
        "t_acc_micro_stderr": 0.2,
        "t_acc_macro": 0.25,
        "t_acc_macro_stderr": 0.1,
    }


def test_nested_groups_prefix_their_parent_name():
    results = {
        "groups": {
            "mmlu": {
                "metrics": {"acc": {"scores": {"acc": score(0.6)}}},
                "groups": {
                    "stem": {
                        "metrics": {"acc": {"scores": {"acc": score(0.55)}}},
                        "groups": {"physics": {"metrics": {"acc": {"scores": {"acc": score(0.5)}}}}},
                    }
                },
            }
        }
    }
    assert flat(results) == {"mmlu_acc": 0.6, "mmlu_stem_acc": 0.55, "mmlu_stem_physics_acc": 0.5}


def test_the_same_key_with_the_same_value_in_tasks_and_groups_is_one_metric():
    block = {"metrics": {"score": {"scores": {"micro": score(0.4, stderr=0.1)}}}}
    metrics = flatten_results({"tasks": {"gpqa": block}, "groups": {"gpqa": block}})
    assert [m.name for m in metrics] == ["gpqa_score_micro"]


def test_the_same_key_with_two_values_is_an_error_naming_both():
    with pytest.raises(MetricConflictError) as err:
        flatten_results(
            {
                "tasks": {"gpqa": {"metrics": {"score": {"scores": {"micro": score(0.4)}}}}},
                "groups": {"gpqa": {"metrics": {"score": {"scores": {"micro": score(0.5)}}}}},
            }
        )
    assert "gpqa_score_micro" in str(err.value) and "0.4" in str(err.value) and "0.5" in str(err.value)


def test_a_stat_colliding_with_a_metric_of_another_value_is_a_conflict():
    results = {
        "tasks": {
            "t": {
                "metrics": {
                    "acc": {"scores": {"acc": score(0.5, stderr=0.1)}},
                    "acc_stderr": {"scores": {"acc_stderr": score(0.2)}},
                }
            }
        }
    }
    with pytest.raises(MetricConflictError, match="t_acc_stderr"):
        flatten_results(results)


@pytest.mark.parametrize("bad", ["high", None, True, [1]])
def test_a_value_that_is_not_a_number_is_an_error_naming_where(bad):
    with pytest.raises(ResultError, match=r"results.tasks.t.metrics.m.scores.m.value"):
        flatten_results({"tasks": {"t": {"metrics": {"m": {"scores": {"m": {"value": bad}}}}}}})


def test_numeric_strings_and_non_finite_values_are_kept():
    got = flat(
        {
            "tasks": {
                "t": {
                    "metrics": {
                        "a": {
                            "scores": {
                                "a": score("0.25"),
                                "n": score(float("nan")),
                                "i": score(float("-inf")),
                            }
                        }
                    }
                }
            }
        }
    )
    assert got["t_a"] == 0.25 and math.isnan(got["t_a_n"]) and got["t_a_i"] == -math.inf


@pytest.mark.parametrize("results", [None, [], {}, {"other": 1}])
def test_results_without_tasks_or_groups_are_an_error(results):
    with pytest.raises(ResultError):
        flatten_results(results)


# ---- properties ---------------------------------------------------------------------------------
names = st.text(alphabet="abcdefghij", min_size=1, max_size=4)
values = st.floats(allow_nan=False, allow_infinity=False, width=32)


@st.composite
def results_trees(draw):
    """Trees whose flat names are unique by construction (distinct letters per level)."""
    tasks = {}
    expected = {}
    for t_i, task in enumerate(draw(st.lists(names, min_size=1, max_size=3, unique=True))):
        task = f"T{t_i}{task}"
        metrics = {}
        for m_i, metric in enumerate(draw(st.lists(names, min_size=1, max_size=3, unique=True))):
            metric = f"M{m_i}{metric}"
            scores = {}
            for s_i, sc in enumerate(draw(st.lists(names, min_size=1, max_size=3, unique=True))):
                sc = metric if s_i == 0 and draw(st.booleans()) else f"S{s_i}{sc}"
                v = draw(values)
                stderr = draw(values)
                scores[sc] = {"value": v, "stats": {"stderr": stderr}}
                name = f"{task}_{metric}" if sc == metric else f"{task}_{metric}_{sc}"
                expected[name] = v
                expected[f"{name}_stderr"] = stderr
            metrics[metric] = {"scores": scores}
        tasks[task] = {"metrics": metrics}
    return {"tasks": tasks}, expected


@given(results_trees())
def test_flattening_never_drops_or_overwrites_a_value(tree_and_expected):
    tree, expected = tree_and_expected
    assert flat(tree) == expected


@given(results_trees())
def test_flattening_the_same_tree_twice_under_tasks_and_groups_changes_nothing(tree_and_expected):
    tree, expected = tree_and_expected
    assert flat({"tasks": tree["tasks"], "groups": tree["tasks"]}) == expected


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), "1e400", "-1e999"], ids=["int", "-int", "str", "-str"]
)
def test_a_value_too_large_for_a_float_is_an_error_naming_where_it_is(value):
    results = {"tasks": {"t": {"metrics": {"acc": {"scores": {"acc": score(value)}}}}}}
    with pytest.raises(ResultError) as err:
        flatten_results(results)
    assert "results.tasks.t.metrics.acc.scores.acc.value" in str(err.value) and "out of range" in str(
        err.value
    )


def test_a_stderr_too_large_for_a_float_is_an_error_naming_the_statistic():
    results = {"tasks": {"t": {"metrics": {"acc": {"scores": {"acc": score(0.5, stderr=10**400)}}}}}}
    with pytest.raises(ResultError) as err:
        flatten_results(results)
    assert "scores.acc.stats.stderr" in str(err.value)


def test_infinity_and_nan_spelled_as_such_stay_values():
    results = {"tasks": {"t": {"metrics": {"a": {"scores": {"a": score("inf"), "b": score("nan")}}}}}}
    got = flat(results)
    assert got["t_a"] == math.inf and math.isnan(got["t_a_b"])
