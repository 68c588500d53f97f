import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalport.domain.errors import ConfigError
from evalport.domain.filters import MetricFilter
from evalport.domain.model import Metric

NAMES = [
    "mmlu_acc",
    "MMLU_acc_norm",
    "gsm8k_exact_match_strict-match",
    "humaneval_pass@1",
    "gpqa_score_micro",
]


def allowed(patterns):
    f = MetricFilter.of(patterns)
    return [n for n in NAMES if f.allows(n)]


def test_no_pattern_lets_everything_through():
    assert allowed(None) == NAMES and allowed([]) == NAMES


def test_a_plain_pattern_is_a_case_insensitive_substring():
    assert allowed(["mmlu"]) == ["mmlu_acc", "MMLU_acc_norm"]


def test_globs_match_the_whole_name():
    assert allowed(["*_acc"]) == ["mmlu_acc"]
    assert allowed(["gsm8k_*"]) == ["gsm8k_exact_match_strict-match"]


def test_regexes_are_searched():
    assert allowed([r"re:pass@\d+$"]) == ["humaneval_pass@1"]


def test_exclusions_win_over_inclusions():
    assert allowed(["mmlu", "!norm"]) == ["mmlu_acc"]
    assert allowed(["!mmlu"]) == NAMES[2:]


def test_a_comma_separated_string_is_several_patterns():
    assert allowed("mmlu_acc, humaneval") == ["mmlu_acc", "MMLU_acc_norm", "humaneval_pass@1"]


@pytest.mark.parametrize("bad", ["re:(", "!", "  "])
def test_a_bad_pattern_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        MetricFilter.of([bad])


def test_statistics_are_filtered_by_their_flat_names():
    metrics = [Metric("t_acc", 0.5, {"stderr": 0.1, "stddev": 0.2})]
    out = MetricFilter.of(["!stddev"]).apply(metrics)
    assert out == [Metric("t_acc", 0.5, {"stderr": 0.1})]
    only_stats = MetricFilter.of(["stderr"]).apply(metrics)
    assert only_stats == [Metric("t_acc_stderr", 0.1)]


pattern = st.text(alphabet="abcxyz_*?", min_size=1, max_size=5).filter(lambda s: s.strip())
metric_names = st.lists(st.text(alphabet="abcxyz_@/ ", min_size=1, max_size=10), max_size=20)


@given(metric_names, st.lists(pattern, max_size=3), pattern)
def test_an_excluded_name_never_gets_through(names, includes, excluded):
    f = MetricFilter.of([*includes, f"!{excluded}"])
    single = MetricFilter.of([excluded])
    for name in names:
        if single.allows(name):
            assert not f.allows(name)


@given(metric_names)
def test_include_all_returns_everything(names):
    metrics = [Metric(n, 1.0, {"stderr": 0.1}) for n in names]
    assert MetricFilter().apply(metrics) == metrics


@given(metric_names, st.lists(pattern, max_size=3))
def test_filtered_flat_names_are_exactly_the_allowed_subset(names, patterns):
    f = MetricFilter.of(patterns)
    metrics = [Metric(n, float(i), {"stderr": 0.5}) for i, n in enumerate(dict.fromkeys(names))]
    before = {k for m in metrics for k in m.flat()}
    after = {k for m in f.apply(metrics) for k in m.flat()}
    assert after == {k for k in before if f.allows(k)}
