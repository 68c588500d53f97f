"""The W&B run id and resume decisions, and the sink's options (pure: no SDK, no server)."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from evalport.adapters.sinks.wandb import plan as planning
from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.adapters.sinks.wandb.plan import RunAction
from evalport.domain.identity import LogMode, RunIdentity
from evalport.domain.model import Metric, TaskResult
from evalport.domain.report import Status


def result(job_id: str = "abcd.0", task: str = "gsm8k", value: float = 0.5) -> TaskResult:
    invocation = job_id.split(".")[0]
    return TaskResult(job_id, invocation, task, "lm-eval", "meta/llama", "local", (Metric("em", value),))


OPTIONS = planning.fingerprint_options(WandbSinkConfig().model_dump(mode="json"))


def test_a_result_always_maps_to_the_run_id_of_its_identity():
    run_id, identity = planning.run_id_of(result(), LogMode.PER_TASK)
    assert run_id == RunIdentity.for_result(result()).run_id() == identity.run_id()
    assert planning.run_id_of(result(), LogMode.PER_TASK)[0] == run_id


def test_multi_task_puts_every_task_of_an_invocation_in_one_run_and_per_task_does_not():
    jobs = [(result("abcd.0", "gsm8k"), "f0"), (result("abcd.1", "mmlu"), "f1"), (result("ef01.0"), "f2")]
    multi = planning.group_runs(jobs, LogMode.MULTI_TASK)
    assert [[j.index for j in run.jobs] for run in multi] == [[0, 1], [2]]
    assert len(planning.group_runs(jobs, LogMode.PER_TASK)) == 3


def test_a_run_that_does_not_exist_is_new_and_its_jobs_are_exported():
    decision = planning.decide({"a.0": "f"}, {}, run_exists=False)
    assert (decision.action, decision.write, decision.written_status) == (
        RunAction.NEW,
        ("a.0",),
        Status.EXPORTED,
    )


def test_a_run_holding_every_job_as_it_is_is_left_alone():
    decision = planning.decide({"a.0": "f", "a.1": "g"}, {"a.0": "f", "a.1": "g"}, run_exists=True)
    assert decision.action is RunAction.UNCHANGED and decision.write == ()
    assert decision.unchanged == ("a.0", "a.1")


def test_an_existing_run_with_a_changed_or_added_job_is_resumed_and_only_those_are_written():
    decision = planning.decide({"a.0": "f", "a.1": "new", "a.2": "h"}, {"a.0": "f", "a.1": "old"}, True)
    assert decision.action is RunAction.RESUME and decision.written_status is Status.UPDATED
    assert (decision.write, decision.unchanged) == (("a.1", "a.2"), ("a.0",))


def test_saved_fingerprints_of_a_run_that_no_longer_exists_count_for_nothing():
    decision = planning.decide({"a.0": "f"}, {"a.0": "f"}, run_exists=False)
    assert decision.action is RunAction.NEW and decision.write == ("a.0",)


fingerprints = st.dictionaries(st.sampled_from(["a.0", "a.1", "b.0"]), st.sampled_from("fgh"), min_size=1)


@given(fingerprints, fingerprints, st.booleans())
def test_deciding_again_after_writing_a_decision_leaves_the_run_alone(wanted, held, exists):
    decision = planning.decide(wanted, held, exists)
    if decision.write:  # what the run holds once the decision is written
        held, exists = {**(held if exists else {}), **{j: wanted[j] for j in decision.write}}, True
    again = planning.decide(wanted, held, exists)
    assert again.action is RunAction.UNCHANGED and set(again.unchanged) == set(wanted)


def test_the_fingerprint_changes_with_a_metric_or_an_option_and_not_otherwise():
    base = planning.fingerprint(result(), [], OPTIONS)
    assert planning.fingerprint(result(), [], OPTIONS) == base
    assert planning.fingerprint(result(value=0.6), [], OPTIONS) != base
    tagged = planning.fingerprint_options(WandbSinkConfig(tags=["x"]).model_dump(mode="json"))
    assert planning.fingerprint(result(), [], tagged) != base
    assert planning.fingerprint(result(), [["artifacts/results.yml", 10, 1]], OPTIONS) != base


def test_fingerprints_keep_the_option_keys_they_were_first_saved_with():
    options = planning.fingerprint_options(WandbSinkConfig(run_name="{task}").model_dump(mode="json"))
    assert options["name"] == "{task}" and "run_name" not in options
    assert "retries" not in options, "how often to retry does not change what a run holds"


def test_the_run_name_template_is_filled_from_the_first_job_else_the_default_names():
    first = result("abcd.0", "gsm8k")
    assert planning.run_name("{model_id}:{task}", LogMode.PER_TASK, first) == "meta/llama:gsm8k"
    assert planning.run_name(None, LogMode.PER_TASK, first) == "eval-abcd-gsm8k"
    assert planning.run_name(None, LogMode.MULTI_TASK, first) == "eval-abcd"


def test_a_multi_task_run_config_keeps_the_tasks_it_held_and_adds_the_new_ones():
    identity = RunIdentity.for_result(result(), LogMode.MULTI_TASK)
    held = {"tasks": {"lm-eval.mmlu": {"job_id": "abcd.1"}}, "evalport": {"fingerprints": {"abcd.1": "x"}}}
    config = planning.run_config(
        [result()], identity, LogMode.MULTI_TASK, {"hf_token": "s"}, held, {"abcd.0": "y"}
    )
    assert set(config["tasks"]) == {"lm-eval.mmlu", "lm-eval.gsm8k"}
    assert config["evalport"]["fingerprints"] == {"abcd.1": "x", "abcd.0": "y"}
    assert config["hf_token"] == "***" and config["evalport"]["run_key"] == identity.key


# ---- options --------------------------------------------------------------------------------------


def test_tags_may_be_a_mapping_a_list_or_comma_separated():
    assert WandbSinkConfig(tags={"team": "llm", "nightly": ""}).tags == ["team:llm", "nightly"]
    assert WandbSinkConfig(tags=["a", "b"]).tags == WandbSinkConfig(tags="a, b").tags == ["a", "b"]
    with pytest.raises(ValidationError, match="at most 64"):
        WandbSinkConfig(tags={"k": "v" * 70})


@pytest.mark.parametrize(
    ("old", "new", "value"), [("name", "run_name", "{task}"), ("attempts", "retries", 2)]
)
def test_the_old_option_names_still_work_with_a_deprecation_warning(old, new, value):
    with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated; use '{new}'"):
        config = WandbSinkConfig.model_validate({old: value})
    assert getattr(config, new) == value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WandbSinkConfig.model_validate({new: value})


def test_retries_and_retry_wait_shape_the_retry_policy():
    policy = WandbSinkConfig(retries=4, retry_wait=0.1, init_timeout=2).retry_policy()
    assert (policy.attempts, policy.initial_wait) == (4, 0.1)
    assert policy.total_timeout >= 4 * 2


def test_an_unknown_run_name_placeholder_is_a_config_error():
    with pytest.raises(ValidationError, match=r"run_name .*unknown placeholder"):
        WandbSinkConfig(run_name="{nope}")


def test_the_exports_fingerprint_counts_with_the_metrics_kept_the_files_chosen_and_the_options():
    files = ["artifacts/results.yml"]
    base = planning.with_options("fp", result(), files, OPTIONS)
    assert planning.with_options("fp", result(), files, OPTIONS) == base
    assert planning.with_options("fp2", result(), files, OPTIONS) != base
    assert planning.with_options("fp", result(value=0.7), files, OPTIONS) != base, "log_metrics kept others"
    assert planning.with_options("fp", result(), [*files, "logs/a.log"], OPTIONS) != base
    retagged = planning.fingerprint_options(WandbSinkConfig(tags=["x"]).model_dump(mode="json"))
    assert planning.with_options("fp", result(), files, retagged) != base
