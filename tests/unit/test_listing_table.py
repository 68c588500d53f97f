"""`evalport ls` into a pipe lays its table out directly, character for character as rich does."""

from __future__ import annotations

import io

from rich.console import Console

from evalport.app.cli_inspect import _LISTING_COLUMNS, boxed_table
from evalport.app.cli_output import add_row, table

ROWS = [
    (("0123456789abcdef", "2 tasks", "org/model-7b", "2 succeeded", "2026-01-01 00:00\n~/runs/x"), False),
    (("0123456789abcdef.0", "gsm8k", "", "succeeded", "gsm8k.0"), False),
    (("0123456789abcdef.1", "数学", "", "failed", "数学.1"), True),
    (("fedcba9876543210", "1 task", "a [b] c", "1 running", ""), False),
    (("fedcba9876543210.0", "mmlu", "", "running", "/elsewhere/mmlu.0"), False),
]


def rich_text(rows) -> str:
    buf = io.StringIO()
    out = Console(file=buf, width=100_000, highlight=False, soft_wrap=True, color_system=None)
    listing = table(*_LISTING_COLUMNS)
    for cells, end in rows:
        add_row(listing, *cells, end_section=end)
    out.print(listing)
    return buf.getvalue()


def test_the_direct_layout_is_the_one_rich_draws():
    text = boxed_table(_LISTING_COLUMNS, [c for c, _ in ROWS], [e for _, e in ROWS])
    assert text is not None and text + "\n" == rich_text(ROWS)


def test_a_cell_with_a_control_character_is_left_to_rich():
    rows = [(("0123456789abcdef.0", "gsm\x1b[2Jk", "", "succeeded", "x"), False)]
    assert boxed_table(_LISTING_COLUMNS, [c for c, _ in rows], [e for _, e in rows]) is None
