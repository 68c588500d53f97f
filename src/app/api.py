"""The Python API for launchers and scripts: ``evalport.export()`` and the launcher's ``export_results()``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalport.domain.errors import EvalportError, UsageError
from evalport.domain.ports import ResultSource
from evalport.domain.report import ExportReport, Status


def export(
    ids: str | Sequence[str],
    dest: str | Sequence[str] | None = None,
    config: Mapping[str, Any] | str | None = None,
    *,
    overrides: Sequence[str] = (),
    exec_db: str | Path | None = None,
    job_dirs: Sequence[str | Path] = (),
    source: ResultSource | None = None,
    include_failed: bool = False,
    dry_run: bool = False,
    force: bool = False,
    ledger: bool | str | Path = True,
    compat: str | None = None,
    reader: str | None = None,
) -> ExportReport:
    """Exports invocations or jobs to one or several destinations and returns the report.

    ``dest`` defaults to the destinations the config names, else ``local``. ``config`` is a
    launcher run config, an evalport config, flat options for every destination, or options keyed
    by destination (``{"local": {...}, "mlflow": {...}}``), read by the same rule as the CLI's.
    ``compat="launcher"`` writes nemo-evaluator-launcher 0.2.6's shapes at every destination (the
    CLI's ``--compat``). ``job_dirs`` may also be other harnesses' output folders (detected;
    ``reader`` forces one format, the CLI's ``--reader``). Raises only for usage and configuration
    errors; every job or destination problem is an outcome in the report. The ledger
    (``ledger=False`` to bypass it) skips what a destination already holds unchanged, unless
    ``force``.
    """
    from evalport.app.container import container_for
    from evalport.app.request import ExportRequest

    request = ExportRequest(
        ids=ids,
        destinations=dest or (),
        config=config,
        overrides=overrides,
        flags={"compat": compat} if compat is not None else {},
        include_failed=include_failed,
        dry_run=dry_run,
        force=force,
    )
    container = container_for(
        request, exec_db=exec_db, job_dirs=job_dirs, source=source, ledger=ledger, reader=reader
    )
    return container.service().execute(request)


class LauncherResult(dict[str, Any]):
    """The launcher's ``export_results`` dict, with evalport's typed report behind it.

    ``result["success"]`` and ``result["metadata"]["successful_jobs"]`` read as the launcher's;
    ``result.report`` is the :class:`ExportReport` (None after a usage or configuration error, whose
    exception is ``result.error``), and any other attribute is the report's (``result.ok``,
    ``result.counts()``, ``result.outcomes``), so code written for the report keeps working.
    """

    def __init__(
        self, data: Mapping[str, Any], report: ExportReport | None = None, error: Exception | None = None
    ) -> None:
        super().__init__(data)
        self.report = report
        self.error = error

    def __getattr__(self, name: str) -> Any:
        report = self.__dict__.get("report")
        if report is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(report, name)


def launcher_counts(report: ExportReport, *, unresolved: int) -> dict[str, int]:
    """Jobs per launcher bucket: a job failed at any destination is failed, else one sent now is
    successful, else (unchanged, skipped) skipped; each id that named no job is one failed job."""
    by_job: dict[str, set[Status]] = {}
    for outcome in report.outcomes:
        by_job.setdefault(outcome.job_id, set()).add(outcome.status)
    counts = {"successful_jobs": 0, "failed_jobs": unresolved, "skipped_jobs": 0}
    sent = {Status.EXPORTED, Status.UPDATED, Status.PLANNED}
    for statuses in by_job.values():
        bucket = (
            "failed_jobs"
            if Status.FAILED in statuses
            else "successful_jobs"
            if statuses & sent
            else "skipped_jobs"
        )
        counts[bucket] += 1
    return counts


def export_results(
    invocation_ids: str | list[str],
    dest: str = "local",
    config: dict[Any, Any] | None = None,
) -> LauncherResult:
    """The reference launcher's ``export_results`` call, so its callers switch by changing one import.

    Same arguments, same return value: ``{"success": bool, "metadata": {"successful_jobs",
    "failed_jobs", "skipped_jobs"}}`` counted in jobs (exported or updated: successful; unchanged or
    skipped: skipped; failed, or an id that names no job: failed), and for a usage or configuration
    error ``{"success": False, "metadata": {"error": "Export failed: ..."}}`` instead of an
    exception, as the launcher does. The dict also carries the full report (:class:`LauncherResult`).
    Destinations write the launcher's shapes (``compat: launcher``) unless ``config`` sets ``compat``.
    """
    from evalport.app.container import container_for
    from evalport.app.request import ExportRequest

    # Its callers read the launcher's files and runs, so its shapes are the default here.
    flags = {} if isinstance(config, dict) and "compat" in config else {"compat": "launcher"}
    request = ExportRequest(ids=invocation_ids, destinations=dest or (), config=config, flags=flags)
    try:
        service = container_for(request).service()
        plan = service.plan(request)
    except (EvalportError, OSError) as exc:
        return _failure(exc)
    try:
        report = service.run(plan)
    except UsageError as exc:
        # No id named a job. The launcher counts each such id as a failed job, not as an error.
        unresolved = _unresolved_only(service, plan.ids)
        if unresolved is None:
            return _failure(exc)
        report = unresolved
    except (EvalportError, OSError) as exc:
        return _failure(exc)
    # The run puts only the ids that named no job (unknown, ambiguous) among its problems.
    counts = launcher_counts(report, unresolved=len(report.problems))
    return LauncherResult({"success": counts["failed_jobs"] == 0, "metadata": counts}, report)


def _unresolved_only(service: Any, ids: Sequence[str]) -> ExportReport | None:
    """A report of the ids that named no job, when none did (else None: another usage error)."""
    try:
        jobs, errors = service.resolve(ids)
    finally:
        service.source.close()
    return ExportReport(problems=[str(e) for e in errors]) if errors and not jobs else None


def _failure(exc: Exception) -> LauncherResult:
    return LauncherResult({"success": False, "metadata": {"error": f"Export failed: {exc}"}}, error=exc)
