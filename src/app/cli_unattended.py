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
    Config,
    Dests,
    ExecDb,
    JobDirs,
    JsonOutput,
    Overrides,
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
) -> int:
    """Export one job to the destinations in its run config (the last step of a job script).

    Exit codes: 0 exported or nothing to do, 2 usage error, 3 the export failed (recorded in the
    ledger for retry; the evaluation's own result is unaffected).
    """
    from evalport.app.autoexport import EXIT_EXPORT_FAILED, auto_export
    from evalport.app.cli_output import describe_exception, error, plain
    from evalport.domain.errors import UsageError

    try:
        result = auto_export(
            job_dir,
            run_config=run_config,
            destinations=dest or [],
            overrides=override or [],
            exit_code=exit_code,
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
        for o in result.report.outcomes:
            line = f"{o.job_id} -> {o.destination}: {o.status.value}" + (f" ({o.reason})" if o.reason else "")
            if o.status.value == "failed":
                _stderr().print(plain(line))
            else:
                print(line)
    return result.exit_code


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
        flags={"output_dir": output_dir},
        include_failed=include_failed,
    )
    plan = _container(exec_db, job_dir, request).service().plan(request)
    require_explicit_stores(plan, "watch")

    def make_service() -> Any:
        return _container(exec_db, job_dir, request).service()

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
