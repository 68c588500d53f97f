"""The local sink's sample store, read back with DuckDB (and pandas), on real lm-eval samples.

The contract's sample behaviours run in test_local_sink.py (its ``read_samples`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalport.adapters.formats.detect import reader
from evalport.adapters.sinks.local import LocalSink
from evalport.app.service import prepare_item
from evalport.domain.report import Status
from tests.support.sample_store import query

duckdb = pytest.importorskip("duckdb")

LM_EVAL = Path(__file__).parents[1] / "data" / "harnesses" / "lm_eval" / "run-suite"


@pytest.fixture
def lm_eval_items(tmp_path):
    results = reader("lm_eval").read(LM_EVAL)
    sink = LocalSink({"output_dir": tmp_path / "out"})
    return sink, [prepare_item(r, LM_EVAL, sink) for r in results]


def test_duckdb_reads_real_lm_eval_samples_by_model_and_task(lm_eval_items, tmp_path):
    sink, items = lm_eval_items
    outcomes = sink.export(items)
    assert {o.status for o in outcomes} == {Status.EXPORTED}, outcomes
    rows = query(
        tmp_path / "out",
        "SELECT model, task, count(*), sum(score) FROM samples GROUP BY ALL ORDER BY task",
    )
    assert rows == [
        ("acme/dummy-7b", "tiny_gen", 6, 2.0),
        ("acme/dummy-7b", "tiny_mc", 3, 2.0),
        ("acme/dummy-7b", "tâche_ünï", 3, 0.0),
    ]
    (first,) = query(
        tmp_path / "out",
        "SELECT input, target, output, scores['exact_match'] FROM samples "
        "WHERE task = 'tiny_gen' AND sample_id = '1,strict-match'",
    )
    assert first == ("Question: What is 2+2?\nAnswer:", "4", '["lol"]', 0.0)


def test_the_store_is_partitioned_one_file_per_job(lm_eval_items, tmp_path):
    sink, items = lm_eval_items
    sink.export(items)
    files = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.parquet")}
    by_task = {i.result.task: i.result.job_id for i in items}
    assert files == {
        f"samples/model=acme%2Fdummy-7b/task=tiny_gen/{by_task['tiny_gen']}.parquet",
        f"samples/model=acme%2Fdummy-7b/task=tiny_mc/{by_task['tiny_mc']}.parquet",
        f"samples/model=acme%2Fdummy-7b/task=t%C3%A2che_%C3%BCn%C3%AF/{by_task['tâche_ünï']}.parquet",
    }
    assert not list((tmp_path / "out").rglob("*.tmp")), "a temp file was left behind"


def test_a_re_export_leaves_each_sample_once(lm_eval_items, tmp_path):
    sink, items = lm_eval_items
    sink.export(items)
    LocalSink({"output_dir": tmp_path / "out"}).export(items)
    assert query(tmp_path / "out", "SELECT count(*), count(DISTINCT (job_id, sample_id)) FROM samples") == [
        (12, 12)
    ]


def test_pandas_reads_the_dataset_with_its_partitions(lm_eval_items, tmp_path):
    pandas = pytest.importorskip("pandas")
    sink, items = lm_eval_items
    sink.export(items)
    frame = pandas.read_parquet(tmp_path / "out" / "samples")
    assert set(frame["model"].astype(str)) == {"acme/dummy-7b"}
    assert len(frame) == 12


def test_samples_none_writes_no_store(tmp_path):
    results = reader("lm_eval").read(LM_EVAL)
    sink = LocalSink({"output_dir": tmp_path / "out", "samples": "none"})
    sink.export([prepare_item(r, LM_EVAL, sink) for r in results])
    assert not (tmp_path / "out" / "samples").exists()


def test_a_broken_samples_file_fails_only_its_job_naming_the_file_and_line(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for p in LM_EVAL.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    broken = next(folder.glob("samples_tiny_mc_*.jsonl"))
    broken.write_text(broken.read_text() + "{not json\n")
    results = reader("lm_eval").read(folder)
    sink = LocalSink({"output_dir": tmp_path / "out"})
    outcomes = {o.job_id: o for o in sink.export([prepare_item(r, folder, sink) for r in results])}
    by_task = {r.task: r.job_id for r in results}
    bad = outcomes[by_task["tiny_mc"]]
    assert bad.status is Status.FAILED
    assert broken.name in bad.reason and "line 4" in bad.reason, bad.reason
    assert outcomes[by_task["tiny_gen"]].status is Status.EXPORTED
