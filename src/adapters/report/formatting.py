"""How numbers and times read in every report format (HTML and Markdown show the same text)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

MISSING = "—"


def _number(value: float, sign: str = "") -> str:
    """Four decimals for the usual 0..1000 scores, significant digits for tiny or huge values;
    ``sign="+"`` writes the sign of a positive number too (a difference)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:{sign}.4f}"
    return f"{value:{sign}.4g}"


def fmt_value(value: float | None) -> str:
    """A score as the reports show it, or the missing mark."""
    return MISSING if value is None else _number(value)


def fmt_stderr(stderr: float | None) -> str:
    """``± 0.0123`` or the empty string when the stderr is unknown."""
    return "" if stderr is None else f"± {fmt_value(stderr)}"


def fmt_delta(delta: float | None) -> str:
    """``+0.0100`` / ``-0.0250`` against the baseline, or the empty string."""
    return "" if delta is None else _number(delta, "+")


def fmt_time(timestamp: float | None) -> str:
    if timestamp is None:
        return MISSING
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def counted(n: int, noun: str) -> str:
    """``1 model``, ``2 models``: a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
