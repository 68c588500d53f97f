"""The W&B SDK side of the sink: open a run by its id (through the export's Destination), write it,
stage its files.

``wandb`` is imported only when a run is opened (it costs ~0.3 s); many runs in one process reuse
the SDK's service, with system stats, git, code, console and requirements capture turned off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalport.adapters.sinks.remote import Destination, Staged, stage_for_upload
from evalport.adapters.sinks.wandb import plan as planning
from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.adapters.sinks.wandb.credentials import base_url
from evalport.adapters.sinks.wandb.errors import WANDB_RULES, open_failure
from evalport.adapters.sinks.wandb.names import artifact_name
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


def destination(config: WandbSinkConfig) -> Destination:
    """The W&B server for one export: once it did not answer, the runs after are not tried."""
    url = base_url()
    return Destination(config.retry_policy(), WANDB_RULES, explain=lambda failure: open_failure(failure, url))


def stage_job(item: ExportItem, parent: Path) -> Staged:
    """The job's selected files (secrets masked) and its ``config.json`` in a new folder under
    ``parent``; OSError on failure. No content digest: W&B tells unchanged jobs by fingerprint."""
    text = json.dumps(planning.staged_config(item.result), indent=2, sort_keys=True, default=str)
    staged = stage_for_upload(item, parent, {"config.json": text.encode()}, digest=False)
    assert staged is not None  # config.json is always there
    return staged


def open_run(
    config: WandbSinkConfig, dest: Destination, where: RunTarget, run: planning.RunPlan, first: TaskResult
) -> Any:
    """``wandb.init`` with ``resume="allow"`` on the run's id, retried while the server may come back.

    Raises :class:`~evalport.adapters.sinks.remote.CallFailed` (its ``reason`` ready to report);
    a transient one leaves ``dest`` down, so the runs after it are not tried.
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

    return dest.call(f"open run {run.run_id}", init)


def held_fingerprints(run: Any) -> dict[str, str]:
    """The job fingerprints an opened run's config holds (online change detection)."""
    return dict((run.config.get("evalport") or {}).get("fingerprints") or {})


def write_run(
    run: Any, config: WandbSinkConfig, plan: planning.RunPlan, jobs: list[tuple[planning.PlannedJob, Staged]]
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
        artifact.add_dir(str(staged.directory))
        run.log_artifact(artifact)
