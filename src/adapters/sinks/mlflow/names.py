"""Names and values MLflow accepts: metric/param keys, search-filter quoting, flattened config params.

Pure functions, no mlflow import. MLflow keys may hold letters, digits, ``_ - . /`` and spaces
(colons only off Windows, so they are replaced too, keeping one store readable everywhere), may not
normalise to another path (``a//b``, ``./a``, ``a/..``) and are at most 250 characters long.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
_DISALLOWED = re.compile(r"[^\w./\- ]")
_SUFFIX_LENGTH = 7


def _digest(text: str, length: int = 6) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def mlflow_metric_key(name: str) -> str:
    """The key MLflow stores a metric (or param) ``name`` under; a pure function of the name.

    ``pass@1`` -> ``pass_at_1``; other disallowed characters -> ``_``; empty, ``.`` and ``..``
    path segments -> ``_``; names over 250 characters are cut and get a hash of the full name.
    A valid name comes back unchanged.
    """
    key = _DISALLOWED.sub("_", name.replace("@", "_at_"))
    segments = ["_" if seg in ("", ".", "..") else seg for seg in key.split("/")]
    key = "/".join(segments)
    if len(key) > MAX_KEY_LENGTH:
        key = f"{key[: MAX_KEY_LENGTH - _SUFFIX_LENGTH]}_{_digest(name)}"
    return key


mlflow_param_key = mlflow_metric_key

_UNDERSCORES = re.compile(r"_+")


def launcher_metric_key(name: str) -> str:
    """The key nemo-evaluator-launcher 0.2.6 logs a metric ``name`` under (``compat: launcher``).

    ``pass@`` -> ``pass_at_``, characters MLflow refuses -> ``_``, runs of ``_`` -> one ``_``,
    outer spaces dropped, at most 250 characters, ``key`` when nothing is left. A path segment
    MLflow would refuse (``a//b``, ``..``) becomes ``_`` (the launcher's export of it fails).
    """
    key = _UNDERSCORES.sub("_", _DISALLOWED.sub("_", name.replace("pass@", "pass_at_"))).strip()
    key = key[:MAX_KEY_LENGTH] or "key"
    if any(seg in ("", ".", "..") for seg in key.split("/")):
        key = "/".join("_" if seg in ("", ".", "..") else seg for seg in key.split("/"))
    return key


def _with_suffix(key: str, name: str, salt: int) -> str:
    tail = f"_{_digest(name if not salt else f'{name}#{salt}')}"
    return key[: MAX_KEY_LENGTH - len(tail)] + tail


def assign_keys(names: Iterable[str], key_of: Callable[[str], str] = mlflow_metric_key) -> dict[str, str]:
    """Original name -> stored key (``key_of(name)``) for names logged together, never two names on
    one key.

    A name that needed changing and lands on a key another name of the set also
    maps to gets a short hash of its original name appended; names that were already valid keep
    their key. Deterministic: the same set of names always gives the same keys.
    """
    names = list(dict.fromkeys(names))
    keys = {n: key_of(n) for n in names}
    used = Counter(keys.values())
    for name in sorted(names):
        key = keys[name]
        if key == name or used[key] <= 1:
            continue
        salt = 0
        candidate = _with_suffix(key, name, salt)
        while used[candidate]:
            salt += 1
            candidate = _with_suffix(key, name, salt)
        used[key] -= 1
        used[candidate] += 1
        keys[name] = candidate
    return keys


def stored_run_key(key: str) -> str:
    """The run key as a run's tag holds it, and as lookups search for it: the key itself, or
    ``sha256:<hex>`` of it when it is longer than MLflow's tag value limit (so no clipping ever
    makes the tag and the lookup disagree)."""
    if len(key) <= MAX_TAG_VALUE_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def quote_filter_value(value: str) -> str:
    """A string literal for an MLflow search filter, or raise ValueError when none is exact.

    MLflow strips the surrounding quotes and does not unescape anything inside, so the only
    exact literals are ``'...'`` without ``'`` inside and ``"..."`` without ``"`` inside.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"{value!r} holds both quote characters; no exact MLflow filter literal exists")


def tag_equals_filter(tag: str, value: str) -> tuple[str, bool]:
    """(filter, exact) selecting runs whose ``tag`` equals ``value``.

    When ``value`` cannot be quoted exactly the filter is a LIKE pattern with ``_`` in place of
    quote characters (a superset), and ``exact`` is False: the caller compares the tag itself.
    """
    name = f"tags.`{tag}`"
    try:
        return f"{name} = {quote_filter_value(value)}", True
    except ValueError:
        pattern = re.sub("['\"]", "_", value)
        return f"{name} LIKE '{pattern}'", False


def tag_prefix_filter(tag: str, prefix: str) -> str | None:
    """A LIKE filter for tag values starting with ``prefix`` (None when ``prefix`` can't be quoted).

    ``%`` and ``_`` inside ``prefix`` act as wildcards, so callers compare the values they get.
    """
    try:
        return f"tags.`{tag}` LIKE {quote_filter_value(prefix + '%')}"
    except ValueError:
        return None


def clip(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, default=str)


def flatten_params(config: Mapping[str, Any], max_depth: int = 10, prefix: str = "") -> dict[str, str]:
    """A nested config as ``{"a.b.c": "value"}``; subtrees below ``max_depth`` become JSON strings.

    Lists are JSON strings (their order matters and their length varies between runs). Values
    are clipped to MLflow's param value limit. Redact the config before calling this.
    """
    out: dict[str, str] = {}

    def walk(node: Any, path: str, depth: int) -> None:
        if isinstance(node, Mapping) and node and depth < max_depth:
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k), depth + 1)
        elif path:
            out[path] = clip(_scalar(node), MAX_PARAM_VALUE_LENGTH)

    walk(config, prefix, 0)
    return out
