"""Which existing run a job goes into (pure: no MLflow server): evalport's own by its run key, else
the one nemo-evaluator-launcher made for the job (tag ``job_id``), oldest first when several match."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from evalport.adapters.sinks.mlflow.contents import RUN_KEY_TAG
from evalport.adapters.sinks.mlflow.names import launcher_metric_key
from evalport.adapters.sinks.mlflow.plan import FoundRun, RunState, WantedRun, choose_run, plan_run_delta

KEY = "inv1/simple_evals/mmlu"
JOB = "inv1.0"


def ours(run_id: str, start: int = 1) -> FoundRun:
    return FoundRun(run_id, start, {RUN_KEY_TAG: KEY, "job_id": JOB})


def launchers(run_id: str, start: int = 1, job: str = JOB) -> FoundRun:
    return FoundRun(run_id, start, {"job_id": job, "invocation_id": "inv1", "task_name": "mmlu"})


def choose(*runs: FoundRun, job_id: str | None = JOB):
    return choose_run(list(runs), key_tag=RUN_KEY_TAG, stored_key=KEY, job_id=job_id)


def test_no_run_means_a_new_one():
    assert choose() is None


def test_evalports_own_run_is_found_by_its_key_and_nothing_is_said():
    choice = choose(ours("a"))
    assert choice is not None and choice.run_id == "a" and not choice.adopted and choice.reason == ""


def test_a_launcher_run_of_the_job_is_adopted_and_the_outcome_says_so():
    choice = choose(launchers("L"))
    assert choice is not None and choice.run_id == "L" and choice.adopted
    assert "adopted run L" in choice.reason and "job_id=inv1.0" in choice.reason


def test_a_run_with_the_run_key_wins_over_a_launcher_run_of_the_same_job():
    choice = choose(launchers("L", start=0), ours("E", start=5))
    assert choice is not None and choice.run_id == "E" and not choice.adopted


def test_a_launcher_run_of_another_job_is_not_adopted():
    assert choose(launchers("L", job="inv1.1")) is None


def test_a_run_evalport_made_for_another_key_is_never_adopted_by_job_id():
    other = FoundRun("X", 1, {RUN_KEY_TAG: "inv1/other/task", "job_id": JOB})
    assert choose(other) is None


def test_multi_task_adopts_nothing_by_job_id():
    assert choose(launchers("L"), job_id=None) is None


def test_of_several_launcher_runs_the_oldest_is_chosen_and_named_with_the_others():
    choice = choose(launchers("new", start=30), launchers("old", start=10), launchers("mid", start=20))
    assert choice is not None and choice.run_id == "old"
    assert "3 MLflow runs carry tag job_id=inv1.0" in choice.reason
    assert "mid, new" in choice.reason


def test_of_several_runs_with_the_key_the_oldest_is_chosen_and_the_reason_says_so():
    choice = choose(ours("b", start=2), ours("a", start=1))
    assert (
        choice is not None
        and choice.run_id == "a"
        and "2 MLflow runs carry this job's run key" in choice.reason
    )


@given(st.permutations([launchers(f"r{i}", start=i % 3) for i in range(6)]))
def test_the_choice_does_not_depend_on_the_order_the_search_returned(runs):
    choice = choose(*runs)
    assert choice is not None and choice.run_id == "r0"


def test_an_adopted_launcher_run_keeps_its_params_and_gets_the_run_key_metrics_and_files():
    launcher_run = RunState(
        "L",
        "file:///a",
        True,
        metrics={"mmlu_score": 0.5},
        params={"invocation_id": "inv1", "executor": "local", "timestamp": "1767228704.001"},
        tags={"job_id": JOB},
    )
    wanted = WantedRun(
        {"mmlu_score": 0.5, "mmlu_score_stderr": 0.01},
        {"invocation_id": "inv1", "executor": "local", "timestamp": "1767228704.001", "model_id": "m"},
        {RUN_KEY_TAG: KEY, "job_id": JOB},
        "evalport.artifacts_digest",
        "d1",
    )
    delta = plan_run_delta(launcher_run, wanted)
    assert dict(delta.metrics) == {"mmlu_score_stderr": 0.01}
    assert dict(delta.params) == {"model_id": "m"}, "the launcher's params are never logged again"
    assert not delta.kept and delta.note() == ""
    assert delta.tags[RUN_KEY_TAG] == KEY and delta.upload and not delta.finish


def test_a_launcher_param_with_another_value_is_kept_and_reported_never_relogged():
    launcher_run = RunState("L", "u", True, params={"timestamp": "1.5"}, tags={"job_id": JOB})
    wanted = WantedRun({}, {"timestamp": "2.5"}, {RUN_KEY_TAG: KEY}, "d")
    delta = plan_run_delta(launcher_run, wanted)
    assert "timestamp" not in delta.params and delta.kept == {"timestamp": ("1.5", "2.5")}


# ---- compat: launcher metric keys ----------------------------------------------------------------
def test_launcher_metric_keys_follow_the_launchers_rule():
    assert launcher_metric_key("humaneval_pass@1") == "humaneval_pass_at_1"
    assert launcher_metric_key("a__b:c  ") == "a_b_c"
    assert launcher_metric_key("x" * 300) == "x" * 250
    assert launcher_metric_key("@@") == "_"
    assert launcher_metric_key("") == "key"


@given(st.text(max_size=300))
def test_a_launcher_metric_key_is_always_a_key_mlflow_accepts(name):
    key = launcher_metric_key(name)
    assert 0 < len(key) <= 250
    assert re.fullmatch(r"[\w./\- ]+", key)
    assert "__" not in key
    assert all(seg not in ("", ".", "..") for seg in key.split("/"))
