"""How numbers and times read in every report format (HTML and Markdown show the same text)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

MISSING = "—"


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def fmt_value(value: float | None) -> str:
    """Four decimals for the usual 0..1000 scores; significant digits for tiny or huge values."""
    if value is None:
        return MISSING
    special = _special(value)
    if special:
        return special
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4f}"
    return f"{value:.4g}"


def fmt_stderr(stderr: float | None) -> str:
    """``± 0.0123`` or the empty string when the stderr is unknown."""
    return "" if stderr is None else f"± {fmt_value(stderr)}"


def fmt_delta(delta: float | None) -> str:
    """``+0.0100`` / ``-0.0250`` against the baseline, or the empty string."""
    if delta is None:
        return ""
    special = _special(delta)
    if special:
        return special
    if delta == 0 or 1e-3 <= abs(delta) < 1e4:
        return f"{delta:+.4f}"
    return f"{delta:+.4g}"


def fmt_time(timestamp: float | None) -> str:
    if timestamp is None:
        return MISSING
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
