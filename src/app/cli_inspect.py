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
    ReaderOpt,
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
    reader: ReaderOpt = None,
) -> int:
    """List invocations and their jobs with state."""
    from evalport.domain.collector import fewer_collections

    with fewer_collections():  # a team's DB: tens of thousands of records, rows and cells
        return _list_jobs(ids, json_output, exec_db, job_dir, reader)


def _list_jobs(
    ids: list[str] | None,
    json_output: bool,
    exec_db: str | None,
    job_dir: list[str] | None,
    reader: str | None = None,
) -> int:
    from evalport.app.cli_output import console, error, print_out
    from evalport.domain.model import group_invocations

    container = _container(exec_db, job_dir, reader=reader)
    service = container.service()
    if not ids and not job_dir and _no_exec_db(service.source, exec_db):
        return EXIT_OK
    # the named jobs, or else every job; each --job-dir given must be a job
    if ids:
        _read_only_wanted_lines(service.source)
    named, errors = service.resolve_or_raise(ids or []) if ids or job_dir else ([], [])
    jobs = named if ids else service.source.list_jobs()
    for e in errors:
        error(e)
    _warn_source(service)
    states = service.source.job_states(jobs)
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
        _print_invocations(console(), invocations, states, models)
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


_LISTING_COLUMNS = ("job", "task", "model", "state", "when / where")


def _print_invocations(
    out: Any, invocations: list[Any], states: dict[str, Any], models: dict[str, str | None]
) -> None:
    """The listing as a table. Into a file or a pipe (no width to fold to, no styles), the same
    table is laid out here directly: rich takes seconds for a team's 20,000 jobs."""
    rows = list(_listing_rows(invocations, states, models))
    if not out.is_terminal:
        text = boxed_table(_LISTING_COLUMNS, [cells for cells, _, _ in rows], [end for _, _, end in rows])
        if text is not None:
            from evalport.app.cli_output import print_out

            print_out(text)
            return
    from evalport.app.cli_output import add_row, table

    listing = table(*_LISTING_COLUMNS)
    for cells, style, end in rows:
        add_row(listing, *cells, style=style, end_section=end)
    out.print(listing)


def _listing_rows(invocations: list[Any], states: dict[str, Any], models: dict[str, str | None]) -> Any:
    """(cells, style, ends a section) per row: a line per invocation (model, tasks, state counts,
    when), then its jobs; ids never shortened."""
    import time

    from evalport.app.cli_output import count

    for i, inv in enumerate(invocations):
        inv_models = sorted({m for j in inv.jobs if (m := models[j.job_id])})
        tally: dict[str, int] = {}
        for j in inv.jobs:
            value = states[j.job_id].value
            tally[value] = tally.get(value, 0) + 1
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(inv.timestamp)) if inv.timestamp else ""
        folder = _common_folder([j.location.path for j in inv.jobs])
        yield (
            (
                inv.invocation_id,
                count(len(inv.jobs), "task"),
                ", ".join(inv_models),
                ", ".join(f"{n} {state}" for state, n in sorted(tally.items())),
                "\n".join(part for part in (when, _home_relative(folder)) if part),
            ),
            "bold",
            False,
        )
        for j in inv.jobs:
            yield (
                (
                    j.job_id,
                    j.task_name,
                    "" if len(inv_models) == 1 else models[j.job_id] or "",  # one model: its line says it
                    states[j.job_id].value,
                    _below(j.location.path, folder),
                ),
                None,
                j is inv.jobs[-1] and i < len(invocations) - 1,
            )


def boxed_table(headers: tuple[str, ...], rows: list[tuple[str, ...]], ends: list[bool]) -> str | None:
    """``rows`` under ``headers`` in the box rich draws for an unbounded width (heavy head, a rule
    after each row whose ``ends`` is true), as plain text; None when a cell holds anything but
    printable text and line breaks (rich then renders it, as it always did).

    A row of printable ASCII on one line (nearly every row) is measured and padded with ``len``
    and ``str.ljust`` over the whole row at once; other rows cell by cell."""
    widths = [_width(h) for h in headers]
    prepared: list[tuple[str, ...] | list[list[tuple[str, int]]]] = []
    for row in rows:
        cells = tuple(map(str, row))
        joined = "".join(cells)
        if joined.isascii() and joined.isprintable():
            widths = list(map(max, widths, map(len, cells)))
            prepared.append(cells)
            continue
        lines = [[(part, _width(part)) for part in c.split("\n")] for c in cells]
        if not all(part.isprintable() for cell in lines for part, _ in cell):
            return None
        for k, cell in enumerate(lines):
            for _, w in cell:
                if w > widths[k]:
                    widths[k] = w
        prepared.append(lines)

    def line(parts: list[tuple[str, int]], edge: str, sep: str, end: str) -> str:
        padded = (" " + p + " " * (w - pw) + " " for (p, pw), w in zip(parts, widths, strict=True))
        return edge + sep.join(padded) + end

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    head = [(h, _width(h)) for h in headers]
    out = [rule("┏", "━", "┳", "┓"), line(head, "┃", "┃", "┃"), rule("┡", "━", "╇", "┩")]
    section = rule("├", "─", "┼", "┤")
    for laid_out, end in zip(prepared, ends, strict=True):
        if isinstance(laid_out, tuple):
            out.append("│ " + " │ ".join(map(str.ljust, laid_out, widths)) + " │")
        else:
            for n in range(max(len(cell) for cell in laid_out)):
                out.append(line([cell[n] if n < len(cell) else ("", 0) for cell in laid_out], "│", "│", "│"))
        if end:
            out.append(section)
    out.append(rule("└", "─", "┴", "┘"))
    return "\n".join(out)


def _width(text: str) -> int:
    """The columns ``text`` takes on a terminal (wide characters count two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _read_only_wanted_lines(source: Any) -> None:
    """Lets a source that can (the local and slurm ones) read only the execution-DB lines that could
    name the ids asked for: a look at a few jobs of a team's DB then costs a search, not a parse of
    every line. Problems of the lines not read are reported by ``ls`` and by exports."""
    if hasattr(type(source), "only_wanted_lines"):
        source.only_wanted_lines = True


def _common_folder(paths: list[str]) -> str:
    """The folder holding every job of an invocation (its run folder), or "" when they share none."""
    import os.path

    parents = [os.path.dirname(p) for p in paths if p]
    if not parents or len(parents) != len(paths):
        return ""
    first = parents[0]
    if first.startswith("/") and parents.count(first) == len(parents):  # the usual run folder
        common = "/" + "/".join(c for c in first.split("/") if c and c != ".")  # as commonpath says it
    else:
        common = os.path.commonpath(parents) if all(os.path.isabs(p) for p in parents) else ""
    return common if common not in ("", "/") else ""


def _below(path: str, folder: str) -> str:
    """A job's folder named relative to its invocation's (``mmlu_pro.0``), else in full: the
    invocation line above gives the rest, so narrow terminals are not filled with folded paths."""
    if folder and path.startswith(folder.rstrip("/") + "/"):
        return path[len(folder.rstrip("/")) + 1 :]
    return _home_relative(path)


def _home_relative(path: str) -> str:
    import os.path

    home = os.path.expanduser("~")
    if path and home not in ("", "/") and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


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
