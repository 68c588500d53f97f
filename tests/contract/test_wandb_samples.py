"""The W&B sink's samples (``samples: table``): one ``wandb.Table`` per job, replaced on re-export,
read back from the offline ``.wandb`` files and the table files the real SDK wrote.

The shared sample behaviours run in test_wandb_sink.py; these are W&B's own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from evalport.adapters.formats.detect import reader
from evalport.adapters.sinks.wandb.samples import MAX_TABLE_ROWS, table_key
from evalport.adapters.sinks.wandb_sink import WandbSink
from evalport.app.service import prepare_item
from evalport.domain.report import Status
from evalport.testing.sink_contract import planted_samples
from tests.contract.test_wandb_sink import wandb_env  # noqa: F401 - the autouse offline environment
from tests.support.wandb_records import find_run_files, load_run, merge_runs
from tests.support.wandb_samples import read_table_samples

LM_EVAL_RUN = Path(__file__).parents[1] / "data" / "harnesses" / "lm_eval" / "run-suite"


@pytest.fixture
def pairs() -> list:
    results = [r for r in reader("lm_eval").read(LM_EVAL_RUN) if r.samples is not None]
    assert len(results) >= 2, "the example has several jobs with samples"
    return [(r, LM_EVAL_RUN) for r in results]


@pytest.fixture
def make_sink(tmp_path: Path):
    return lambda **options: WandbSink({"dir": tmp_path / "wandb-root", **options})


def export(sink: WandbSink, pairs) -> list:
    return sink.export([prepare_item(result, directory, sink) for result, directory in pairs])


def folders(sink: WandbSink) -> int:
    return len(find_run_files(sink.root))


def test_the_real_lm_eval_samples_arrive_as_one_table_per_job(make_sink, pairs):
    sink = make_sink(samples="table")
    assert {o.status for o in export(sink, pairs)} == {Status.EXPORTED}
    for result, _ in pairs:
        stored = {s.sample_id: s for s in read_table_samples(sink, result)}
        samples = list(result.samples())
        assert sorted(stored) == sorted(s.id for s in samples)
        for sample in samples:
            assert stored[sample.id].scores == pytest.approx(dict(sample.scores)), sample.id
            assert sample.input in stored[sample.id].text
        (path,) = [
            p for p in find_run_files(sink.root) if any(table_key(result) in k for k in load_run(p).summary)
        ]
        tables = [a for a in load_run(path).artifacts if a["type"] == "run_table"]
        assert len(tables) == 1, "the table goes up as the run's run_table artifact"


def test_an_unchanged_re_export_writes_nothing_and_changed_samples_replace_the_table(make_sink, pairs):
    sink = make_sink(samples="table")
    result, directory = pairs[0]
    export(sink, [pairs[0]])
    before = folders(sink)
    assert export(sink, [pairs[0]])[0].status is Status.UNCHANGED
    assert folders(sink) == before, "no run was opened"
    fewer = replace(result, samples=planted_samples(2, long_output=10))
    assert export(sink, [(fewer, directory)])[0].status is Status.UPDATED
    assert sorted(s.sample_id for s in read_table_samples(sink, result)) == ["s0", "s1"]
    merged = merge_runs([load_run(p) for p in find_run_files(sink.root)])
    assert [k for k in merged.summary if k.startswith("samples/")] == [table_key(result)]
    versions = {a["name"] for a in merged.artifacts if a["type"] == "run_table"}
    assert len(versions) == 1, "the same table artifact, a new version of it"


def test_turning_samples_on_writes_the_tables_of_jobs_exported_before_without_them(make_sink, pairs):
    export(make_sink(), pairs)
    sink = make_sink(samples="table")
    assert {o.status for o in export(sink, pairs)} == {Status.UPDATED}
    for result, _ in pairs:
        assert len(read_table_samples(sink, result)) == len(list(result.samples()))


def test_each_task_of_a_multi_task_run_has_its_own_table(make_sink, pairs):
    sink = make_sink(samples="table", log_mode="multi_task")
    assert {o.status for o in export(sink, pairs)} == {Status.EXPORTED}
    assert len({load_run(p).run_id for p in find_run_files(sink.root)}) == 1
    for result, _ in pairs:
        assert sorted(s.sample_id for s in read_table_samples(sink, result)) == sorted(
            s.id for s in result.samples()
        )


def test_a_table_keeps_at_most_what_wandb_logs_and_the_outcome_says_so(make_sink, pairs):
    result, directory = pairs[0]
    many = replace(result, samples=planted_samples(MAX_TABLE_ROWS + 3, long_output=10))
    sink = make_sink(samples="table")
    outcome = export(sink, [(many, directory)])[0]
    assert outcome.status is Status.EXPORTED, outcome
    assert f"at most {MAX_TABLE_ROWS:,} rows" in outcome.reason and "max_samples" in outcome.reason
    assert len(read_table_samples(sink, many)) == MAX_TABLE_ROWS


def test_a_broken_samples_file_fails_only_its_job_naming_the_file_and_line(make_sink, tmp_path):
    from tests.contract.test_mlflow_samples import broken_copy

    pairs = broken_copy(tmp_path)
    outcomes = {o.job_id: o for o in export(make_sink(samples="table"), pairs)}
    broken = next(r for r, _ in pairs if r.task == "tiny_gen")
    failed = outcomes.pop(broken.job_id)
    assert failed.status is Status.FAILED, failed
    assert "samples_tiny_gen_" in failed.reason and "line" in failed.reason, failed.reason
    assert {o.status for o in outcomes.values()} == {Status.EXPORTED}, outcomes
