"""``evalport samples``: look at the local sample store (the samples extra: DuckDB).

``evalport samples IDS... [--task T] [--where SQL] [--diff MODEL_A MODEL_B]`` prints the samples of
the jobs (or invocations; prefixes work) from ``<output-dir>/samples``, or with ``--diff`` the samples
the two models scored differently, so a user sees which flipped. Loaded only when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from evalport.domain.errors import UsageError

EXIT_OK = 0
DEFAULT_OUTPUT_DIR = "evalport-results"
#: A text cell in the terminal table is cut to this many characters (``--json`` prints them whole).
CELL_CHARS = 60


def _short(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value).replace("\n", " ⏎ ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _store(folder: Path) -> Any:
    """The sample store under ``folder``, from the composition root."""
    from evalport.app.container import build_container

    return build_container(ledger=False).sample_queries().store(folder)


def samples(
    ids: list[str] | None = None,
    /,
    *,
    output_dir: Annotated[
        str, Parameter(name="--output-dir", help="the local sink's folder (it holds samples/)")
    ] = DEFAULT_OUTPUT_DIR,
    task: Annotated[str | None, Parameter(help="only this task")] = None,
    where: Annotated[
        str | None,
        Parameter(help="a DuckDB condition over the columns, e.g. \"score < 1 AND model LIKE 'a%'\""),
    ] = None,
    diff: Annotated[
        tuple[str, str] | None,
        Parameter(help="MODEL_A MODEL_B: the samples the two models scored differently"),
    ] = None,
    limit: Annotated[int, Parameter(help="at most this many rows (per task with --diff)")] = 50,
    json_output: Annotated[bool, Parameter(name="--json", help="print JSON instead of a table")] = False,
) -> int:
    """Show per-sample results from the local sample store, or where two models disagree."""
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    store = _store(Path(output_dir))

    wanted = list(ids or [])
    if diff is not None:
        return _diff(store, wanted, diff, task, where, limit, json_output)
    rows, total = store.rows(wanted, task=task, where=where, limit=limit)
    if wanted and not total and not where and not task:
        raise UsageError(f"no samples of {', '.join(wanted)} in {store.root}; `evalport ls` lists the ids")
    if json_output:
        from evalport.app.cli_output import print_out

        print_out(json.dumps([dict(zip(store.columns, r, strict=True)) for r in rows], indent=2, default=str))
        return EXIT_OK
    from evalport.app.cli_output import add_row, console, table

    out = table(*store.columns)
    for row in rows:
        add_row(out, *(_short(v) for v in row))
    con = console()
    con.print(out)
    con.print(f"{len(rows):,} of {total:,} samples" + (" (--limit to see more)" if total > len(rows) else ""))
    return EXIT_OK


def _diff(
    store: Any,
    ids: list[str],
    models: tuple[str, str],
    task: str | None,
    where: str | None,
    limit: int,
    json_output: bool,
) -> int:
    model_a, model_b = models
    known = store.models(ids)
    missing = [m for m in models if m not in known]
    if missing:
        shown = ", ".join(known) or "none"
        raise UsageError(f"--diff: no samples of model {missing[0]!r} here; the store's models: {shown}")
    found = store.disagreements(model_a, model_b, ids, task=task, where=where, limit=limit)
    if json_output:
        from dataclasses import asdict

        from evalport.app.cli_output import print_out

        print_out(json.dumps([asdict(t) for t in found], indent=2, default=str))
        return EXIT_OK
    from evalport.app.cli_output import add_row, console, plain, table

    con = console()
    if not found:
        con.print(plain(f"{model_a} and {model_b} share no sample (same task and sample id)"))
    for entry in found:
        con.print(
            plain(f"{entry.task}: {entry.differ:,} of {entry.shared:,} shared samples differ"),
            style="bold",
            soft_wrap=True,
        )
        if not entry.rows:
            continue
        out = table(
            "sample_id", model_a, model_b, "input", "target", f"output {model_a}", f"output {model_b}"
        )
        for d in entry.rows:
            add_row(
                out,
                *(_short(v) for v in (d.sample_id, d.score_a, d.score_b, d.input, d.target)),
                _short(d.output_a),
                _short(d.output_b),
            )
        con.print(out)
        if entry.differ > len(entry.rows):
            con.print(f"... and {entry.differ - len(entry.rows):,} more (--limit)")
    return EXIT_OK
