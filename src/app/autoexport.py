"""Auto-export: the last step of an evaluation job script exports that job to its destinations.

The destinations and their options come from the job's own run config (the launcher's
``execution.auto_export`` block), credentials from the environment. A failed export never changes
the evaluation's own result: it is recorded in the ledger for retry (``evalport watch``) and
reported with its own exit code, which job scripts may ignore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalport.domain.errors import ConfigError
from evalport.domain.model import JobState
from evalport.domain.report import ExportReport

EXIT_EXPORT_FAILED = 3


@dataclass
class AutoExportResult:
    job_id: str
    state: JobState
    report: ExportReport | None
    message: str

    @property
    def exit_code(self) -> int:
        return EXIT_EXPORT_FAILED if self.report is not None and not self.report.ok else 0


def load_run_config(job_dir: Path, run_config: str | Path | None, directories: Any) -> dict[str, Any]:
    """``--run-config FILE``, else the launcher's resolved config in ``artifacts/metadata.yaml``."""
    from evalport.app.settings import load_document

    if run_config is not None:
        doc = load_document(str(run_config))
        return doc.get("launcher_resolved_config", doc) if isinstance(doc, dict) else {}
    config = directories.launcher_config(job_dir)
    if not config:
        raise ConfigError(
            f"{job_dir / 'artifacts' / 'metadata.yaml'} holds no launcher_resolved_config; "
            "pass the run config with --run-config FILE"
        )
    return dict(config)


def job_state(job_dir: Path, exit_code: int | None, directories: Any) -> JobState:
    """The evaluation's own exit code when given; else its markers. Inside the job, the launcher may
    not have written ``stage.exit`` yet, so a job with results and no exit marker counts as done."""
    if exit_code is not None:
        return JobState.SUCCEEDED if exit_code == 0 else JobState.FAILED
    state: JobState = directories.stage_exit(job_dir)
    if state in (JobState.RUNNING, JobState.PENDING) and (job_dir / "artifacts" / "results.yml").is_file():
        return JobState.SUCCEEDED
    return state


def auto_export(
    job_dir: str | Path,
    *,
    run_config: str | Path | None = None,
    destinations: Sequence[str] = (),
    overrides: Sequence[str] = (),
    exit_code: int | None = None,
    ledger: Any = True,
    flags: Mapping[str, Any] | None = None,
) -> AutoExportResult:
    """Exports one job directory to the destinations its run config names (or ``destinations``)."""
    from evalport.app.container import build_container
    from evalport.app.request import ExportRequest
    from evalport.app.unattended import require_explicit_stores

    job_dir = Path(job_dir).expanduser().resolve()
    container = build_container(job_dirs=[job_dir], source_kind="job_dirs", ledger=ledger)
    directories = container.job_directories()
    job = directories.job(job_dir)
    config = load_run_config(job_dir, run_config, directories)
    auto = (config.get("execution") or {}).get("auto_export") or {}
    if not destinations and not auto.get("destinations"):
        return AutoExportResult(
            job.job_id, JobState.UNKNOWN, None, "no destinations in execution.auto_export"
        )
    state = job_state(job_dir, exit_code, directories)
    if state is not JobState.SUCCEEDED:
        return AutoExportResult(job.job_id, state, None, f"job {job.job_id} {state.value}; not exported")
    request = ExportRequest(
        ids=[job.job_id],
        destinations=destinations,
        config=config,
        overrides=overrides,
        flags={k: v for k, v in (flags or {}).items() if v is not None},
        states={job.job_id: state},
    )
    service = container.service()
    plan = service.plan(request)
    require_explicit_stores(plan, "auto-export")
    report = service.run(plan)
    return AutoExportResult(job.job_id, state, report, "")


@dataclass
class SubmitResult:
    """What ``auto-export --submit`` did: the export job submitted (its id), or why none was."""

    job_dir: Path
    submission: Any  # evalport.app.submit.Submission | None
    message: str

    @property
    def export_job(self) -> str | None:
        return self.submission.export_job if self.submission is not None else None


def submit_auto_export(
    job_dir: str | Path,
    *,
    run_config: str | Path | None = None,
    destinations: Sequence[str] = (),
    overrides: Sequence[str] = (),
    after: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> SubmitResult:
    """Submits ``auto-export`` of ``job_dir`` as a CPU-only Slurm job that runs once the evaluation
    (``after``, else ``$SLURM_JOB_ID``) succeeded. The destinations are checked now, when the run
    config is already there, so a configuration error fails the job script's submit step, not a
    job nobody watches. ``options`` are sbatch settings over ``execution.auto_export.submit``."""
    from evalport.app import submit

    job_dir = Path(job_dir).expanduser().resolve()
    submit.eval_job_id(after)
    config = _config_if_present(job_dir, run_config)
    if config is not None:
        auto = (config.get("execution") or {}).get("auto_export") or {}
        if not destinations and not auto.get("destinations"):
            return SubmitResult(job_dir, None, "no destinations in execution.auto_export; nothing submitted")
        _check_destinations(job_dir, config, destinations, overrides)
    settings = submit.submit_options(config or {}, options or {})
    arguments = submit.export_arguments(job_dir, run_config, destinations, overrides)
    submission = submit.submit(job_dir, settings, arguments, after=after)
    return SubmitResult(
        job_dir,
        submission,
        f"submitted export job {submission.export_job} for {job_dir.name}; "
        f"it runs once Slurm job {submission.eval_job} succeeds",
    )


def _config_if_present(job_dir: Path, run_config: str | Path | None) -> dict[str, Any] | None:
    """The run config, or None while the job has not written it yet (the export job reads it then)."""
    from evalport.app.container import JobDirectories

    if run_config is None and not (job_dir / "artifacts" / "metadata.yaml").is_file():
        return None
    return load_run_config(job_dir, run_config, JobDirectories())


def _check_destinations(
    job_dir: Path, config: Mapping[str, Any], destinations: Sequence[str], overrides: Sequence[str]
) -> None:
    from evalport.app.container import build_container
    from evalport.app.request import ExportRequest
    from evalport.app.unattended import require_explicit_stores

    container = build_container(job_dirs=[job_dir], source_kind="job_dirs", ledger=False)
    request = ExportRequest(destinations=destinations, config=config, overrides=overrides)
    require_explicit_stores(container.service().plan(request), "auto-export")
