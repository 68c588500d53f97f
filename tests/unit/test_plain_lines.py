"""Into a pipe or a file, warnings, errors and the report's summary lines are written without rich:
the same characters rich writes there, text from data printed as it was written."""

from __future__ import annotations

import io

import pytest

from evalport.app import cli_output
from evalport.app.cli_output import error, plain, print_report, warning
from evalport.domain.report import ExportReport, Outcome, Status

MESSAGES = [
    "a plain reason",
    "evalport[gsheets] is not installed; pip install 'evalport[gsheets]'",
    "a reason holding [/x] and [bold]markup[/bold]",
    "a long line " * 40,
    "a bell\x07, a backspace\x08, a carriage return\r and a form feed\x0c",
]


def _what_rich_writes(markup: str) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, highlight=False, width=1_000_000, soft_wrap=True).print(markup, soft_wrap=True)
    return out.getvalue()


@pytest.mark.parametrize("message", MESSAGES, ids=range(len(MESSAGES)))
@pytest.mark.parametrize(
    ("say", "prefix", "style"), [(warning, "warning:", "yellow"), (error, "error:", "red")]
)
def test_a_warning_or_error_into_a_pipe_is_what_rich_would_write(capsys, message, say, prefix, style):
    say(message)
    assert capsys.readouterr().err == _what_rich_writes(f"[{style}]{prefix}[/] {plain(message)}")


def test_text_that_rich_would_take_for_an_emoji_code_is_printed_as_written(capsys):
    warning("the run :thumbs_up: of job a.0")
    assert capsys.readouterr().err == "warning: the run :thumbs_up: of job a.0\n"


class _Sink:
    destination = "local"

    def describe(self) -> str:
        return "/out/results.json"


def test_the_summary_line_of_a_destination_into_a_pipe_is_what_rich_would_write(capsys):
    report = ExportReport()
    report.add([Outcome("a.0", "local", Status.EXPORTED), Outcome("a.1", "local", Status.UNCHANGED)])
    print_report(report, [_Sink()])
    line = "local: 1 exported, 1 unchanged -> /out/results.json"
    assert capsys.readouterr().out == _what_rich_writes(plain(line))


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch):
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

        def fileno(self) -> int:
            raise OSError

    monkeypatch.setattr("sys.stderr", Closed())
    with pytest.raises(SystemExit) as stopped:
        cli_output.warning("nobody reads this")
    assert stopped.value.code == 0
