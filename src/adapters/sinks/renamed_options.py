"""Old option names that keep working: each is moved to its new name with a deprecation warning.

Every remote sink spells the same idea the same way (``retries``, ``retry_wait``, ``run_name``,
``tags``); a sink that used another name before lists it here so existing configs still load.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any


class RenamedOptionWarning(DeprecationWarning):
    """An option was given under its old name; the message names the new one."""


def rename_options(values: Any, renamed: Mapping[str, str], sink: str) -> Any:
    """``values`` with each old key of ``renamed`` moved to its new key (a ``mode="before"`` validator)."""
    if not isinstance(values, Mapping) or not any(old in values for old in renamed):
        return values
    values = dict(values)
    for old, new in renamed.items():
        if old not in values:
            continue
        if new in values:
            raise ValueError(f"{old!r} is the old name of {new!r}; give only {new!r}")
        warnings.warn(
            f"{sink}: the option {old!r} is deprecated; use {new!r}", RenamedOptionWarning, stacklevel=2
        )
        values[new] = values.pop(old)
    return values
