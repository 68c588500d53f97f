"""``surely_not_a_terminal``: the check without rich agrees with rich's ``Console.is_terminal``
whenever it answers (it may only say "ask rich"), for ttys, pipes and the variables rich reads."""

from __future__ import annotations

import os
import sys

import pytest

from evalport.app.cli_output import console, surely_not_a_terminal

ENVIRONMENTS = [
    {},
    {"FORCE_COLOR": "1"},
    {"FORCE_COLOR": ""},
    {"TTY_COMPATIBLE": "1"},
    {"TTY_COMPATIBLE": "0"},
    {"TTY_COMPATIBLE": "2"},
    {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"},
]


@pytest.fixture(params=["pipe", "tty"])
def stream(request):
    """A pipe's write end, or a pseudo-terminal (its other end kept open: a tty then)."""
    first, second = os.openpty() if request.param == "tty" else os.pipe()
    with open(second, "w", encoding="utf-8") as opened:
        yield request.param, opened
    os.close(first)


def _as_stdout(stream, monkeypatch) -> str:
    """``stream`` made stdout in the test itself (pytest's capture resets stdout after fixtures)."""
    kind, opened = stream
    monkeypatch.setattr(sys, "stdout", opened)
    return kind


@pytest.mark.parametrize(
    "environment", ENVIRONMENTS, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items())
)
def test_a_stream_said_to_be_no_terminal_is_none_to_rich_either(stream, environment, monkeypatch):
    _as_stdout(stream, monkeypatch)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if surely_not_a_terminal():
        assert not console().is_terminal


def test_a_pipe_with_no_variables_set_is_known_to_be_no_terminal(stream, monkeypatch):
    stdout_kind = _as_stdout(stream, monkeypatch)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert surely_not_a_terminal() is (stdout_kind == "pipe")
    assert console().is_terminal is (stdout_kind == "tty")
