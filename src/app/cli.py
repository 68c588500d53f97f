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
from evalport.app.cli_output import surely_not_a_terminal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEBUG_ENV = "EVALPORT_DEBUG"

app = App(
    name="evalport",
    help=(
        "Export finished LLM-evaluation results to local files, MLflow, W&B and Google Sheets.\n\n"
        "-v / --verbose (any command): also show what MLflow and W&B log."
    ),
    version=__version__,
    result_action="return_value",
    help_format="plaintext",
    suppress_keyboard_interrupt=False,  # main() turns it (and SIGTERM) into 128 + the signal's number
    # No --empty-X / --no-X twins: a flag is off unless given (tri-state ones name their negative).
    default_parameter=Parameter(negative_iterable=(), negative_bool=()),
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
ReaderOpt = Annotated[
    str | None,
    Parameter(
        name="--reader",
        help="the format every --job-dir holds: nemo_evaluator, lm_eval, inspect or nemo_engine "
        "(default: detected)",
    ),
]
Dests = Annotated[
    list[str] | None,
    Parameter(
        name=["--dest", "-d"], help="destination: local, mlflow, wandb, gsheets or a plugin (repeatable)"
    ),
]
Config = Annotated[str | None, Parameter(help="YAML/JSON file or inline JSON object")]
Overrides = Annotated[
    list[str] | None, Parameter(name=["--override", "-o"], help="KEY=VALUE over the config (repeatable)")
]
JsonOutput = Annotated[bool, Parameter(name="--json", help="print JSON instead of a table")]


def _stderr() -> Any:
    from evalport.app.cli_output import console

    return console(stderr=True)


def _container(exec_db: str | None, job_dirs: list[str] | None, request: Any = None, **options: Any) -> Any:
    """The composition root for one command; a request adds the exec DB and job dirs its config names."""
    from evalport.app.container import build_container, container_for

    if request is not None:
        return container_for(request, exec_db=exec_db, job_dirs=job_dirs or [], **options)
    return build_container(exec_db=exec_db, job_dirs=job_dirs or [], **options)


def _service(
    exec_db: str | None, job_dirs: list[str] | None, request: Any = None, reader: str | None = None
) -> Any:
    return _container(exec_db, job_dirs, request, reader=reader).service()


CompatOption = Annotated[
    Literal["evalport", "launcher"] | None,
    Parameter(help="'launcher': write nemo-evaluator-launcher 0.2.6's files, names and layouts"),
]

#: The launcher's bool flags, which also take a value as the next word (``--copy_logs False``).
LAUNCHER_BOOL_FLAGS = frozenset(
    f"--{name}{sep}{rest}"
    for name, rest in (("copy", "logs"), ("copy", "artifacts"), ("only", "required"))
    for sep in ("-", "_")
)
_BOOL_WORDS = frozenset(("yes", "true", "t", "y", "1", "no", "false", "f", "n", "0"))


def join_bool_values(args: list[str]) -> list[str]:
    """``--copy_logs False`` -> ``--copy_logs=False``, as the launcher's parser reads it (a bool
    flag followed by a yes/no word takes it as its value); anything else is left as given."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg in LAUNCHER_BOOL_FLAGS and i + 1 < len(args) and args[i + 1].strip().lower() in _BOOL_WORDS:
            out.append(f"{arg}={args[i + 1].strip()}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


@app.command
def export(
    ids: list[str] | None = None,
    /,
    *,
    dest: Dests = None,
    format: Annotated[
        Literal["json", "csv", "html", "md", "none"] | None,
        Parameter(help="local summary format (other destinations ignore it, with a note)"),
    ] = None,
    output_dir: Annotated[
        str | None, Parameter(name=["--output-dir", "--output_dir", "-out"], help="local output directory")
    ] = None,
    output_filename: Annotated[
        str | None,
        Parameter(
            name=["--output-filename", "--output_filename", "-fname"],
            help="local multi-run summary file name",
        ),
    ] = None,
    log_metrics: Annotated[
        list[str] | None,
        Parameter(name=["--log-metrics", "--log_metrics"], help="metric patterns to export (default all)"),
    ] = None,
    copy_logs: Annotated[
        bool | None,
        Parameter(
            name=["--copy-logs", "--copy_logs"],
            negative="--no-copy-logs",
            help="also send logs/ (or not; default: config); also --copy-logs=false",
        ),
    ] = None,
    copy_artifacts: Annotated[
        bool | None,
        Parameter(
            name=["--copy-artifacts", "--copy_artifacts"],
            negative="--no-copy-artifacts",
            help="send artifacts/ (default: config, else yes); the results are read either way",
        ),
    ] = None,
    only_required: Annotated[
        bool | None,
        Parameter(
            name=["--only-required", "--only_required"],
            negative="--all-artifacts",
            help="only the required artifacts (or all)",
        ),
    ] = None,
    compat: CompatOption = None,
    config: Config = None,
    override: Overrides = None,
    include_failed: Annotated[bool, Parameter(help="also export failed jobs (left out by default)")] = False,
    dry_run: Annotated[bool, Parameter(help="print what would be exported, send nothing")] = False,
    force: Annotated[bool, Parameter(help="send again what the ledger says is already there")] = False,
    json_output: Annotated[bool, Parameter(name="--json", help="print the report as JSON")] = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
    reader: ReaderOpt = None,
    job_dirs: Annotated[
        list[str] | None,
        Parameter(
            name=["--job-dirs", "--job_dirs"],
            help="a results root (the run config's execution.output_dir) searched for the ids the "
            "execution DB does not know, as the launcher does (repeatable)",
        ),
    ] = None,
) -> int:
    """Export invocations or jobs (ids or unique prefixes) to one or more destinations."""
    from evalport.app.request import ExportRequest

    flags = {
        "format": format,
        "output_dir": output_dir,
        "output_filename": output_filename,
        "log_metrics": log_metrics,
        "copy_logs": copy_logs,
        "copy_artifacts": copy_artifacts,
        "only_required": only_required,
        "compat": compat,
    }
    request = ExportRequest(
        ids=ids or [],
        destinations=dest or [],
        config=config,
        overrides=override or [],
        flags=flags,
        include_failed=include_failed,
        dry_run=dry_run,
        force=force,
        job_dirs_roots=job_dirs or [],
    )
    service = _service(exec_db, job_dir, request, reader)
    plan = service.plan(request)
    if not ids and not job_dir and not request.search_roots:
        raise _Usage("give at least one invocation or job id (or --job-dir); `evalport ls` lists them")
    report = _run(service, plan, progress=not json_output)
    if json_output:
        from evalport.app.cli_output import print_out

        print_out(json.dumps(report.to_dict(), indent=2))
    else:
        from evalport.app.cli_output import print_report

        print_report(report, plan.sinks)
    return report.exit_code()


def print_notes(plan: Any) -> None:
    """The plan's notes (a launcher option with no effect here, an old option name), each once."""
    from evalport.app.cli_output import warning

    for note in getattr(plan, "notes", ()):
        warning(note)


def _run(service: Any, plan: Any, *, progress: bool) -> Any:
    """Runs the plan, with a progress bar on a terminal (the bar is an observer, the run the same)."""
    if not progress or surely_not_a_terminal(stderr=True) or not (console := _stderr()).is_terminal:
        return service.run(plan)
    from evalport.app.observers import ProgressObserver

    with ProgressObserver(console) as observer:
        return service.run(plan, observer)


class _Usage(Exception):
    pass


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
    dest: Dests = None,
    config: Config = None,
    override: Overrides = None,
    exec_db: ExecDb = None,
) -> int:
    """Check that each destination can be reached with the given configuration.

    Exit codes: 0 every destination ok, 1 one cannot be reached, 2 one is not installed or configured.
    """
    from evalport.app.cli_output import plain
    from evalport.app.request import ExportRequest

    request = ExportRequest(destinations=dest or [], config=config, overrides=override or [])
    plan = _service(exec_db, None, request).plan(request, lenient=True)
    print_notes(plan)
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
    "evalport.app.cli_inspect:list_jobs", name="ls", help="List invocations and their jobs with state."
)
app.command("evalport.app.cli_inspect:show", name="show", help="Show the metrics of each job, as a table.")
app.command(
    "evalport.app.cli_inspect:history",
    name="history",
    help="Show what went where: the export ledger's events, newest first (optionally of some ids).",
)
app.command(
    "evalport.app.cli_samples:samples",
    name="samples",
    help="Show per-sample results from the local sample store, or where two models disagree.",
)
app.command(
    "evalport.app.report_cli:report",
    name="report",
    help="Compare models across tasks: a matrix of headline scores, charts and job details.",
)


def main(argv: list[str] | None = None) -> int:
    """Runs ``argv`` (default: this process's arguments); returns the exit code. As the console
    script (``argv`` None) the process ends next: what it built is frozen out of the collector,
    which would walk it all once more at exit (exit handlers, the SDKs' flushes, still run)."""
    try:
        return _main(argv)
    finally:
        if argv is None:
            import gc

            gc.freeze()


def _main(argv: list[str] | None) -> int:
    from cyclopts import CycloptsError

    from evalport.app.interrupts import Interrupted, unwind_on_signals
    from evalport.app.quiet import configure_sdk_logging, take_verbose_flag
    from evalport.domain.errors import UsageError

    args, verbose = take_verbose_flag(list(argv if argv is not None else sys.argv[1:]))
    args = join_bool_values(args)
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    configure_sdk_logging(verbose)
    try:
        with unwind_on_signals():
            result = app(args, exit_on_error=False, print_error=True)
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
