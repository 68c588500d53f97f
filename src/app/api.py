"""The Python API for launchers and scripts: ``evalport.export(...)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalport.domain.ports import ResultSource
from evalport.domain.report import ExportReport


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
) -> ExportReport:
    """Exports invocations or jobs to one or several destinations and returns the report.

    ``dest`` defaults to the destinations the config names, else ``local``. ``config`` is a
    launcher run config, an evalport config, flat options for every destination, or options keyed
    by destination (``{"local": {...}, "mlflow": {...}}``), read by the same rule as the CLI's.
    Raises only for usage and configuration errors; every job or destination problem is an
    outcome in the report. The ledger (``ledger=False`` to bypass it) skips what a destination
    already holds unchanged, unless ``force``.
    """
    from evalport.app.container import container_for
    from evalport.app.request import ExportRequest

    request = ExportRequest(
        ids=ids,
        destinations=dest or (),
        config=config,
        overrides=overrides,
        include_failed=include_failed,
        dry_run=dry_run,
        force=force,
    )
    container = container_for(request, exec_db=exec_db, job_dirs=job_dirs, source=source, ledger=ledger)
    return container.service().execute(request)


def export_results(
    invocation_ids: str | list[str],
    dest: str = "local",
    config: dict[Any, Any] | None = None,
) -> ExportReport:
    """The reference launcher's ``export_results`` call, so its callers switch by changing one import.

    Same arguments; returns the ExportReport (``report.ok``, ``report.counts()``, outcomes per job)
    instead of a dict, and raises only for usage errors instead of swallowing every exception.
    """
    return export(invocation_ids, dest, config)
