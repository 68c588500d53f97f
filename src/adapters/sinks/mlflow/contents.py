"""What one job contributes to its MLflow run: name, tags, params, metric keys (pure functions)."""

from __future__ import annotations

import json

from evalport.adapters.sinks.mlflow.config import MlflowSinkConfig
from evalport.adapters.sinks.mlflow.names import (
    MAX_TAG_VALUE_LENGTH,
    assign_keys,
    clip,
    flatten_params,
    launcher_metric_key,
    mlflow_metric_key,
    mlflow_param_key,
    stored_run_key,
)
from evalport.adapters.sinks.mlflow.plan import WantedRun
from evalport.domain.identity import LogMode
from evalport.domain.model import TaskResult
from evalport.domain.redact import redact, redact_text

RUN_KEY_TAG = "evalport.run_key"
LOG_MODE_TAG = "evalport.log_mode"
DIGEST_TAG = "evalport.artifacts_digest"
JOB_TAG = "evalport.job"
#: The map stored metric key -> original name, uploaded when names had to change.
NAMES_FILE = "evalport/metric_names.json"
MAX_RUN_NAME = 250


def is_multi_task(config: MlflowSinkConfig) -> bool:
    return LogMode(config.log_mode) is LogMode.MULTI_TASK


def job_tag(result: TaskResult) -> str:
    """The tag naming the job of a task (``evalport.job.<task>``)."""
    return f"{JOB_TAG}.{mlflow_param_key(result.task)}"


def digest_tag(config: MlflowSinkConfig, result: TaskResult) -> str:
    """The tag holding the uploaded files' digest (one per task in multi_task)."""
    return f"{DIGEST_TAG}.{mlflow_param_key(result.task)}" if is_multi_task(config) else DIGEST_TAG


def run_name(config: MlflowSinkConfig, result: TaskResult) -> str:
    multi = is_multi_task(config)
    fields = {
        "invocation_id": result.invocation_id,
        "model_id": result.model_id,
        "harness": "multi" if multi else result.harness,
        "task": "multi" if multi else result.task,
        "job_id": result.invocation_id if multi else result.job_id,
    }
    if config.run_name:
        return clip(config.run_name.format(**fields), MAX_RUN_NAME)
    return f"eval-{result.invocation_id}" if multi else f"eval-{result.invocation_id}-{result.task}"


def job_tags(config: MlflowSinkConfig, result: TaskResult, run_key: str) -> dict[str, str]:
    """The run's tags from this job; ``run_key`` is the job's RunIdentity key."""
    tags = {
        RUN_KEY_TAG: stored_run_key(run_key),
        LOG_MODE_TAG: LogMode(config.log_mode).value,
        "invocation_id": result.invocation_id,
        "model_id": result.model_id,
        "executor": result.executor,
        "mlflow.runName": run_name(config, result),
        job_tag(result): result.job_id,
    }
    if not is_multi_task(config):
        tags.update(
            {
                "job_id": result.job_id,
                "harness": result.harness,
                "task": result.task,
                # the launcher's names for the task (its readers and its exporter look for them)
                "task_name": result.task,
                "benchmark": result.task,
                "state": result.state.value,
            }
        )
        if result.container:
            tags["container"] = result.container
    if config.description:
        tags["mlflow.note.content"] = redact_text(config.description)
    # Only what the user wrote is redacted: evalport's own tags (evalport.run_key) are not secrets.
    tags.update(redact(config.tags))
    return {mlflow_param_key(str(k)): clip(str(v), MAX_TAG_VALUE_LENGTH) for k, v in tags.items()}


def job_params(config: MlflowSinkConfig, result: TaskResult) -> dict[str, str]:
    """The run's params: evalport's and the launcher's (``invocation_id``, ``executor``,
    ``timestamp``, written as the launcher writes them, so an adopted run's params agree)."""
    params: dict[str, str] = {
        "model_id": result.model_id,
        "invocation_id": result.invocation_id,
        "executor": result.executor,
    }
    if not is_multi_task(config):
        params.update({"harness": result.harness, "task": result.task})
        if result.timestamp is not None:
            params["timestamp"] = str(result.timestamp)
    depth = config.log_config_params_max_depth
    params.update(flatten_params(redact(config.extra_metadata), depth))
    if config.log_config_params and result.config:
        params.update(flatten_params(redact(dict(result.config)), depth, prefix="config"))
    return {mlflow_param_key(k): v for k, v in params.items()}


def job_metrics(result: TaskResult, compat: str = "evalport") -> tuple[dict[str, float], dict[str, str]]:
    """(stored key -> value, stored key -> original name for the names that had to change).

    ``compat="launcher"``: keys as the launcher makes them (``launcher_metric_key``)."""
    flat = result.flat_metrics()
    keys = assign_keys(flat, launcher_metric_key if compat == "launcher" else mlflow_metric_key)
    return {keys[n]: v for n, v in flat.items()}, {k: n for n, k in keys.items() if k != n}


def names_file(renamed: dict[str, str]) -> dict[str, bytes]:
    """The extra file to upload with the job's files: the renamed metrics' original names."""
    if not renamed:
        return {}
    body = json.dumps(renamed, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return {NAMES_FILE: body.encode("utf-8")}


def wanted_run(
    config: MlflowSinkConfig, result: TaskResult, run_key: str, metrics: dict[str, float], digest: str | None
) -> WantedRun:
    return WantedRun(
        metrics,
        job_params(config, result),
        job_tags(config, result, run_key),
        digest_tag(config, result),
        digest,
    )
