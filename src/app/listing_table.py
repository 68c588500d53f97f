"""The rows of ``evalport ls`` and, into a file or a pipe, the table they make, laid out directly.

rich takes seconds to lay out a team's 20,000 jobs; :func:`boxed_table` draws the same characters
in a tenth of a second. Both work column-wise in C where they can (``zip``, ``map``, ``str.join``):
the per-row Python work is what a listing of that size pays for.
"""

from __future__ import annotations

import os.path
import time
from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any

LISTING_COLUMNS = ("job", "task", "model", "state", "when / where")

Row = tuple[tuple[str, ...], str | None, bool]


def listing_rows(
    invocations: Sequence[Any], states: Mapping[str, Any], models: Mapping[str, str | None]
) -> Iterator[Row]:
    """(cells, style, ends a section) per row: a line per invocation (model, tasks, state counts,
    when), then its jobs; ids never shortened."""
    from evalport.app.cli_output import count

    home = os.path.expanduser("~")
    last = len(invocations) - 1
    for i, inv in enumerate(invocations):
        jobs = inv.jobs
        job_models = [models[j.job_id] for j in jobs]
        job_states = [states[j.job_id].value for j in jobs]
        inv_models = sorted({m for m in job_models if m})
        tally: dict[str, int] = {}
        for value in job_states:
            tally[value] = tally.get(value, 0) + 1
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(inv.timestamp)) if inv.timestamp else ""
        paths = [j.location.path for j in jobs]
        folder = common_folder(paths)
        yield (
            (
                inv.invocation_id,
                count(len(jobs), "task"),
                ", ".join(inv_models),
                ", ".join(f"{n} {state}" for state, n in sorted(tally.items())),
                "\n".join(part for part in (when, home_relative(folder, home)) if part),
            ),
            "bold",
            False,
        )
        one_model = len(inv_models) == 1  # then the invocation's line says it
        inside = folder.rstrip("/") + "/" if folder else ""
        for k, j in enumerate(jobs):
            path = paths[k]
            yield (
                (
                    j.job_id,
                    j.task_name,
                    "" if one_model else job_models[k] or "",
                    job_states[k],
                    path[len(inside) :] if inside and path.startswith(inside) else home_relative(path, home),
                ),
                None,
                k == len(jobs) - 1 and i < last,
            )


def common_folder(paths: list[str]) -> str:
    """The folder holding every job of an invocation (its run folder), or "" when they share none."""
    parents = [os.path.dirname(p) for p in paths if p]
    if not parents or len(parents) != len(paths):
        return ""
    first = parents[0]
    if first.startswith("/") and parents.count(first) == len(parents):  # the usual run folder
        common = "/" + "/".join(c for c in first.split("/") if c and c != ".")  # as commonpath says it
    else:
        common = os.path.commonpath(parents) if all(os.path.isabs(p) for p in parents) else ""
    return common if common not in ("", "/") else ""


def home_relative(path: str, home: str | None = None) -> str:
    """``path`` under the home folder as ``~/...``."""
    home = os.path.expanduser("~") if home is None else home
    if path and home not in ("", "/") and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


def boxed_table(headers: tuple[str, ...], rows: list[tuple[str, ...]], ends: list[bool]) -> str | None:
    """``rows`` under ``headers`` in the box rich draws for an unbounded width (heavy head, a rule
    after each row whose ``ends`` is true), as plain text; None when a cell holds anything but
    printable text and line breaks (rich then renders it, as it always did). Every row has a cell
    per header.

    A row of printable ASCII (nearly every row) is a "flat" row: flat rows are measured and padded
    column by column, in C (``map``, ``zip``, ``str.join``), and only the others (line breaks,
    wide characters) cell by cell in terminal columns."""
    texts = [tuple(map(str, row)) for row in rows]
    if any(len(cells) != len(headers) for cells in texts):
        raise ValueError(f"a row of cells under {len(headers)} headers holds another number of cells")
    if len(ends) != len(texts):
        raise ValueError(f"{len(ends)} section ends for {len(texts)} rows")
    flat = _flat_rows(texts, len(headers))
    widths = [_width(h) for h in headers]
    many_line: dict[int, list[list[tuple[str, int]]]] = {}
    ascii_many_line: dict[int, list[list[str]]] = {}  # padded with ``str.ljust``, as flat rows are
    for index, is_flat in enumerate(flat):
        if is_flat:
            continue
        cells = texts[index]
        if "".join(cells).isascii():
            if not "".join(cells).replace("\n", "").isprintable():
                return None
            parts = [c.split("\n") for c in cells]
            for k, cell_parts in enumerate(parts):
                widths[k] = max(widths[k], *map(len, cell_parts))
            ascii_many_line[index] = parts
            continue
        lines = [[(part, _width(part)) for part in c.split("\n")] for c in cells]
        if not all(part.isprintable() for cell in lines for part, _ in cell):
            return None
        for k, cell in enumerate(lines):
            for _, w in cell:
                if w > widths[k]:
                    widths[k] = w
        many_line[index] = lines
    flat_rows = [cells for cells, is_flat in zip(texts, flat, strict=True) if is_flat]
    columns = list(zip(*flat_rows, strict=True))
    for k, column in enumerate(columns):
        widths[k] = max(widths[k], *map(len, column))
    padded = [list(map(str.ljust, column, repeat(widths[k]))) for k, column in enumerate(columns)]
    flat_lines = iter(map("│ {} │".format, map(" │ ".join, zip(*padded, strict=True))))

    def line(parts: list[tuple[str, int]], edge: str, sep: str, end: str) -> str:
        cells = (" " + p + " " * (w - pw) + " " for (p, pw), w in zip(parts, widths, strict=True))
        return edge + sep.join(cells) + end

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    head = [(h, _width(h)) for h in headers]
    out = [rule("┏", "━", "┳", "┓"), line(head, "┃", "┃", "┃"), rule("┡", "━", "╇", "┩")]
    section = rule("├", "─", "┼", "┤")
    for index, end in enumerate(ends):
        if flat[index]:
            out.append(next(flat_lines))
        elif index in ascii_many_line:
            parts = ascii_many_line[index]
            for n in range(max(map(len, parts))):
                line_parts = [cell[n] if n < len(cell) else "" for cell in parts]
                out.append("│ " + " │ ".join(map(str.ljust, line_parts, widths)) + " │")
        else:
            laid_out = many_line[index]
            for n in range(max(len(cell) for cell in laid_out)):
                out.append(line([cell[n] if n < len(cell) else ("", 0) for cell in laid_out], "│", "│", "│"))
        if end:
            out.append(section)
    out.append(rule("└", "─", "┴", "┘"))
    return "\n".join(out)


def _flat_rows(texts: list[tuple[str, ...]], columns: int) -> list[bool]:
    """Whether each row's cells are all printable ASCII, found a column at a time: a column whose
    cells all are (most of them) costs one check of its joined text."""
    flat = [True] * len(texts)
    for column in zip(*texts, strict=True) if texts else [()] * columns:
        joined = "".join(column)
        if joined.isascii() and joined.isprintable():
            continue
        for index, cell in enumerate(column):
            if not (cell.isascii() and cell.isprintable()):
                flat[index] = False
    return flat


def _width(text: str) -> int:
    """The columns ``text`` takes on a terminal (wide characters count two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)
