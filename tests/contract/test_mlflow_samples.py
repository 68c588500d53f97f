"""The MLflow sink's samples: as a table the UI shows (``samples: table``) and as traces with the
scores as assessments (``samples: traces``), against a real ``mlflow server`` and a sqlite store.

The shared sample behaviours run for ``table`` in test_mlflow_sink.py (every MLflow contract
class); here they run again for ``traces``, with what is MLflow's own beside them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from evalport.adapters.formats.detect import reader
from evalport.adapters.sinks.mlflow import MlflowSink
from evalport.adapters.sinks.mlflow.samples import LOGGED_ARTIFACTS_TAG, table_file
from evalport.app.service import prepare_item
from evalport.domain.report import Status
from evalport.testing.sink_contract import planted_samples
from tests.contract.test_mlflow_sink import MlflowContract
from tests.support.mlflow_samples import job_runs, job_traces, read_table_samples, read_trace_samples
from tests.support.mlflow_server import FAST_RETRIES

pytest_plugins = ["tests.support.mlflow_fixtures"]

LM_EVAL_RUN = Path(__file__).parents[1] / "data" / "harnesses" / "lm_eval" / "run-suite"


def only_sample_behaviours(cls: type) -> type:
    """The class without the other behaviours it inherits (test_mlflow_sink.py runs those)."""
    for name in dir(cls):
        if name.startswith("test_") and "sample" not in name:
            setattr(cls, name, None)
    return cls


def lm_eval_results() -> list:
    """The real lm-evaluation-harness example: the jobs that keep per-sample records."""
    results = reader("lm_eval").read(LM_EVAL_RUN)
    with_samples = [(r, LM_EVAL_RUN) for r in results if r.samples is not None]
    assert with_samples, "the example has jobs with samples"
    return with_samples


def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


# ---- the contract's sample behaviours with samples: traces ---------------------------------------
@only_sample_behaviours
class TestMlflowTracesOnSqlite(MlflowContract):
    sample_mode = "traces"

    @pytest.fixture
    def tracking_uri(self, mlflow_sqlite_uri) -> str:
        return mlflow_sqlite_uri


@only_sample_behaviours
class TestMlflowTracesOnServer(MlflowContract):
    sample_mode = "traces"

    @pytest.fixture
    def tracking_uri(self, live_mlflow_server) -> str:
        return live_mlflow_server.url


# ---- what is MLflow's own ------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "server"])
def tracking_uri(request) -> str:
    if request.param == "server":
        return request.getfixturevalue("live_mlflow_server").url
    return request.getfixturevalue("mlflow_sqlite_uri")


@pytest.fixture
def make_sink(tracking_uri, experiment_name):
    return lambda **options: MlflowSink(
        {"tracking_uri": tracking_uri, "experiment_name": experiment_name, **FAST_RETRIES, **options}
    )


def export(sink: MlflowSink, pairs) -> list:
    return sink.export([prepare_item(result, directory, sink) for result, directory in pairs])


def test_the_real_lm_eval_samples_arrive_as_a_table_mlflow_itself_loads(make_sink, tracking_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # load_table searches the process-wide store
    pairs = lm_eval_results()
    sink = make_sink(samples="table")
    outcomes = export(sink, pairs)
    assert {o.status for o in outcomes} == {Status.EXPORTED}, outcomes
    client = client_for(tracking_uri)
    experiment_id = client.get_experiment_by_name(sink.config.experiment_name).experiment_id
    for result, _ in pairs:
        samples = list(result.samples())
        (run,) = job_runs(client, sink, result)
        listed = json.loads(run.data.tags[LOGGED_ARTIFACTS_TAG])
        assert {"path": table_file(result), "type": "table"} in listed
        # MLflow's own reader (what its UI and mlflow.load_table use) finds the table by that tag.
        frame = client.load_table(experiment_id, table_file(result), run_ids=[run.info.run_id])
        # pandas reads ids that look like numbers as numbers
        ids = frame["sample_id"].map(str)
        assert sorted(ids) == sorted(s.id for s in samples)
        for sample in samples:
            row = frame[ids == sample.id].iloc[0]
            for name, value in sample.scores.items():
                assert row[name] == pytest.approx(value), (sample.id, name)
            assert row["input"] == sample.input and row["model"] == result.model_id


def test_a_re_export_of_the_same_samples_writes_nothing_and_a_changed_one_replaces_the_file(
    make_sink, tracking_uri
):
    pairs = lm_eval_results()[:1]
    result, directory = pairs[0]
    sink = make_sink(samples="table")
    assert export(sink, pairs)[0].status is Status.EXPORTED
    assert export(sink, pairs)[0].status is Status.UNCHANGED, "the run's samples digest matches"
    fewer = replace(result, samples=planted_samples(2, long_output=10))
    assert export(sink, [(fewer, directory)])[0].status is Status.UPDATED
    client = client_for(tracking_uri)
    (run,) = job_runs(client, sink, result)
    files = [f.path for f in client.list_artifacts(run.info.run_id, "samples")]
    assert files == [table_file(result)], "one table file per job, replaced in place"
    listed = json.loads(run.data.tags[LOGGED_ARTIFACTS_TAG])
    assert listed.count({"path": table_file(result), "type": "table"}) == 1
    assert sorted(s.sample_id for s in read_table_samples(tracking_uri, sink, result)) == ["s0", "s1"]


def test_traces_are_linked_to_the_run_with_scores_as_feedback_and_the_target_as_expectation(
    make_sink, tracking_uri
):
    pairs = lm_eval_results()
    sink = make_sink(samples="traces")
    assert {o.status for o in export(sink, pairs)} == {Status.EXPORTED}
    client = client_for(tracking_uri)
    for result, _ in pairs:
        (run,) = job_runs(client, sink, result)
        on_run = client.search_traces(
            locations=[run.info.experiment_id], run_id=run.info.run_id, max_results=500
        )
        expected = {s.id: s for s in result.samples()}
        assert len(on_run) == len(expected)
        for trace in on_run:
            sample = expected[trace.info.tags["evalport.sample_id"]]
            feedback = {a.name: a.value for a in trace.info.assessments if a.feedback is not None}
            assert feedback == pytest.approx(dict(sample.scores))
            targets = [a.value for a in trace.info.assessments if a.expectation is not None]
            assert targets == [sample.target if isinstance(sample.target, str) else json.dumps(sample.target)]
            assert trace.data.spans[0].inputs["input"] == sample.input
            assert trace.info.request_preview == sample.input[:1000]


def test_a_re_export_in_traces_mode_replaces_only_that_jobs_traces(make_sink, tracking_uri):
    pairs = lm_eval_results()
    sink = make_sink(samples="traces")
    export(sink, pairs)
    first, directory = pairs[0]
    before_other = {t.info.trace_id for t in job_traces(tracking_uri, sink, pairs[1][0].job_id)}
    fewer = replace(first, samples=planted_samples(2, long_output=10))
    assert export(sink, [(fewer, directory)])[0].status is Status.UPDATED
    assert sorted(s.sample_id for s in read_trace_samples(tracking_uri, sink, first)) == ["s0", "s1"]
    after_other = {t.info.trace_id for t in job_traces(tracking_uri, sink, pairs[1][0].job_id)}
    assert after_other == before_other, "another job's traces are left alone"


def test_each_task_of_a_multi_task_run_keeps_its_own_table(make_sink, tracking_uri):
    pairs = lm_eval_results()
    sink = make_sink(samples="table", log_mode="multi_task")
    assert {o.status for o in export(sink, pairs)} == {Status.EXPORTED}
    client = client_for(tracking_uri)
    runs = {r.info.run_id for result, _ in pairs for r in job_runs(client, sink, result)}
    assert len(runs) == 1, "one run for the invocation"
    for result, _ in pairs:
        stored = read_table_samples(tracking_uri, sink, result)
        assert sorted(s.sample_id for s in stored) == sorted(s.id for s in result.samples())


def broken_copy(tmp_path: Path) -> list:
    """The lm-eval example with a line of one job's samples file that is not JSON."""
    import shutil

    folder = tmp_path / "run-suite"
    shutil.copytree(LM_EVAL_RUN, folder)
    victim = sorted(folder.glob("samples_tiny_gen_*.jsonl"))[0]
    victim.write_text(victim.read_text("utf-8") + "{not json\n", "utf-8")
    return [(r, folder) for r in reader("lm_eval").read(folder) if r.samples is not None]


@pytest.mark.parametrize("mode", ["table", "traces"])
def test_a_broken_samples_file_fails_only_its_job_naming_the_file_and_line(
    make_sink, tracking_uri, tmp_path, mode
):
    pairs = broken_copy(tmp_path)
    outcomes = {o.job_id: o for o in export(make_sink(samples=mode), pairs)}
    broken = next(r for r, _ in pairs if r.task == "tiny_gen")
    failed = outcomes.pop(broken.job_id)
    assert failed.status is Status.FAILED, failed
    assert "samples_tiny_gen_" in failed.reason and "line" in failed.reason, failed.reason
    assert {o.status for o in outcomes.values()} == {Status.EXPORTED}, outcomes
