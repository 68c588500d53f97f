"""`evalport ls` into a pipe lays its table out directly, character for character as rich does."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from evalport.app.cli_output import add_row, table
from evalport.app.listing_table import LISTING_COLUMNS as _LISTING_COLUMNS
from evalport.app.listing_table import boxed_table

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


_CELL_TEXT = st.text(st.sampled_from([*"ab .-/~[]0", "\n", "数", "é", "\x1b", "\t", "\u200b"]), max_size=8)

# ids are one line (rich measures an id column's cells whole, line breaks included)
_ID_TEXT = st.text(st.sampled_from([*"0123abc.", "数"]), max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.tuples(_ID_TEXT, *[_CELL_TEXT] * (len(_LISTING_COLUMNS) - 1)), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_any_mix_of_one_line_many_line_and_wide_rows_is_laid_out_as_rich_lays_it_out(rows):
    rows[-1] = (rows[-1][0], False)  # as in ls: no rule under the last row
    text = boxed_table(_LISTING_COLUMNS, [c for c, _ in rows], [e for _, e in rows])
    printable = all(part.isprintable() for cells, _ in rows for cell in cells for part in cell.split("\n"))
    assert (text is not None) == printable
    if text is not None:
        assert text + "\n" == rich_text(rows)
