"""The ``evalport`` command: a thin shell over ExportService.

Only cyclopts is imported at start-up; the service, rich and every SDK load when a command runs.
Exit codes: 0 all exported, 1 any job or destination failed, 2 usage or configuration error,
3 ``auto-export`` failed, 128 + N stopped by signal N (143 SIGTERM, 130 SIGINT). No command ends
in a traceback: an unexpected exception is one line naming it (``EVALPORT_DEBUG=1`` shows the
traceback).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Annotated, Any, Literal

from cyclopts import App, Parameter

from evalport import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEBUG_ENV = "EVALPORT_DEBUG"

app = App(
    name="evalport",
    help="Export finished LLM-evaluation results to local files, MLflow, W&B and Google Sheets.",
    version=__version__,
    result_action="return_value",
    help_format="plaintext",
    suppress_keyboard_interrupt=False,  # main() turns it (and SIGTERM) into 128 + the signal's number
)

ExecDb = Annotated[
    str | None,
    Parameter(
        name="--exec-db",
        env_var="EVALPORT_EXEC_DB",
        help="execution DB (default ~/.nemo-evaluator/exec-db/exec.v1.jsonl)",
    ),
]
JobDirs = Annotated[
    list[str] | None, Parameter(name="--job-dir", help="a job directory to read directly (repeatable)")
]


def _stderr() -> Any:
    from evalport.app.cli_output import console

    return console(stderr=True)


def _container(exec_db: str | None, job_dirs: list[str] | None, request: Any = None, **options: Any) -> Any:
    """The composition root for one command; a request adds the exec DB and job dirs its config names."""
    from evalport.app.container import build_container, container_for

    if request is not None:
        return container_for(request, exec_db=exec_db, job_dirs=job_dirs or [], **options)
    return build_container(exec_db=exec_db, job_dirs=job_dirs or [], **options)


def _service(exec_db: str | None, job_dirs: list[str] | None, request: Any = None) -> Any:
    return _container(exec_db, job_dirs, request).service()


def _warn_source(service: Any) -> None:
    from evalport.app.cli_output import warning

    for message in service.source.warnings:
        warning(message)


@app.command
def export(
    ids: list[str] | None = None,
    /,
    *,
    dest: Annotated[
        list[str] | None, Parameter(name=["--dest", "-d"], help="destination (repeatable)")
    ] = None,
    format: Annotated[
        Literal["json", "csv", "html", "md", "none"] | None, Parameter(help="local summary format")
    ] = None,
    output_dir: Annotated[str | None, Parameter(help="local output directory")] = None,
    output_filename: Annotated[str | None, Parameter(help="local multi-run summary file name")] = None,
    log_metrics: Annotated[
        list[str] | None, Parameter(help="metric patterns to export (default all)")
    ] = None,
    copy_logs: Annotated[bool | None, Parameter(help="also send logs/")] = None,
    only_required: Annotated[
        bool | None, Parameter(negative="--all-artifacts", help="only the required artifacts (or all)")
    ] = None,
    config: Annotated[str | None, Parameter(help="YAML/JSON file or inline JSON object")] = None,
    override: Annotated[list[str] | None, Parameter(name=["--override", "-o"], help="KEY=VALUE")] = None,
    include_failed: bool = False,
    dry_run: bool = False,
    force: Annotated[bool, Parameter(help="send again what the ledger says is already there")] = False,
    json_output: Annotated[bool, Parameter(name="--json", help="print the report as JSON")] = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
) -> int:
    """Export invocations or jobs (ids or unique prefixes) to one or more destinations."""
    from evalport.app.request import ExportRequest

    request = ExportRequest(
        ids=ids or [],
        destinations=dest or [],
        config=config,
        overrides=override or [],
        flags={
            "format": format,
            "output_dir": output_dir,
            "output_filename": output_filename,
            "log_metrics": log_metrics,
            "copy_logs": copy_logs,
            "only_required": only_required,
        },
        include_failed=include_failed,
        dry_run=dry_run,
        force=force,
    )
    service = _service(exec_db, job_dir, request)
    plan = service.plan(request)
    if not ids and not job_dir and not request.job_dirs:
        raise _Usage("give at least one invocation or job id (or --job-dir); `evalport ls` lists them")
    console = _stderr()
    if json_output or not console.is_terminal:
        report = service.run(plan)
    else:
        from evalport.app.observers import ProgressObserver

        with ProgressObserver(console) as progress:
            report = service.run(plan, progress)
    if json_output:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        from evalport.app.cli_output import print_report

        print_report(report, plan.sinks)
    return report.exit_code()


class _Usage(Exception):
    pass


@app.command(name="ls")
def list_jobs(
    ids: list[str] | None = None,
    /,
    *,
    json_output: Annotated[bool, Parameter(name="--json")] = False,
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


@app.command
def show(
    ids: list[str],
    /,
    *,
    log_metrics: list[str] | None = None,
    json_output: Annotated[bool, Parameter(name="--json")] = False,
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


@app.command
def history(
    ids: list[str] | None = None,
    /,
    *,
    limit: int = 50,
    json_output: Annotated[bool, Parameter(name="--json")] = False,
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


@app.command
def sinks() -> int:
    """List the destinations that can be exported to (built-in and plugins)."""
    import warnings

    from evalport.app.cli_output import warning
    from evalport.app.registry import MissingExtraError

    registry = _container(None, None).sinks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        catalog = registry.catalog()
    for name, cls in catalog.items():
        if isinstance(cls, MissingExtraError):
            print(f"{name:10} unavailable: {cls.hint}")
            continue
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:10} {doc[0] if doc else ''}")
    for w in caught:
        warning(w.message)
    return EXIT_OK


@app.command
def doctor(
    *,
    dest: Annotated[list[str] | None, Parameter(name=["--dest", "-d"])] = None,
    config: str | None = None,
    override: Annotated[list[str] | None, Parameter(name=["--override", "-o"])] = None,
    exec_db: ExecDb = None,
) -> int:
    """Check that each destination can be reached with the given configuration.

    Exit codes: 0 every destination ok, 1 one cannot be reached, 2 one is not installed or configured.
    """
    from evalport.app.cli_output import plain
    from evalport.app.request import ExportRequest

    request = ExportRequest(destinations=dest or [], config=config, overrides=override or [])
    plan = _service(exec_db, None, request).plan(request, lenient=True)
    err = _stderr()
    code = EXIT_OK
    built = iter(plan.sinks)
    for destination in plan.destinations:
        missing = plan.unavailable.get(destination)
        if missing is not None:
            err.print(f"[red]FAIL[/] {plain(missing)}")
            code = EXIT_USAGE
            continue
        result = next(built).check()
        mark = "[green]ok[/]" if result.ok else "[red]FAIL[/]"
        err.print(f"{mark} {plain(result.message)}")
        if not result.ok and code == EXIT_OK:
            code = EXIT_FAILED
    return code


# Loaded only when run, so `evalport --help` stays fast; the help lines are repeated for the listing.
app.command(
    "evalport.app.cli_unattended:auto_export_command",
    name="auto-export",
    help="Export one job to the destinations in its run config (the last step of a job script).\n\n"
    "Exit codes: 0 exported or nothing to do, 2 usage error, 3 the export failed (recorded in the "
    "ledger for retry; the evaluation's own result is unaffected).",
)
app.command(
    "evalport.app.cli_unattended:watch",
    name="watch",
    help="Export each newly finished job once per destination, polling until interrupted.",
)
app.command(
    "evalport.app.report_cli:report",
    name="report",
    help="Compare models across tasks: a matrix of headline scores, charts and job details.",
)


def main(argv: list[str] | None = None) -> int:
    from cyclopts import CycloptsError

    from evalport.app.interrupts import Interrupted, unwind_on_signals
    from evalport.domain.errors import UsageError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with unwind_on_signals():
            result = app(argv if argv is not None else sys.argv[1:], exit_on_error=False, print_error=True)
    except CycloptsError:
        return EXIT_USAGE
    except (UsageError, _Usage) as exc:
        from evalport.app.cli_output import error
        from evalport.domain.redact import redact_text

        error(redact_text(str(exc)))
        return EXIT_USAGE
    except Interrupted as stop:
        print(f"evalport: {stop}; temporary files removed", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("evalport: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a defect: one line naming it, not a traceback (EVALPORT_DEBUG=1 for it)
        if os.environ.get(DEBUG_ENV):
            raise
        from evalport.app.cli_output import describe_exception, error

        error(f"unexpected {describe_exception(exc)}; set {DEBUG_ENV}=1 to see where it came from")
        return EXIT_FAILED
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
