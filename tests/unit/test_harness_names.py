"""The flat names of other harnesses' metrics, their stable ids, and detection's error."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalport.adapters.formats.detect import detect, reader
from evalport.adapters.formats.harness_files import stable_id
from evalport.adapters.formats.lm_eval import metric_name, task_metrics
from evalport.adapters.formats.nemo_engine import score_metrics
from evalport.domain.errors import MetricConflictError, UsageError

metrics = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
    lambda m: not m.endswith("_stderr")
)
filters = st.text(string.ascii_lowercase + "-_", min_size=1, max_size=16)


def test_the_none_filter_adds_nothing_and_another_filter_is_appended():
    assert metric_name("gsm8k", "exact_match,none") == ("gsm8k_exact_match", None)
    assert metric_name("gsm8k", "exact_match,strict-match") == ("gsm8k_exact_match_strict-match", None)
    assert metric_name("gsm8k", "exact_match_stderr,flexible-extract") == (
        "gsm8k_exact_match_flexible-extract",
        "stderr",
    )
    assert metric_name("gsm8k", "alias") is None


def test_strict_match_and_flexible_extract_stay_two_metrics_with_their_own_stderr():
    entry = {
        "exact_match,strict-match": 0.25,
        "exact_match_stderr,strict-match": 0.1,
        "exact_match,flexible-extract": 0.75,
        "exact_match_stderr,flexible-extract": "N/A",
        "alias": "gsm8k",
    }
    got, notes = task_metrics("gsm8k", entry)
    flat = {k: v for m in got for k, v in m.flat().items()}
    assert flat == {
        "gsm8k_exact_match_strict-match": 0.25,
        "gsm8k_exact_match_strict-match_stderr": 0.1,
        "gsm8k_exact_match_flexible-extract": 0.75,
    }
    assert notes == []


@given(metrics, filters, filters)
def test_two_filters_of_one_metric_never_share_a_name(metric, first, second):
    if first == second:
        return
    assert metric_name("t", f"{metric},{first}") != metric_name("t", f"{metric},{second}")


@given(metrics, filters)
def test_a_filtered_metric_never_takes_the_unfiltered_name_and_its_stderr_follows_it(metric, filter_name):
    if filter_name == "none":
        return
    filtered = metric_name("t", f"{metric},{filter_name}")
    assert filtered != metric_name("t", f"{metric},none")
    assert metric_name("t", f"{metric}_stderr,{filter_name}") == (filtered[0], "stderr")  # type: ignore[index]


@given(st.dictionaries(st.tuples(metrics, filters), st.floats(0, 1), max_size=8))
def test_keys_that_flatten_alike_are_never_merged_silently(values):
    entry = {f"{m},{f}": v for (m, f), v in values.items()}
    by_name: dict[str, set[float]] = {}
    for key, value in entry.items():
        parsed = metric_name("t", key)
        assert parsed is not None
        by_name.setdefault(parsed[0], set()).add(value)
    if any(len(v) > 1 for v in by_name.values()):
        with pytest.raises(MetricConflictError):
            task_metrics("t", entry)
    else:
        got, _ = task_metrics("t", entry)
        assert {m.name for m in got} == set(by_name)


def test_a_non_numeric_lm_eval_value_is_skipped_with_a_note():
    got, notes = task_metrics("t", {"acc,none": "oops", "f1,none": 0.5})
    assert [m.name for m in got] == ["t_f1"]
    assert "results.t['acc,none']" in notes[0]


def test_engine_scores_keep_confidence_bounds_as_statistics_and_rename_extra_scorers():
    got = score_metrics(
        "qa",
        {
            "pass@1": {"value": 0.5, "ci_lower": 0.4, "ci_upper": 0.6},
            "scorer:fuzzy": {"value": 0.7, "correct": 7, "total": 10},
            "runtime": {"elapsed_seconds": 3.0},
        },
    )
    assert {k: v for m in got for k, v in m.flat().items()} == {
        "qa_pass@1": 0.5,
        "qa_pass@1_ci_lower": 0.4,
        "qa_pass@1_ci_upper": 0.6,
        "qa_scorer_fuzzy": 0.7,
        "qa_scorer_fuzzy_correct": 7.0,
        "qa_scorer_fuzzy_total": 10.0,
    }


def test_a_stable_id_depends_only_on_its_parts():
    assert stable_id("lm_eval", "results_x.json", 1.5) == stable_id("lm_eval", "results_x.json", 1.5)
    assert stable_id("a", "bc") != stable_id("ab", "c")
    assert len(stable_id("x")) == 16


def test_a_folder_no_reader_recognises_is_an_error_naming_what_each_looked_for(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UsageError) as caught:
        detect(tmp_path)
    text = str(caught.value)
    for wanted in ("artifacts/results.yml", "results_<timestamp>.json", ".eval", "eval-*.json", "--reader"):
        assert wanted in text


def test_a_launcher_job_directory_is_detected_first(tmp_path: Path):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "results.yml").write_text("results: {}\n")
    (tmp_path / "results_2026-01-01T00-00-00.json").write_text("{}")
    assert detect(tmp_path) == "nemo_evaluator"


def test_an_unknown_reader_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="lm_eval, inspect, nemo_engine"):
        reader("helm")
