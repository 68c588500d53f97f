"""What the ``evalport`` command prints: consoles, warnings and errors, the export report.

Text that comes from data (ids, paths, reasons) is escaped, never read as rich markup, so a reason
holding ``[/x]`` or ``evalport[gsheets]`` prints as written. On a terminal, tables fit the window
and fold long cells; anywhere else (pipes, files, CI logs) nothing is wrapped or cut at 80 columns:
lines keep their length and tables their natural width, so a failure reason is always whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Wide enough that no line is ever wrapped; rich pads nothing to this width.
_UNBOUNDED_WIDTH = 1_000_000


# Columns holding what a user types next: never folded or cut, whatever the width.
ID_COLUMNS = frozenset({"job", "invocation", "id"})


def console(stderr: bool = False) -> Any:
    out = _console_class()(stderr=stderr, highlight=False)
    if not out.is_terminal:
        out.width = _UNBOUNDED_WIDTH
        out.soft_wrap = True
    return out


def surely_not_a_terminal(stderr: bool = False) -> bool:
    """True when ``console(stderr).is_terminal`` is certainly False, known without importing rich
    (0.03 s of ``ls | cat``): by rich's own rules, a stream that is no tty is no terminal unless
    ``TTY_COMPATIBLE=1`` or ``FORCE_COLOR`` says it is. False means "ask rich"."""
    import os
    import sys

    if os.environ.get("TTY_COMPATIBLE", "") == "1" or os.environ.get("FORCE_COLOR") is not None:
        return False
    isatty = getattr(sys.stderr if stderr else sys.stdout, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # a closed stream: rich says no terminal either
        return True


def _console_class() -> Any:
    """A rich Console whose output into a closed pipe (``| head``) ends the command quietly."""
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        class PipeSafeConsole(Console):
            def on_broken_pipe(self) -> None:  # rich's own exits 1
                self.quiet = True
                reader_gone(self.file)

        _CONSOLE = PipeSafeConsole
    return _CONSOLE


_CONSOLE: Any = None


def reader_gone(stream: Any = None) -> None:
    """The reader of ``stream`` (stdout by default) went away, as ``head`` does: exit 0, no traceback.

    The stream is pointed at /dev/null first, so the interpreter's last flush cannot fail again.
    """
    import os
    import sys

    stream = stream or sys.stdout
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):
        pass
    raise SystemExit(0)


def print_out(text: str) -> None:
    """``text`` and a newline on stdout, flushed; a closed pipe ends the command quietly."""
    import sys

    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        reader_gone()


def plain(text: object) -> str:
    """``text`` with rich markup escaped."""
    from rich.markup import escape

    return escape(str(text))


def count(n: int, noun: str) -> str:
    """``1 model``, ``2 models``: a number and its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def error(message: object) -> None:
    if not _as_is(f"error: {message}", stderr=True):
        console(stderr=True).print(f"[red]error:[/] {plain(message)}", soft_wrap=True)


def warning(message: object) -> None:
    """One line, whatever its length: the terminal wraps it, rich never breaks it mid-sentence."""
    if not _as_is(f"warning: {message}", stderr=True):
        console(stderr=True).print(f"[yellow]warning:[/] {plain(message)}", soft_wrap=True)


#: The control codes rich drops from any text it prints (bell, backspace, vertical tab, form feed, CR).
_CONTROL_CODES = dict.fromkeys((7, 8, 11, 12, 13))


def _as_is(line: str, stderr: bool = False) -> bool:
    """Writes ``line`` unstyled when the stream is surely no terminal (what rich would print
    there, without importing it: 0.02 s of every piped or scripted command); False: ask rich."""
    import sys

    if not surely_not_a_terminal(stderr):
        return False
    stream = sys.stderr if stderr else sys.stdout
    try:
        stream.write(line.translate(_CONTROL_CODES) + "\n")
        stream.flush()
    except BrokenPipeError:
        reader_gone(stream)
    return True


def table(*columns: str, title: str | None = None) -> Any:
    """A table whose cells fold on a terminal instead of ending in an ellipsis; ids (``ID_COLUMNS``)
    are never folded nor cut: the other columns give way."""
    from rich.table import Column, Table

    return Table(
        *(
            Column(c, no_wrap=True, min_width=len(c)) if c in ID_COLUMNS else Column(c, overflow="fold")
            for c in columns
        ),
        title=plain(title) if title else None,
    )


def add_row(into: Any, *cells: object, markup: bool = False, **options: Any) -> None:
    """A row of ``cells`` (escaped unless ``markup``); an id column widens to hold the id whole."""
    texts = [str(c) if markup else plain(c) for c in cells]
    for column, cell in zip(into.columns, cells, strict=False):
        if column.no_wrap:
            column.min_width = max(column.min_width or 0, len(str(cell)))
    into.add_row(*texts, **options)


def print_report(report: Any, sinks: Sequence[Any]) -> None:
    """Problems and notable outcomes (failed, skipped, planned) as a table, then one line per sink."""
    for problem in report.problems:
        error(problem)
    notable = [o for o in report.outcomes if o.status.value in ("failed", "skipped", "planned")]
    if notable:
        out, err = console(), console(stderr=True)
        rows = table("job", "destination", "status", "reason")
        for o in notable:
            style = {"failed": "red", "skipped": "yellow"}.get(o.status.value, "")
            status = f"[{style}]{o.status.value}[/]" if style else o.status.value
            add_row(rows, plain(o.job_id), plain(o.destination), status, plain(o.reason), markup=True)
        (err if report.failed else out).print(rows)
    for sink in sinks:
        counts: dict[str, int] = {}
        for o in report.for_destination(sink.destination):
            counts[o.status.value] = counts.get(o.status.value, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to export"
        where = getattr(sink, "describe", lambda: "")()
        line = f"{sink.destination}: {summary}" + (f" -> {where}" if where else "")
        if not _as_is(line):
            console().print(plain(line), soft_wrap=True)
    for note in report.notes:
        warning(note)


def describe_exception(exc: BaseException) -> str:
    """One line for an exception nobody expected, secrets masked."""
    from evalport.domain.redact import redact_text

    text = " ".join(str(exc).split()) or "(no message)"
    return redact_text(f"{type(exc).__name__}: {text}")
