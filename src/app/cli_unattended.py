"""The commands that run unattended: ``auto-export`` (a job script's last step) and ``watch``.

Registered lazily in :mod:`evalport.app.cli`, so ``evalport --help`` never imports this module.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from cyclopts import Parameter

from evalport.app.cli import (
    DEBUG_ENV,
    EXIT_OK,
    CompatOption,
    Config,
    Dests,
    ExecDb,
    JobDirs,
    JsonOutput,
    Overrides,
    ReaderOpt,
    _container,
    _stderr,
)


def auto_export_command(
    *,
    job_dir: Annotated[str, Parameter(help="the job directory to export (<invocation dir>/<task>.<index>)")],
    run_config: Annotated[str | None, Parameter(help="run config (default: artifacts/metadata.yaml)")] = None,
    dest: Dests = None,
    override: Overrides = None,
    exit_code: Annotated[int | None, Parameter(help="the evaluation's own exit code, if known")] = None,
    json_output: JsonOutput = False,
    submit: Annotated[
        bool, Parameter(help="submit the export as a CPU-only Slurm job that runs after this one succeeds")
    ] = False,
    check: Annotated[
        bool, Parameter(help="say whether the submitted export job ran (exit 1 if it failed or never ran)")
    ] = False,
    after: Annotated[
        str | None, Parameter(help="--submit: the evaluation's job id (default $SLURM_JOB_ID)")
    ] = None,
    partition: Annotated[str | None, Parameter(help="--submit: the export job's partition")] = None,
    time_limit: Annotated[
        str | None, Parameter(name="--time", help="--submit: its time limit (default 00:30:00)")
    ] = None,
    account: Annotated[str | None, Parameter(help="--submit: its account")] = None,
    job_name: Annotated[str | None, Parameter(help="--submit: its name")] = None,
    sbatch_arg: Annotated[
        list[str] | None, Parameter(help="--submit: another sbatch option, e.g. --sbatch-arg=--mem=4G")
    ] = None,
    evalport_command: Annotated[
        str | None, Parameter(help="--submit: the command that runs evalport on the CPU node")
    ] = None,
    compat: CompatOption = None,
) -> int:
    """Export one job to the destinations in its run config (the last step of a job script).

    With --submit, the export runs as its own CPU-only Slurm job after this one succeeds; --check
    later says whether it ran. Exit codes: 0 exported, submitted or nothing to do, 1 (--check) the
    export job failed or never ran, 2 usage error, 3 the export (or its submission) failed
    (recorded for retry; the evaluation's own result is unaffected).
    """
    from evalport.app.autoexport import EXIT_EXPORT_FAILED, auto_export
    from evalport.app.cli_output import describe_exception, error, plain
    from evalport.domain.errors import UsageError

    if submit and check:
        raise UsageError("give --submit (in the job script) or --check (later), not both")
    if check:
        return _check_command(job_dir, json_output)
    if submit:
        flags = {
            "partition": partition,
            "time": time_limit,
            "account": account,
            "job_name": job_name,
            "sbatch_args": sbatch_arg,
            "evalport_command": evalport_command,
        }
        overrides = [*(override or []), *([f"compat={compat}"] if compat else [])]
        return _submit_command(job_dir, run_config, dest or [], overrides, after, flags, json_output)
    try:
        result = auto_export(
            job_dir,
            run_config=run_config,
            destinations=dest or [],
            overrides=override or [],
            exit_code=exit_code,
            flags={"compat": compat},
        )
    except UsageError:
        raise
    except Exception as exc:  # the job script's last step: a line and exit 3, never a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        message = f"auto-export of {job_dir} failed: {describe_exception(exc)}"
        if json_output:
            print(json.dumps({"ok": False, "outcomes": [], "job_id": None, "message": message}, indent=2))
        else:
            error(message)
        return EXIT_EXPORT_FAILED
    if json_output:
        body = result.report.to_dict() if result.report else {"ok": True, "outcomes": []}
        print(json.dumps({**body, "job_id": result.job_id, "message": result.message}, indent=2))
    elif result.report is None:
        print(result.message)
    else:
        from evalport.app.cli_output import warning

        for note in result.report.notes:
            warning(note)
        for o in result.report.outcomes:
            line = f"{o.job_id} -> {o.destination}: {o.status.value}" + (f" ({o.reason})" if o.reason else "")
            if o.status.value == "failed":
                _stderr().print(plain(line))
            else:
                print(line)
    return result.exit_code


def _submit_command(
    job_dir: str,
    run_config: str | None,
    dests: list[str],
    overrides: list[str],
    after: str | None,
    flags: dict[str, Any],
    json_output: bool,
) -> int:
    from evalport.app.autoexport import EXIT_EXPORT_FAILED, submit_auto_export
    from evalport.app.cli_output import describe_exception, error
    from evalport.domain.errors import UsageError

    try:
        result = submit_auto_export(
            job_dir,
            run_config=run_config,
            destinations=dests,
            overrides=overrides,
            after=after,
            options=flags,
        )
    except UsageError:
        raise
    except Exception as exc:  # a job script's step: a line and exit 3, never a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        message = f"auto-export --submit for {job_dir} failed: {describe_exception(exc)}"
        if json_output:
            print(json.dumps({"ok": False, "export_job": None, "message": message}, indent=2))
        else:
            error(message)
        return EXIT_EXPORT_FAILED
    if json_output:
        body = result.submission.to_dict() if result.submission else {}
        print(json.dumps({"ok": True, **body, "message": result.message}, indent=2))
    else:
        print(result.message, flush=True)
    return EXIT_OK


def _check_command(job_dir: str, json_output: bool) -> int:
    from evalport.app.cli_output import plain
    from evalport.app.submit_check import check

    report = check(job_dir)
    if json_output:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.exit_code:
        _stderr().print(plain(report.message))
    else:
        print(report.message)
    return report.exit_code


def watch(
    *,
    dest: Dests = None,
    interval: Annotated[float, Parameter(help="seconds between polls")] = 30.0,
    config: Config = None,
    override: Overrides = None,
    output_dir: Annotated[str | None, Parameter(help="local output directory")] = None,
    include_failed: Annotated[bool, Parameter(help="also export failed jobs (left out by default)")] = False,
    once: Annotated[bool, Parameter(help="one poll, then exit")] = False,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
    reader: ReaderOpt = None,
    compat: CompatOption = None,
) -> int:
    """Export each newly finished job once per destination, polling until interrupted."""
    import signal

    from evalport.app.cli_output import warning
    from evalport.app.request import ExportRequest
    from evalport.app.unattended import require_explicit_stores
    from evalport.app.watch import Watcher, check_interval

    check_interval(interval)
    request = ExportRequest(
        destinations=dest or [],
        config=config,
        overrides=override or [],
        flags={"output_dir": output_dir, "compat": compat},
        include_failed=include_failed,
    )
    plan = _container(exec_db, job_dir, request, reader=reader).service().plan(request)
    require_explicit_stores(plan, "watch")
    for note in plan.notes:
        warning(note)

    def make_service() -> Any:
        return _container(exec_db, job_dir, request, reader=reader).service()

    def show(o: Any) -> None:
        if o.status.value in ("exported", "updated", "failed"):
            print(
                f"{o.job_id} -> {o.destination}: {o.status.value}" + (f" ({o.reason})" if o.reason else ""),
                flush=True,
            )

    watcher = Watcher(
        make_service,
        plan.sinks,
        interval=interval,
        include_failed=include_failed,
        on_outcome=show,
        on_warning=warning,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: watcher.stop.set())
    if not once:
        print(
            f"watching for finished jobs every {interval:g}s; exporting to {', '.join(plan.destinations)}",
            flush=True,
        )
    watcher.run(max_cycles=1 if once else None)
    return EXIT_OK
