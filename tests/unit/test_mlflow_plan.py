"""What an export writes into an MLflow run, decided without a server (evalport's MLflow planner)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from evalport.adapters.sinks.mlflow.plan import (
    FLOAT_MAX,
    RunDelta,
    RunState,
    WantedRun,
    holds_job,
    outcome_status,
    plan_run_delta,
    same_value,
)
from evalport.domain.report import Status

DIGEST_TAG = "evalport.artifacts_digest"


def new_run(**held) -> RunState:
    return RunState("r1", "file:///a", False, **held)


def wanted(digest: str | None = "d1", **parts) -> WantedRun:
    return WantedRun(
        parts.get("metrics", {"t_acc": 0.5}),
        parts.get("params", {"model_id": "m"}),
        parts.get("tags", {"evalport.run_key": "inv/h/t", "team": "a"}),
        DIGEST_TAG,
        digest,
    )


def test_a_new_run_gets_every_metric_param_and_tag_its_files_and_is_finished():
    delta = plan_run_delta(new_run(), wanted())
    assert dict(delta.metrics) == {"t_acc": 0.5}
    assert dict(delta.params) == {"model_id": "m"}
    assert dict(delta.tags) == {"evalport.run_key": "inv/h/t", "team": "a", DIGEST_TAG: "d1"}
    assert delta.upload and delta.finish and not delta.kept


def test_a_finished_run_that_holds_everything_needs_nothing():
    run = new_run().applied(plan_run_delta(new_run(), wanted()))
    delta = plan_run_delta(run, wanted())
    assert delta == RunDelta() and not delta.writes
    assert outcome_status(True, delta) is Status.UNCHANGED


def test_only_the_metric_that_changed_is_logged_again():
    run = new_run().applied(plan_run_delta(new_run(), wanted(metrics={"a": 1.0, "b": 2.0})))
    delta = plan_run_delta(run, wanted(metrics={"a": 1.0, "b": 3.0}))
    assert dict(delta.metrics) == {"b": 3.0} and not delta.upload and not delta.finish
    assert outcome_status(True, delta) is Status.UPDATED


def test_a_param_whose_value_changed_is_kept_and_named_in_the_note():
    run = new_run().applied(plan_run_delta(new_run(), wanted(params={"suite": "v1", "model_id": "m"})))
    delta = plan_run_delta(run, wanted(params={"suite": "v2", "model_id": "m", "new": "x"}))
    assert dict(delta.params) == {"new": "x"}, "only params not logged yet are sent"
    assert dict(delta.kept) == {"suite": ("v1", "v2")}
    assert "1 param(s) keep their logged value" in delta.note() and "'v1' -> 'v2'" in delta.note()


def test_the_note_shows_three_kept_params_and_says_there_are_more():
    old = {f"p{i}": "a" for i in range(5)}
    run = RunState("r", "u", True, params=old)
    note = plan_run_delta(run, wanted(params={k: "b" for k in old})).note()
    assert note.count("->") == 3 and note.endswith("; ...)") and "5 param(s)" in note


def test_an_unfinished_run_gets_its_files_again_although_their_digest_is_stored():
    run = new_run(tags={DIGEST_TAG: "d1"})
    delta = plan_run_delta(run, wanted(digest="d1"))
    assert delta.upload and delta.finish and DIGEST_TAG not in delta.tags


def test_changed_files_are_uploaded_and_their_new_digest_tagged():
    run = RunState("r", "u", True, tags={DIGEST_TAG: "old"})
    delta = plan_run_delta(run, wanted(digest="new", tags={}, metrics={}, params={}))
    assert delta.upload and dict(delta.tags) == {DIGEST_TAG: "new"} and not delta.finish


def test_a_job_without_files_uploads_nothing_and_leaves_the_stored_digest():
    run = RunState("r", "u", True, tags={DIGEST_TAG: "old"})
    delta = plan_run_delta(run, wanted(digest=None, tags={}, metrics={}, params={}))
    assert not delta.upload and not delta.tags


def test_nan_equals_nan_and_infinity_equals_the_value_mlflow_stores_for_it():
    assert same_value(math.nan, math.nan) and not same_value(0.0, math.nan)
    assert same_value(FLOAT_MAX, math.inf) and same_value(-FLOAT_MAX, -math.inf)
    assert not same_value(FLOAT_MAX, -math.inf) and not same_value(None, 1.0)


def test_a_new_run_is_created_with_the_digest_among_its_first_tags():
    tags = wanted(tags={f"t{i}": "v" for i in range(150)}).creation_tags(100)
    assert len(tags) == 100 and "t0" in tags and DIGEST_TAG not in tags, "the limit holds"
    assert wanted().creation_tags(100)[DIGEST_TAG] == "d1"


def test_a_multi_task_run_holds_a_job_only_once_its_task_is_tagged():
    run = RunState("r", "u", True, tags={"evalport.job.mmlu": "inv.0"})
    assert holds_job(run, "evalport.job.mmlu", True) and not holds_job(run, "evalport.job.gsm8k", True)
    assert holds_job(run, "evalport.job.gsm8k", False) and not holds_job(None, "evalport.job.mmlu", False)
    assert outcome_status(False, RunDelta()) is Status.EXPORTED


keys = st.text(alphabet="abcdefgh_./", min_size=1, max_size=6)
values = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([FLOAT_MAX, -FLOAT_MAX, 0.0])
texts = st.text(max_size=4)
runs = st.builds(
    RunState,
    run_id=st.just("r"),
    artifact_uri=st.just("u"),
    finished=st.booleans(),
    metrics=st.dictionaries(keys, values, max_size=5),
    params=st.dictionaries(keys, texts, max_size=5),
    tags=st.dictionaries(keys | st.just(DIGEST_TAG), texts, max_size=5),
)
wants = st.builds(
    WantedRun,
    metrics=st.dictionaries(keys, values, max_size=5),
    params=st.dictionaries(keys, texts, max_size=5),
    tags=st.dictionaries(keys | st.just(DIGEST_TAG), texts, max_size=5),
    digest_tag=st.just(DIGEST_TAG),
    digest=st.none() | texts,
)


@given(runs, wants)
def test_planning_again_after_applying_a_plan_gives_an_empty_plan(existing, want):
    after = existing.applied(plan_run_delta(existing, want))
    again = plan_run_delta(after, want)
    assert not again.writes, again
    assert dict(again.kept) == dict(plan_run_delta(existing, want).kept), "kept params stay kept, unchanged"
