"""The commands that look without exporting: ``ls``, ``show`` and ``history``.

Registered lazily in :mod:`evalport.app.cli`, so ``evalport --help`` never imports this module.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from cyclopts import Parameter

from evalport.app.cli import (
    EXIT_FAILED,
    EXIT_OK,
    ExecDb,
    JobDirs,
    JsonOutput,
    _container,
    _service,
    _Usage,
    _warn_source,
)


def list_jobs(
    ids: list[str] | None = None,
    /,
    *,
    json_output: JsonOutput = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
) -> int:
    """List invocations and their jobs with state."""
    from evalport.app.cli_output import add_row, console, error, table
    from evalport.domain.model import group_invocations

    service = _service(exec_db, job_dir)
    # the named jobs, or else every job; each --job-dir given must be a job
    named, errors = service.resolve_or_raise(ids or []) if ids or job_dir else ([], [])
    jobs = named if ids else service.source.list_jobs()
    for e in errors:
        error(e)
    _warn_source(service)
    states = service.source.job_states(jobs)
    invocations = sorted(group_invocations(jobs), key=lambda i: i.timestamp or 0, reverse=True)
    if json_output:
        print(
            json.dumps(
                [
                    {
                        "invocation_id": inv.invocation_id,
                        "jobs": [
                            {
                                "job_id": j.job_id,
                                "task": j.task_name,
                                "executor": j.executor,
                                "state": states[j.job_id].value,
                                "model_id": j.model_id,
                                "path": j.location.path,
                            }
                            for j in inv.jobs
                        ],
                    }
                    for inv in invocations
                ],
                indent=2,
            )
        )
        return EXIT_FAILED if errors else EXIT_OK
    rows = table("job", "task", "model", "executor", "state", "path")
    for inv in invocations:
        for j in inv.jobs:
            add_row(
                rows,
                j.job_id,
                j.task_name,
                j.model_id or "",
                j.executor,
                states[j.job_id].value,
                j.location.path,
            )
    console().print(rows)
    return EXIT_FAILED if errors else EXIT_OK


def show(
    ids: list[str],
    /,
    *,
    log_metrics: Annotated[list[str] | None, Parameter(help="metric patterns to show (default all)")] = None,
    json_output: JsonOutput = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
) -> int:
    """Show the metrics of each job, as a table."""
    from evalport.app.cli_output import add_row, console, error, table
    from evalport.app.request import ExportRequest
    from evalport.domain.filters import MetricFilter

    service = _service(exec_db, job_dir)
    results, report = service.read_results(ExportRequest(ids=ids, include_failed=True))
    flt = MetricFilter.of(log_metrics)
    for problem in report.problems:
        error(problem)
    if json_output:
        print(json.dumps([flt.apply_to(r).summary() for r in results], indent=2, default=str))
        return report.exit_code()
    out = console()
    for r in results:
        rows = table("metric", "value", "stderr", title=f"{r.job_id}  {r.model_id}  {r.harness}/{r.task}")
        for m in flt.apply(r.metrics):
            stderr = m.stats.get("stderr")
            add_row(rows, m.name, f"{m.value:.6g}", "" if stderr is None else f"{stderr:.3g}")
        out.print(rows)
    return report.exit_code()


def history(
    ids: list[str] | None = None,
    /,
    *,
    limit: Annotated[int, Parameter(help="at most this many events")] = 50,
    json_output: JsonOutput = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
) -> int:
    """Show what went where: the export ledger's events, newest first (optionally of some ids).

    Takes every id form ``export`` takes (invocations, jobs, unique prefixes, ``<prefix>.<index>``),
    also of jobs the execution DB no longer lists.
    """
    import time

    from evalport.app.cli_output import add_row, console, describe_exception, plain, table, warning

    container = _container(exec_db, job_dir)
    try:
        ledger = container.ledger()
    except Exception as exc:  # e.g. $EVALPORT_STATE_DIR=~nobody/state
        warning(f"cannot locate the export ledger: {describe_exception(exc)}; check $EVALPORT_STATE_DIR")
        if json_output:
            print("[]")
        return EXIT_FAILED
    try:
        job_ids = _history_job_ids(container, ledger, ids or []) if ids else None
        rows = ledger.history(job_ids, limit)
    except _Usage:
        raise
    except Exception as exc:  # a cache that cannot be read: say so and what to do, never a traceback
        from evalport.domain.errors import EvalportError

        if isinstance(exc, EvalportError):
            warning(str(exc))
        else:
            warning(f"the export ledger {ledger.path} cannot be read ({describe_exception(exc)})")
        if json_output:
            print("[]")
        return EXIT_FAILED
    if json_output:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    rows_table = table("when", "job", "destination", "status", "where / why", title=str(ledger.path))
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(row["at"])))
        detail = str(row["reason"] or row["location"])
        add_row(rows_table, when, row["job_id"], row["target"], row["status"], detail)
    console().print(rows_table if rows else plain(f"nothing exported yet ({ledger.path})"))
    return EXIT_OK


def _history_job_ids(container: Any, ledger: Any, ids: list[str]) -> list[str]:
    """The job ids ``ids`` name among the source's jobs and the ledger's (an unknown id: exit 2)."""
    from evalport.domain.ids import resolve_ids

    try:
        listed = [j.job_id for j in container.source().list_jobs()]
    except Exception:  # no execution DB here: the ledger's own ids still resolve
        listed = []
    known = list(dict.fromkeys([*listed, *ledger.known_job_ids()]))
    found, errors = resolve_ids(ids, {j.split(".", 1)[0] for j in known}, known)
    if errors and not found:
        raise _Usage("; ".join(str(e) for e in errors))
    from evalport.app.cli_output import error

    for e in errors:
        error(e)
    return found
