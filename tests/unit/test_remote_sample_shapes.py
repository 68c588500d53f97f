"""The shapes the MLflow and W&B sinks give a job's samples: file and key names, columns, the
MLflow tag that lists table artifacts, and the W&B row cap (pure functions, no SDK)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from evalport.adapters.sinks.mlflow import samples as mlflow_samples
from evalport.adapters.sinks.wandb import samples as wandb_samples
from evalport.domain.filters import MetricFilter
from evalport.domain.sample_rows import SampleOptions
from evalport.testing.factory import write_launcher_home
from evalport.testing.sink_contract import _load as load_results
from evalport.testing.sink_contract import planted_samples


@pytest.fixture
def result(tmp_path: Path):
    home = write_launcher_home(tmp_path / "home", invocations=1, tasks_per_invocation=1, seed=1)
    return replace(load_results(home)[0][0], samples=planted_samples(5, long_output=10))


def test_the_table_file_is_one_plain_name_per_job_under_samples(result):
    odd = replace(result, harness="h/x", task="..\\t")
    assert mlflow_samples.table_file(result) == f"samples/{result.harness}.{result.task}.json"
    path = mlflow_samples.table_file(odd)
    assert path.count("/") == 1 and "\\" not in path and "/.." not in path, path


def test_a_score_named_like_a_fixed_column_gets_its_own_column():
    assert mlflow_samples.score_column("acc") == "acc"
    assert mlflow_samples.score_column("input") == "score.input"
    assert wandb_samples.score_column("truncated") == "score.truncated"


def test_the_logged_artifacts_tag_keeps_other_entries_and_names_the_table_once():
    other = json.dumps([{"path": "eval.json", "type": "table"}])
    listed = mlflow_samples.logged_artifacts(other, "samples/h.tâche.json")
    assert json.loads(listed) == [
        {"path": "eval.json", "type": "table"},
        {"path": "samples/h.tâche.json", "type": "table"},
    ]
    assert "tâche" in listed, "kept as it is, for load_table's LIKE"
    assert mlflow_samples.logged_artifacts(listed, "samples/h.tâche.json") is None
    assert json.loads(mlflow_samples.logged_artifacts("{not json", "a.json")) == [
        {"path": "a.json", "type": "table"}
    ]


def test_the_spool_gives_the_rows_back_and_its_digest_follows_rows_and_options(result, tmp_path):
    options = SampleOptions("table", None, 100)
    first = mlflow_samples.spool(result, options, MetricFilter(), tmp_path / "a")
    assert first is not None and first.rows == 5 and first.score_names == ["acc", "exact_match"]
    assert [r.sample_id for r in first.read()] == ["s0", "s1", "s2", "s3", "s4"]
    again = mlflow_samples.spool(result, options, MetricFilter(), tmp_path / "b")
    assert again is not None and again.digest == first.digest
    fewer = mlflow_samples.spool(
        replace(result, samples=planted_samples(4)), options, MetricFilter(), tmp_path / "c"
    )
    assert fewer is not None and fewer.digest != first.digest
    traces = mlflow_samples.spool(result, replace(options, mode="traces"), MetricFilter(), tmp_path / "d")
    assert traces is not None and traces.digest != first.digest
    assert (
        mlflow_samples.spool(replace(result, samples=None), options, MetricFilter(), tmp_path / "e") is None
    )


def test_the_table_file_is_the_split_json_log_table_writes_with_nan_as_null(result, tmp_path):
    scores = {"acc": float("nan"), "input": 1.0}
    from evalport.domain.samples import Sample

    one = replace(result, samples=lambda: iter([Sample("a", "q", "t", "o", scores)]))
    rows = mlflow_samples.spool(one, SampleOptions("table"), MetricFilter(), tmp_path / "s")
    assert rows is not None
    table = json.loads(mlflow_samples.write_table(rows, tmp_path / "t.json").read_text("utf-8"))
    assert table["columns"] == [
        *mlflow_samples.LEADING_COLUMNS,
        "acc",
        "score.input",
        "metadata",
        "truncated",
    ]
    assert table["data"] == [["a", result.model_id, result.task, "q", "t", "o", None, 1.0, "", False]]


def test_a_wandb_table_is_capped_at_what_run_log_keeps():
    assert wandb_samples.capped(SampleOptions("table")).max_samples == wandb_samples.MAX_TABLE_ROWS
    assert wandb_samples.capped(SampleOptions("table", 50_000)).max_samples == wandb_samples.MAX_TABLE_ROWS
    assert wandb_samples.capped(SampleOptions("table", 7)).max_samples == 7


def test_the_wandb_samples_digest_is_empty_without_samples_and_follows_the_rows(result):
    on = SampleOptions("table")
    assert wandb_samples.samples_digest(result, SampleOptions(), MetricFilter()) == ""
    assert wandb_samples.samples_digest(replace(result, samples=None), on, MetricFilter()) == ""
    digest = wandb_samples.samples_digest(result, on, MetricFilter())
    assert digest and digest == wandb_samples.samples_digest(result, on, MetricFilter())
    assert digest != wandb_samples.samples_digest(result, on, MetricFilter(("!exact_match",)))
