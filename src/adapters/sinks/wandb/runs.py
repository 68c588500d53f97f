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
from evalport.adapters.sinks.wandb.names import artifact_name, launcher_artifact_name
from evalport.adapters.sinks.wandb.samples import samples_table, table_key
from evalport.domain.identity import LogMode
from evalport.domain.model import TaskResult
from evalport.domain.ports import ExportItem
from evalport.domain.redact import redact, redact_text

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


def stage_job(item: ExportItem, parent: Path, launcher: bool = False) -> Staged:
    """The job's selected files (secrets masked) and its config in a new folder under ``parent``;
    OSError on failure. No content digest: W&B tells unchanged jobs by fingerprint.

    The config is evalport's ``config.json``, or with ``launcher`` the launcher's ``config.yml``
    (the job's run config, redacted).
    """
    if launcher:
        import yaml

        body = yaml.safe_dump(redact(dict(item.result.config)), default_flow_style=False, sort_keys=False)
        extra = {"config.yml": body.encode()}
    else:
        text = json.dumps(planning.staged_config(item.result), indent=2, sort_keys=True, default=str)
        extra = {"config.json": text.encode()}
    staged = stage_for_upload(item, parent, extra, digest=False)
    assert staged is not None  # the config is always there
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
    run: Any,
    config: WandbSinkConfig,
    plan: planning.RunPlan,
    jobs: list[tuple[planning.PlannedJob, Staged]],
) -> dict[str, tuple[str, ...]]:
    """Config, summary and one history step for the metrics, one artifact per job, and with
    ``samples: table`` one table per job; returns per job id the notes on its samples."""
    _write_results(run, config, plan, jobs)
    notes: dict[str, tuple[str, ...]] = {}
    options = config.sample_options
    for job, _ in jobs if options.enabled else ():
        table, notes[job.result.job_id] = samples_table(job.result, options, config.metric_filter)
        if table is not None:
            run.log({table_key(job.result): table})
    return notes


def _write_results(
    run: Any, config: WandbSinkConfig, plan: planning.RunPlan, jobs: list[tuple[planning.PlannedJob, Staged]]
) -> None:
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
    if config.compat == "launcher":
        _write_launcher_way(run, config, jobs, metrics)
        return
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


def launcher_step(log_mode: LogMode, first: TaskResult) -> int:
    """The history step the launcher logs at: the job's index per task, 0 per invocation."""
    if log_mode is LogMode.MULTI_TASK:
        return 0
    tail = first.job_id.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _write_launcher_way(
    run: Any,
    config: WandbSinkConfig,
    jobs: list[tuple[planning.PlannedJob, Staged]],
    metrics: dict[str, float],
) -> None:
    """nemo-evaluator-launcher 0.2.6's shapes: one ``evaluation_result`` artifact for the run
    (``<invocation>_<task>``, or ``<invocation>`` per invocation) holding each job's files under
    ``<harness>.<task>/``; metrics charted with ``summary="last"`` at the launcher's step."""
    import wandb

    first = jobs[0][0].result
    multi = config.log_mode is LogMode.MULTI_TASK
    metadata: dict[str, Any] = {"invocation_id": first.invocation_id}
    if not multi:
        metadata.update(task=first.task, benchmark=first.task, harness=first.harness)
    artifact = wandb.Artifact(
        launcher_artifact_name(first.invocation_id, None if multi else first.task),
        type="evaluation_result",
        description="Evaluation results",
        metadata=metadata,
    )
    for job, staged in jobs:
        artifact.add_dir(str(staged.directory), name=f"{job.result.harness}.{job.result.task}")
    run.log_artifact(artifact)
    for key in metrics:
        run.define_metric(key, summary="last")
    if metrics:
        run.log(metrics, step=launcher_step(config.log_mode, first))
