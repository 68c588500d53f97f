"""The one-pass builder (check and construct together) gives exactly PyYAML's safe values."""

from __future__ import annotations

import math

import pytest
import yaml

from evalport.adapters.formats.safe_yaml import YamlLimitError, YamlLimits, load_yaml_bytes

DOCS = [
    "a: 1\nb: -2\nc: +3\nd: 0\ne: 010\nf: 0x1F\ng: 1_000\nh: 1:30\ni: 0o17\nj: -0\nk: 12345678901234567890123\n",
    "a: 1.5\nb: .inf\nc: -.Inf\nd: 1e3\ne: 6.02e+23\nf: 1_0.5\ng: 1:30.5\n",
    "a: 0.1758\nb: -1.5e-05\nc: +2.0\nd: -0.0\ne: 1.\nf: 1.5E+3\ng: 0.000\nh: 007.50\n",
    "a: yes\nb: No\nc: TRUE\nd: off\ne: true\nf: false\n",
    "a: ~\nb: null\nc:\nd: Null\n",
    "a: 2026-01-01\nb: 2026-01-01 10:00:00\nc: !!binary aGVsbG8=\n",
    "a: '010'\nb: \"1\"\nc: !!str 5\nd: !!int '7'\ne: !!float '2'\n",
    "- [1, 2, {a: b}]\n- {x: [y, z]}\n- - - deep\n",
    "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
    "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\n",
    "? [a, b]\n: c\n",
    "plain scalar\n",
    "",
    "{}\n",
    "[]\n",
]


REFUSED = object()


def _pyyaml_or_its_error(text: str):
    """PyYAML's value of ``text``; when PyYAML refuses it, checks that evalport refuses it too
    and returns :data:`REFUSED`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(yaml.YAMLError):
            load_yaml_bytes(text.encode())
        return REFUSED


@pytest.mark.parametrize("text", DOCS)
def test_every_value_is_what_pyyaml_safe_load_gives(text):
    want = _pyyaml_or_its_error(text)
    if want is REFUSED:
        return
    got = load_yaml_bytes(text.encode())
    assert got == want or (isinstance(want, float) and math.isnan(want))
    assert repr(got) == repr(want)


def test_a_duplicate_key_is_still_an_error_naming_it():
    with pytest.raises(YamlLimitError, match="duplicate key 'a'"):
        load_yaml_bytes(b"x:\n  a: 1\n  a: 2\n")


def test_nesting_and_node_limits_still_hold_in_one_pass():
    with pytest.raises(YamlLimitError, match="deeper than 3"):
        load_yaml_bytes(b"a: {b: {c: {d: 1}}}\n", YamlLimits(max_depth=3))
    with pytest.raises(YamlLimitError, match="more than 5"):
        load_yaml_bytes(b"[1, 2, 3, 4, 5, 6]\n", YamlLimits(max_nodes=5))


def test_a_number_out_of_range_is_still_an_error():
    with pytest.raises(YamlLimitError, match="out of range"):
        load_yaml_bytes(b"a: 1.0e+400\n")


def test_any_number_like_plain_scalar_loads_as_pyyaml_loads_it():
    """Floats take a shortcut for the shapes dumpers write; every other spelling, PyYAML's path."""
    import random

    rng = random.Random(16)
    for _ in range(3000):
        value = "".join(rng.choice("0123456789.eE+-_:") for _ in range(rng.randint(1, 9)))
        text = f"a: {value}\n"
        want = _pyyaml_or_its_error(text)
        if want is REFUSED:
            continue
        if isinstance(want["a"], float) and math.isinf(want["a"]) and "inf" not in value.lower():
            with pytest.raises(YamlLimitError, match="out of range"):
                load_yaml_bytes(text.encode())
            continue
        assert repr(load_yaml_bytes(text.encode())) == repr(want), value
