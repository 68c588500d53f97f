"""The execution DB's per-line shortcuts say what the plain reading says, on any line."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from evalport.adapters.sources.execdb import _escaped_lines, _loads, named_job, named_job_in
from evalport.adapters.sources.records import _plain_ids, check_path_component, consistency_problem

_PIECES = [
    b'"job_id"',
    b'"job_id": "',
    b'"job_id" : "',
    b'"job_id":"',
    b'"job\\u005fid"',
    b"\\u00e9",
    b"\\u",
    b'"',
    b"\\",
    b"abc.0",
    b"0123abcd.1",
    b"{",
    b"}",
    b", ",
    b": ",
    b" ",
    b"\t",
    b"\r",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\x00",
    "数".encode(),
    b"1",
    b"null",
    b"[",
    b"]",
]
lines = st.lists(st.sampled_from(_PIECES) | st.binary(max_size=3), max_size=14).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(before=lines, line=lines, after=lines)
def test_the_job_a_line_names_in_place_is_the_job_its_copy_names(before, line, after):
    text = (
        before.replace(b"\n", b" ") + b"\n" + line.replace(b"\n", b" ") + b"\n" + after.replace(b"\n", b" ")
    )
    start = text.index(b"\n") + 1
    end = text.index(b"\n", start)
    escaped = start in _escaped_lines(text, len(text))
    assert escaped == (b"\\u" in text[start:end])
    assert named_job_in(text, start, end, escaped) == named_job(text[start:end])


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
encodings = st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "utf-8-sig"])


@settings(max_examples=600, deadline=None)
@given(
    raw=lines
    | st.tuples(
        json_values, st.booleans(), st.sampled_from(["", " ", "\r", " \n", "x", "\x0b"]), encodings
    ).map(
        lambda t: (("  " if t[1] else "") + json.dumps(t[0], ensure_ascii=t[1]) + t[2]).encode(
            t[3], "surrogatepass"
        )
    )
)
def test_a_line_decodes_to_what_json_loads_gives_or_fails_as_it_fails(raw):
    try:
        expected: object = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        expected = exc
    try:
        got: object = _loads(raw)
    except (ValueError, RecursionError) as exc:
        got = exc
    if isinstance(expected, Exception):
        assert type(got) is type(expected) and str(got) == str(expected)
    else:
        assert _same(got, expected) or json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


_ID_CHARS = st.sampled_from([*"0a9Z.", "/", "\\", "\x00", " ", "é", "٣", "-"])


@settings(max_examples=600, deadline=None)
@given(invocation=st.text(_ID_CHARS, max_size=6), tail=st.text(_ID_CHARS, max_size=4), long=st.booleans())
def test_ids_taken_at_a_glance_are_ids_the_full_checks_accept(invocation, tail, long):
    invocation = invocation * 60 if long else invocation
    job_id = f"{invocation}.{tail}"
    if _plain_ids(job_id, invocation):
        assert check_path_component(job_id) and check_path_component(invocation)
        assert not consistency_problem(job_id, invocation, {})
