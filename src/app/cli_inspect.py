"""The commands that look without exporting: ``ls``, ``show`` and ``history``.

Registered lazily in :mod:`evalport.app.cli`, so ``evalport --help`` never imports this module.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from cyclopts import Parameter

from evalport.app.cli import (
    EXIT_FAILED,
    EXIT_OK,
    ExecDb,
    JobDirs,
    JsonOutput,
    ReaderOpt,
    _container,
    _service,
    _Usage,
)
from evalport.app.conform import complete_source


def list_jobs(
    ids: list[str] | None = None,
    /,
    *,
    json_output: JsonOutput = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
    reader: ReaderOpt = None,
) -> int:
    """List invocations and their jobs with state."""
    with _no_cycle_collection():  # a team's DB: hundreds of thousands of records, rows and cells
        return _list_jobs(ids, json_output, exec_db, job_dir, reader)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cycle collector off while ``ls`` runs, and back on as it was after.

    What ``ls`` builds (decoded lines, records, jobs, rows) holds no reference cycle: all of it is
    freed by reference counting, the container's few cycles at the next collection after ``ls``.
    Even with :func:`~evalport.domain.collector.fewer_collections` the collector would still run
    about 30 times on a team's 20,000 jobs, each walking objects that are all still in use (0.08 s).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _list_jobs(
    ids: list[str] | None,
    json_output: bool,
    exec_db: str | None,
    job_dir: list[str] | None,
    reader: str | None = None,
) -> int:
    container = _container(exec_db, job_dir, reader=reader)
    try:
        return _list_jobs_of(container, ids, json_output, exec_db, job_dir)
    finally:
        # The container's providers refer to each other: left to the cycle collector, the source's
        # 20,000 jobs are traversed and freed at exit (0.08 s); dropped here, they are freed at once.
        container.reset_singletons()


def _list_jobs_of(
    container: Any, ids: list[str] | None, json_output: bool, exec_db: str | None, job_dir: list[str] | None
) -> int:
    from evalport.app.cli_output import error, print_out, warning
    from evalport.domain.model import group_invocations

    # Listing everything needs only the source; the service (its reader, planner and ledger) is
    # built only to resolve ids or job directories.
    service = container.service() if ids or job_dir else None
    source = service.source if service is not None else complete_source(container.source())
    if service is None and _no_exec_db(source, exec_db):
        return EXIT_OK
    # the named jobs, or else every job; each --job-dir given must be a job
    if ids:
        _read_only_wanted_lines(source)
    named, errors = service.resolve_or_raise(ids or []) if service is not None else ([], [])
    jobs = named if ids else source.list_jobs()
    for e in errors:
        error(e)
    for message in source.warnings:
        warning(message)
    states = source.job_states(jobs)
    models = _models(container, jobs)
    invocations = sorted(group_invocations(jobs), key=lambda i: i.timestamp or 0, reverse=True)
    if json_output:
        listing = [
            {
                "invocation_id": inv.invocation_id,
                "jobs": [
                    {
                        "job_id": j.job_id,
                        "task": j.task_name,
                        "executor": j.executor,
                        "state": states[j.job_id].value,
                        "model_id": models[j.job_id],
                        "path": j.location.path,
                    }
                    for j in inv.jobs
                ],
            }
            for inv in invocations
        ]
        print_out(json.dumps(listing, indent=2))
    else:
        _print_invocations(invocations, states, models)
    return EXIT_FAILED if errors else EXIT_OK


def _no_exec_db(source: Any, exec_db: str | None) -> bool:
    """True (after a hint) when the execution DB is not there; ``--exec-db`` naming it is a usage error."""
    import os
    from pathlib import Path

    path = getattr(source, "exec_db", None)
    if not isinstance(path, Path) or path.exists():
        return False
    hint = f"no execution DB at {path}; pass --exec-db or --job-dir"
    if exec_db is not None and exec_db != os.environ.get("EVALPORT_EXEC_DB"):
        raise _Usage(hint)
    from evalport.app.cli_output import warning

    warning(hint)
    return True


def _models(container: Any, jobs: list[Any]) -> dict[str, str | None]:
    """Each job's model: its record's, else (a ``--job-dir`` job) its launcher config's in metadata.yaml."""
    from pathlib import Path

    from evalport.domain.model import LocalLocation

    directories = None
    out: dict[str, str | None] = {}
    for job in jobs:
        model = job.model_id
        if model is None and isinstance(job.location, LocalLocation) and job.location.path:
            directories = directories or container.job_directories()
            try:
                config = directories.launcher_config(Path(job.location.path))
            except Exception:  # unreadable: the column stays empty, reading the job says why
                config = {}
            target = config.get("target") if isinstance(config, dict) else None
            endpoint = target.get("api_endpoint") if isinstance(target, dict) else None
            found = endpoint.get("model_id") if isinstance(endpoint, dict) else None
            model = found if isinstance(found, str) else None
        out[job.job_id] = model
    return out


def _print_invocations(invocations: list[Any], states: dict[str, Any], models: dict[str, str | None]) -> None:
    """The listing as a table. Into a file or a pipe (no width to fold to, no styles), the same
    table is laid out here directly: rich takes seconds for a team's 20,000 jobs (and is then
    not even imported)."""
    from evalport.app.cli_output import console, surely_not_a_terminal
    from evalport.app.listing_table import LISTING_COLUMNS, boxed_table, listing_rows

    rows = list(listing_rows(invocations, states, models))
    out = None if surely_not_a_terminal() else console()
    if out is None or not out.is_terminal:
        text = boxed_table(LISTING_COLUMNS, [cells for cells, _, _ in rows], [end for _, _, end in rows])
        if text is not None:
            from evalport.app.cli_output import print_out

            print_out(text)
            return
    from evalport.app.cli_output import add_row, table

    listing = table(*LISTING_COLUMNS)
    for cells, style, end in rows:
        add_row(listing, *cells, style=style, end_section=end)
    (out if out is not None else console()).print(listing)


def _read_only_wanted_lines(source: Any) -> None:
    """Lets a source that can (the local and slurm ones) read only the execution-DB lines that could
    name the ids asked for: a look at a few jobs of a team's DB then costs a search, not a parse of
    every line. Problems of the lines not read are reported by ``ls`` and by exports."""
    if hasattr(type(source), "only_wanted_lines"):
        source.only_wanted_lines = True


def show(
    ids: list[str],
    /,
    *,
    log_metrics: Annotated[list[str] | None, Parameter(help="metric patterns to show (default all)")] = None,
    json_output: JsonOutput = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
    reader: ReaderOpt = None,
) -> int:
    """Show the metrics of each job, as a table."""
    from evalport.app.cli_output import add_row, console, error, plain, print_out, table
    from evalport.app.request import ExportRequest
    from evalport.domain.filters import MetricFilter

    service = _service(exec_db, job_dir, reader=reader)
    _read_only_wanted_lines(service.source)
    results, report = service.read_results(ExportRequest(ids=ids, include_failed=True))
    flt = MetricFilter.of(log_metrics)
    for problem in report.problems:
        error(problem)
    if json_output:
        print_out(json.dumps([flt.apply_to(r).summary() for r in results], indent=2, default=str))
        return report.exit_code()
    out = console()
    for r in results:
        # the job's line is printed whole (a table's title would fold with the table's width)
        out.print(plain(f"{r.job_id}  {r.model_id}  {r.harness}/{r.task}"), style="bold", soft_wrap=True)
        rows = table("metric", "value", "stderr")
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

    from evalport.app.cli_output import add_row, console, describe_exception, plain, print_out, table, warning

    container = _container(exec_db, job_dir)
    try:
        ledger = container.ledger()
    except Exception as exc:  # e.g. $EVALPORT_STATE_DIR=~nobody/state
        warning(f"cannot locate the export ledger: {describe_exception(exc)}; check $EVALPORT_STATE_DIR")
        if json_output:
            print_out("[]")
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
            print_out("[]")
        return EXIT_FAILED
    if json_output:
        print_out(json.dumps(rows, indent=2))
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
