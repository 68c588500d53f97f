"""The launcher's W&B run ids, run config keys and option names (pure: no SDK, no server)."""

from __future__ import annotations

import warnings

import pytest
from pydantic import ValidationError

from evalport.adapters.sinks.base import InertOptionWarning
from evalport.adapters.sinks.wandb import plan as planning
from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.adapters.sinks.wandb.names import launcher_artifact_name, run_ids_of_folder
from evalport.adapters.sinks.wandb.runs import launcher_step
from evalport.domain.identity import LogMode, RunIdentity
from evalport.domain.model import Metric, TaskResult


def result(job_id: str = "abcd.0", task: str = "gsm8k", harness: str = "lm-eval") -> TaskResult:
    return TaskResult(
        job_id, job_id.split(".")[0], task, harness, "meta/llama", "local", (Metric("em", 0.5),)
    )


def test_a_multi_task_run_has_the_launchers_id_the_invocation_id():
    assert planning.run_id_of(result(), LogMode.MULTI_TASK)[0] == "abcd"


def test_the_run_id_option_names_the_multi_task_run():
    assert planning.run_id_of(result(), LogMode.MULTI_TASK, "nightly-2")[0] == "nightly-2"


def test_a_per_task_run_keeps_evalports_derived_id():
    assert planning.run_id_of(result(), LogMode.PER_TASK)[0] == RunIdentity.for_result(result()).run_id()


def test_evalports_earlier_multi_task_id_is_kept_only_when_the_launchers_does_not_exist():
    [run] = planning.group_runs([(result(), "f")], LogMode.MULTI_TASK)
    earlier = RunIdentity(LogMode.MULTI_TASK, "abcd").run_id()
    planning.adopt_earlier_ids([run], {earlier}.__contains__)
    assert run.run_id == earlier
    [run] = planning.group_runs([(result(), "f")], LogMode.MULTI_TASK)
    planning.adopt_earlier_ids([run], {earlier, "abcd"}.__contains__)
    assert run.run_id == "abcd"
    [run] = planning.group_runs([(result(), "f")], LogMode.MULTI_TASK)
    planning.adopt_earlier_ids([run], set().__contains__)
    assert run.run_id == "abcd"


def test_multi_task_benchmarks_and_harnesses_are_merged_with_what_the_run_holds():
    held = {"benchmarks": ["mmlu"], "harnesses": ["simple_evals"]}
    config = planning.launcher_run_config([result("abcd.1", "gsm8k")], LogMode.MULTI_TASK, held)
    assert config["benchmarks"] == ["mmlu", "gsm8k"] and config["harnesses"] == ["simple_evals", "lm-eval"]
    assert (config["invocation_id"], config["executor"]) == ("abcd", "local")


def test_a_per_task_run_config_has_the_launchers_job_keys():
    config = planning.launcher_run_config([result("abcd.3")], LogMode.PER_TASK, {})
    assert {k: config[k] for k in ("job_id", "harness", "benchmark")} == {
        "job_id": "abcd.3",
        "harness": "lm-eval",
        "benchmark": "gsm8k",
    }


def test_launcher_artifact_names_and_steps():
    assert launcher_artifact_name("abcd", "gsm8k") == "abcd_gsm8k"
    assert launcher_artifact_name("abcd") == "abcd"
    assert launcher_artifact_name("abcd", "a/b").startswith("abcd_a_b-")
    assert launcher_step(LogMode.PER_TASK, result("abcd.4")) == 4
    assert launcher_step(LogMode.MULTI_TASK, result("abcd.4")) == 0


def test_a_run_id_ending_in_digits_is_found_in_its_folder_name():
    assert "nightly-2" in run_ids_of_folder("offline-run-20260101_000000-nightly-2")
    assert "nightly" in run_ids_of_folder("offline-run-20260101_000000-nightly-2")


def test_every_launcher_wandb_key_validates():
    launcher_keys = {
        "entity": "team",
        "project": "p",
        "log_mode": "multi_task",
        "name": "eval-x",
        "group": "g",
        "job_type": "evaluation",
        "tags": ["a"],
        "description": "d",
        "extra_metadata": {"k": "v"},
        "run_id": "abc",
        "job_dirs": [],
        "copy_logs": True,
        "copy_artifacts": True,
        "only_required": False,
        "log_metrics": ["em"],
        "log_logs": True,
        "log_artifacts": True,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = WandbSinkConfig.model_validate(launcher_keys)
    assert (config.run_id, config.run_name, config.copy_logs) == ("abc", "eval-x", True)
    assert any(issubclass(w.category, InertOptionWarning) and "job_dirs" in str(w.message) for w in caught)


def test_a_run_id_w_and_b_refuses_is_a_config_error():
    with pytest.raises(ValidationError, match="not a W&B run id"):
        WandbSinkConfig(run_id="a/b")
