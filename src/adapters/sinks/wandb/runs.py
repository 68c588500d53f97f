"""The W&B SDK side of the sink: open a run by its id (bounded retries), write it, stage its files.

``wandb`` is imported only when a run is opened (it costs ~0.3 s); many runs in one process reuse
the SDK's service, with system stats, git, code, console and requirements capture turned off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalport.adapters.sinks.wandb import plan as planning
from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.adapters.sinks.wandb.credentials import base_url
from evalport.adapters.sinks.wandb.errors import DestinationDown, RunSkipped, is_retryable, open_failure
from evalport.adapters.sinks.wandb.names import artifact_name
from evalport.adapters.staging import stage_item
from evalport.domain.model import TaskResult
from evalport.domain.ports import ExportItem
from evalport.domain.redact import redact_text

# Settings that make a run cheap (measured with wandb 0.31: ~12 ms per offline run after the
# first); x_save_requirements=False matters most (it skips a scan of every installed package).
FAST_SETTINGS: dict[str, Any] = {
    "console": "off",
    "disable_git": True,
    "save_code": False,
    "disable_job_creation": True,
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "x_save_requirements": False,
    "silent": True,
}


@dataclass(frozen=True)
class RunTarget:
    """Where runs go: the folder holding ``wandb/`` and the SDK mode."""

    root: Path
    mode: str


def stage_job(item: ExportItem, target: Path) -> None:
    """Copies the job's selected files (secrets masked) and its config into ``target``; OSError on failure."""
    stage_item(item, target)
    target.mkdir(parents=True, exist_ok=True)
    text = json.dumps(planning.staged_config(item.result), indent=2, sort_keys=True, default=str)
    (target / "config.json").write_text(text)


def open_run(config: WandbSinkConfig, where: RunTarget, run: planning.RunPlan, first: TaskResult) -> Any:
    """``wandb.init`` with ``resume="allow"`` on the run's id, retried while the server may come back.

    Raises :class:`DestinationDown` (with the reason) when the server did not answer, else
    :class:`RunSkipped` for a failure that concerns this run only.
    """
    import wandb

    known = set(getattr(wandb.Settings, "model_fields", {}))
    values = {**FAST_SETTINGS, "mode": where.mode, "init_timeout": config.init_timeout}
    # WANDB_DIR is read once per process, so the folder and the settings go with every init.
    settings = wandb.Settings(**{k: v for k, v in values.items() if k in known})
    arguments: dict[str, Any] = {
        "id": run.run_id,
        "resume": "allow",
        "dir": str(where.root),
        "project": config.project,
        "entity": config.entity,
        "name": planning.run_name(config.run_name, config.log_mode, first),
        "group": redact_text(config.group) if config.group else first.invocation_id,
        "job_type": config.job_type,
        "tags": [redact_text(t) for t in config.tags] or None,
        "notes": redact_text(config.description) if config.description else None,
        "settings": settings,
    }

    def init() -> Any:
        try:
            return wandb.init(**arguments)
        except Exception:
            # A failed init leaves its run id registered in the SDK's service ("run ID ... is in
            # use"); only a teardown frees it, for the next attempt and later exports alike.
            wandb.teardown()
            raise

    try:
        return config.retry_policy.call(init, is_retryable)
    except Exception as exc:
        reason = open_failure(exc, run.run_id, base_url(), config.retries)
        if is_retryable(exc):
            raise DestinationDown(reason) from exc
        raise RunSkipped(reason) from exc


def held_fingerprints(run: Any) -> dict[str, str]:
    """The job fingerprints an opened run's config holds (online change detection)."""
    return dict((run.config.get("evalport") or {}).get("fingerprints") or {})


def write_run(
    run: Any, config: WandbSinkConfig, plan: planning.RunPlan, jobs: list[tuple[planning.PlannedJob, Path]]
) -> None:
    """Config, summary and one history step for the metrics, and one artifact per job."""
    import wandb

    results = [job.result for job, _ in jobs]
    fingerprints = {job.result.job_id: job.fingerprint for job, _ in jobs}
    run_config = planning.run_config(
        results, plan.identity, config.log_mode, config.extra_metadata, run.config, fingerprints
    )
    run.config.update(run_config, allow_val_change=True)

    metrics: dict[str, float] = {}
    for result in results:
        metrics.update(result.flat_metrics())
    run.summary.update(metrics)
    if metrics:
        run.log(metrics)
    for job, staged in jobs:
        result = job.result
        metadata = {
            "job_id": result.job_id,
            "invocation_id": result.invocation_id,
            "model_id": result.model_id,
        }
        artifact = wandb.Artifact(
            artifact_name(result.harness, result.task), type="evaluation", metadata=metadata
        )
        artifact.add_dir(str(staged))
        run.log_artifact(artifact)
