"""The W&B sink's decisions, pure: which run each job goes to, the run's name, and what to do with it.

A run is found by its id, never by a scan: ``RunIdentity.run_id()`` of the result (per task, or
per invocation in ``multi_task`` mode). Whether a run is new, resumed or left alone follows from
what the run already holds: offline, the fingerprints saved beside its folder (only while the
folder exists); online, the server's resume answer and the fingerprints kept in the run config.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalport.adapters.sinks.wandb.names import is_valid_run_id
from evalport.domain.identity import LogMode, RunIdentity
from evalport.domain.model import TaskResult
from evalport.domain.redact import redact, redact_text
from evalport.domain.report import Status

#: The options a run's content depends on, under the keys fingerprints were first computed with
#: (``run_name`` was ``name``), so an upgrade does not make every saved run look changed.
FINGERPRINT_OPTIONS = {
    "entity": "entity",
    "project": "project",
    "run_name": "name",
    "group": "group",
    "job_type": "job_type",
    "tags": "tags",
    "description": "description",
    "extra_metadata": "extra_metadata",
    "log_mode": "log_mode",
}


class RunAction(enum.Enum):
    NEW = "new"  # no such run yet: open it, its jobs are exported
    RESUME = "resume"  # the run exists and some of its jobs changed: they are updated
    UNCHANGED = "unchanged"  # the run holds every job as it is: nothing is opened


@dataclass(frozen=True)
class RunDecision:
    action: RunAction
    write: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def written_status(self) -> Status:
        return Status.EXPORTED if self.action is RunAction.NEW else Status.UPDATED


@dataclass
class PlannedJob:
    """One job of a run: its place in the batch, its result, and the fingerprint of what it sends."""

    index: int
    result: TaskResult
    fingerprint: str


@dataclass
class RunPlan:
    run_id: str
    identity: RunIdentity
    jobs: list[PlannedJob] = field(default_factory=list)


def job_entry(result: TaskResult) -> dict[str, Any]:
    """The job's fields as a run config (per_task) or one ``tasks.<harness>.<task>`` entry holds them."""
    return {
        "job_id": result.job_id,
        "harness": result.harness,
        "task": result.task,
        "container": result.container,
        "timestamp": result.timestamp,
        "state": result.state.value,
        "executor": result.executor,
    }


def _number_key(value: float) -> str:
    return repr(value) if not math.isfinite(value) else f"{value:.17g}"


def fingerprint_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options (as ``model_dump(mode="json")`` gives them) that change what a run receives."""
    return {old: options.get(new) for new, old in FINGERPRINT_OPTIONS.items()}


def fingerprint(result: TaskResult, files: Any, options: Mapping[str, Any]) -> str:
    """A digest of everything a job sends: metrics, job fields, the redacted config, files, options.

    ``files`` describes the staged files (their signatures); ``options`` is
    :func:`fingerprint_options` of the config.
    """
    body = {
        "metrics": {k: _number_key(v) for k, v in sorted(result.flat_metrics().items())},
        "job": job_entry(result),
        "config": redact(dict(result.config)),
        "files": files,
        "options": dict(options),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:24]


def with_samples(fingerprint: str, samples: str) -> str:
    """A job's fingerprint with the digest of its samples table ('' for none: unchanged)."""
    if not samples:
        return fingerprint
    return hashlib.sha256(f"{fingerprint}:{samples}".encode()).hexdigest()[:24]


def with_options(
    fingerprint: str, result: TaskResult, files: Sequence[str], options: Mapping[str, Any]
) -> str:
    """The export's fingerprint of a job (the ledger's: its result and files' signatures) with what
    this sink makes of it: the metrics kept (``log_metrics``), the files chosen and the options a
    run depends on. One digest, and no file read."""
    body = {
        "export": fingerprint,
        "metrics": {k: _number_key(v) for k, v in sorted(result.flat_metrics().items())},
        "files": list(files),
        "options": dict(options),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:24]


def run_id_of(result: TaskResult, log_mode: LogMode, fixed: str | None = None) -> tuple[str, RunIdentity]:
    """The run a result goes to.

    ``per_task``: evalport's id derived from (invocation, harness, task), as always (the launcher
    makes a new run per export there, so there is nothing of its to resume). ``multi_task``: the
    launcher's stable id, ``fixed`` (the ``run_id`` option) else the invocation id, so a run the
    launcher made is resumed and the launcher resumes ours; :func:`earlier_run_id` is the id
    evalport used before and is adopted when only that run exists.
    """
    identity = RunIdentity.for_result(result, log_mode)
    multi = identity.mode is LogMode.MULTI_TASK
    run_id = (fixed or result.invocation_id) if multi else identity.run_id()
    if not is_valid_run_id(run_id):
        raise ValueError(f"run id {run_id!r} is not valid for W&B")
    return run_id, identity


def earlier_run_id(identity: RunIdentity) -> str | None:
    """The id evalport gave a multi_task run before it used the launcher's (None per task: unchanged)."""
    return identity.run_id() if identity.mode is LogMode.MULTI_TASK else None


def group_runs(
    jobs: Iterable[tuple[TaskResult, str]], log_mode: LogMode, fixed: str | None = None
) -> list[RunPlan]:
    """(result, fingerprint) pairs -> one plan per run id, in the order runs first appear."""
    plans: dict[str, RunPlan] = {}
    for index, (result, digest) in enumerate(jobs):
        run_id, identity = run_id_of(result, log_mode, fixed)
        plan = plans.setdefault(run_id, RunPlan(run_id, identity))
        plan.jobs.append(PlannedJob(index, result, digest))
    return list(plans.values())


def adopt_earlier_ids(runs: Sequence[RunPlan], exists: Callable[[str], bool]) -> None:
    """Keeps evalport's earlier id for a multi_task run that exists only under it.

    ``exists(run_id)`` says whether the destination has that run. The launcher's id wins when it
    exists (or when neither does): that is the run the launcher will resume too.
    """
    for run in runs:
        earlier = earlier_run_id(run.identity)
        if earlier and earlier != run.run_id and not exists(run.run_id) and exists(earlier):
            run.run_id = earlier


def decide(wanted: Mapping[str, str], held: Mapping[str, str], run_exists: bool) -> RunDecision:
    """What to do with a run, from job id -> fingerprint wanted and the fingerprints the run holds.

    ``held`` counts only while the run exists: fingerprints of a deleted run describe nothing.
    """
    held = held if run_exists else {}
    unchanged = tuple(job for job, digest in wanted.items() if held.get(job) == digest)
    write = tuple(job for job in wanted if job not in unchanged)
    if not write:
        return RunDecision(RunAction.UNCHANGED, (), unchanged)
    return RunDecision(RunAction.RESUME if run_exists else RunAction.NEW, write, unchanged)


def run_name(template: str | None, log_mode: LogMode, first: TaskResult) -> str:
    """The ``run_name`` template filled from the run's first job, else ``eval-<invocation>[-<task>]``."""
    if template:
        return template.format_map(
            {
                "invocation_id": first.invocation_id,
                "harness": first.harness,
                "task": first.task,
                "model_id": first.model_id,
                "job_id": first.job_id,
            }
        )
    if log_mode is LogMode.MULTI_TASK:
        return f"eval-{first.invocation_id}"
    return f"eval-{first.invocation_id}-{first.task}"


def run_config(
    results: Sequence[TaskResult],
    identity: RunIdentity,
    log_mode: LogMode,
    extra_metadata: Mapping[str, Any],
    held: Mapping[str, Any],
    fingerprints: Mapping[str, str],
) -> dict[str, Any]:
    """The run config after writing ``results``: ``held`` is what the run config holds already."""
    first = results[0]
    known = dict((held.get("evalport") or {}).get("fingerprints") or {})
    known.update(fingerprints)
    config: dict[str, Any] = {
        **redact(dict(extra_metadata)),
        "invocation_id": first.invocation_id,
        "model_id": first.model_id,
        "launcher_config": redact(dict(first.config)),
        "evalport": {"log_mode": log_mode.value, "run_key": identity.key, "fingerprints": known},
    }
    if log_mode is LogMode.MULTI_TASK:
        tasks = dict(held.get("tasks") or {})
        tasks.update({f"{r.harness}.{r.task}": job_entry(r) for r in results})
        config["tasks"] = tasks
    else:
        config.update(job_entry(first))
    config.update(launcher_run_config(results, log_mode, held))
    return config


def _merged(held: Any, added: Iterable[str]) -> list[str]:
    out = [str(v) for v in held] if isinstance(held, (list, tuple)) else []
    out.extend(v for v in dict.fromkeys(added) if v and v not in out)
    return out


def launcher_run_config(
    results: Sequence[TaskResult], log_mode: LogMode, held: Mapping[str, Any]
) -> dict[str, Any]:
    """The run config keys nemo-evaluator-launcher 0.2.6 writes, so its readers find them.

    ``invocation_id``, ``executor`` (the jobs' executors joined), per task ``job_id``, ``harness``,
    ``benchmark``; ``launcher_command`` and ``results_dir`` when the result knows them; multi_task
    ``benchmarks`` and ``harnesses``, merged with what the run holds, never overwritten.
    """
    first = results[0]
    config: dict[str, Any] = {
        "invocation_id": first.invocation_id,
        "executor": ", ".join(sorted({r.executor for r in results})),
    }
    if log_mode is LogMode.MULTI_TASK:
        config["benchmarks"] = _merged(held.get("benchmarks"), (r.task for r in results))
        config["harnesses"] = _merged(held.get("harnesses"), (r.harness for r in results))
    else:
        config.update(job_id=first.job_id, harness=first.harness, benchmark=first.task)
    for key in ("launcher_command", "results_dir"):
        value = getattr(first, key, None)  # known to the reader from a later release of the model
        if isinstance(value, str) and value:
            config[key] = redact_text(value)
    return config


def staged_config(result: TaskResult) -> dict[str, Any]:
    """The ``config.json`` each job's artifact carries."""
    return {
        **job_entry(result),
        "model_id": result.model_id,
        "invocation_id": result.invocation_id,
        "launcher_config": redact(dict(result.config)),
    }
