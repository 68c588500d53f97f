"""The YAML loader for files from outside: limits on size, depth, expansion and numbers; no duplicate keys."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from evalport.adapters.files import NotRegularFileError
from evalport.adapters.formats.safe_yaml import MAX_BYTES_ENV, YamlLimitError, YamlLimits
from evalport.adapters.formats.yamlio import describe_yaml_error, load_yaml_file, load_yaml_text

EXAMPLES = Path(__file__).parents[2] / "examples" / "nel-results"


def billion_laughs(levels: int = 30) -> bytes:
    lines = [b"l0: &l0 [lol, lol]"]
    lines += [b"l%d: &l%d [*l%d, *l%d]" % (i, i, i - 1, i - 1) for i in range(1, levels)]
    return b"\n".join(lines) + b"\n"


def refused(text: bytes | str, limits: YamlLimits | None = None) -> str:
    with pytest.raises(YamlLimitError) as err:
        load_yaml_text(text, limits)
    return describe_yaml_error(err.value)


def test_the_launchers_own_files_load_exactly_as_pyyaml_loads_them():
    files = sorted(EXAMPLES.glob("*/*/artifacts/*.y*ml"))
    assert files
    for path in files:
        assert load_yaml_file(path) == yaml.safe_load(path.read_bytes()), path


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(json_like)
def test_any_plain_document_round_trips_unchanged(doc):
    assert load_yaml_text(yaml.safe_dump(doc)) == doc


def test_a_recursive_alias_is_an_error_naming_the_line():
    message = refused(b"results:\n  tasks: &loop\n    again: *loop\n")
    assert "recursive alias" in message and "line 2" in message


def test_nested_anchors_that_expand_to_billions_of_values_are_refused_at_once():
    start = time.perf_counter()
    message = refused(billion_laughs(30))
    assert "aliases are expanded" in message
    assert time.perf_counter() - start < 1.0


def test_anchors_shared_within_the_limit_still_load_and_stay_shared():
    doc = load_yaml_text(billion_laughs(10))
    assert len(doc["l9"]) == 2 and doc["l9"][0] is doc["l9"][1]


def test_a_document_nested_deeper_than_the_limit_is_refused_without_crashing_the_process():
    """libyaml's composer recurses in C: 100,000 nested brackets would kill the interpreter."""
    script = (
        "from evalport.adapters.formats.yamlio import load_yaml_text\n"
        "from evalport.adapters.formats.safe_yaml import YamlLimitError\n"
        "for doc in ('[' * 100000 + ']' * 100000, '- ' * 100000 + 'x', 'a: ' + '{b: ' * 50000 + '1' + '}' * 50000):\n"
        "    try:\n"
        "        load_yaml_text(doc)\n"
        "    except YamlLimitError as exc:\n"
        "        print(exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("nested deeper than 100 levels") == 3


def test_nesting_a_little_deeper_than_usual_is_fine_and_the_limit_is_a_setting():
    doc = "[" * 90 + "]" * 90
    assert load_yaml_text(doc) is not None
    assert "deeper than 50" in refused(doc, YamlLimits(max_depth=50))


def test_a_duplicate_key_is_an_error_naming_the_key_its_place_and_both_lines():
    message = refused(b"results:\n  tasks:\n    mmlu: {}\n    gsm8k: {}\n    mmlu: {}\n")
    assert "duplicate key 'mmlu' in results.tasks" in message
    assert "first at line 3" in message and "line 5" in message


def test_the_same_spelling_as_a_different_type_and_merge_keys_are_not_duplicates():
    assert load_yaml_text("1: int\n'1': text\n") == {1: "int", "1": "text"}
    doc = load_yaml_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n")
    assert doc["d"] == {"x": 3, "y": 2}


@pytest.mark.parametrize(
    "literal", ["9" * 400, "-" + "9" * 5000, "0x" + "f" * 300, "1.5e+400", "-2.0E+999"], ids=str.__len__
)
def test_a_number_too_large_for_a_float_is_an_error_naming_its_key_path(literal):
    message = refused(f"results:\n  tasks:\n    t:\n      - value: {literal}\n")
    assert "results.tasks.t[0].value" in message and "out of range" in message and "line 4" in message


def test_infinities_and_nan_written_as_such_and_large_finite_numbers_are_values():
    doc = load_yaml_text("a: .inf\nb: -.Inf\nc: .nan\nd: 1.0e+300\ne: " + "9" * 300 + "\n")
    assert doc["a"] == math.inf and doc["b"] == -math.inf and math.isnan(doc["c"])
    assert doc["d"] == 1e300 and doc["e"] == int("9" * 300)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "results.yml"
    path.write_text("a: 1\n" * 1000)
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    with pytest.raises(YamlLimitError) as err:
        load_yaml_file(path)
    assert "over the limit of 1,000" in str(err.value) and MAX_BYTES_ENV in str(err.value)


@pytest.mark.timeout(20)
def test_a_fifo_or_a_symlink_where_a_file_belongs_is_never_opened(tmp_path):
    fifo = tmp_path / "results.yml"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFileError) as err:
        load_yaml_file(fifo)
    assert "a FIFO" in err.value.strerror
    real = tmp_path / "real.yml"
    real.write_text("a: 1\n")
    (tmp_path / "link.yml").symlink_to(real)
    with pytest.raises(NotRegularFileError) as err:
        load_yaml_file(tmp_path / "link.yml")
    assert "symbolic link" in err.value.strerror
