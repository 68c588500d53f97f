"""YAML loading for evalport: libyaml when PyYAML has it, always with the limits of :mod:`safe_yaml`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from evalport.adapters.files import FileTooLargeError, read_regular_file_stat
from evalport.adapters.formats.safe_yaml import YamlLimitError, YamlLimits, load_yaml_bytes, too_large


def load_yaml_text(text: str | bytes, limits: YamlLimits | None = None) -> Any:
    return load_yaml_bytes(text, limits)


def load_yaml_file(path: Path, limits: YamlLimits | None = None) -> Any:
    """The document in ``path``; only a regular file is opened, and its size is checked first.

    Raises ``OSError`` (``FileNotFoundError``, :class:`~evalport.adapters.files.NotRegularFileError`)
    when it cannot be read, ``yaml.YAMLError`` (:class:`YamlLimitError` included) when it is no
    acceptable YAML.
    """
    return load_yaml_file_stat(path, limits)[0]


def load_yaml_file_stat(path: Path, limits: YamlLimits | None = None) -> tuple[Any, bytes, os.stat_result]:
    """:func:`load_yaml_file`, with the bytes parsed and the file's stat when it was opened."""
    limits = limits or YamlLimits.from_env()
    try:
        data, st = read_regular_file_stat(path, limits.max_bytes)
    except FileTooLargeError as exc:
        raise YamlLimitError(too_large(exc.size, limits)) from None
    return load_yaml_bytes(data, limits), data, st


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    prefix = "" if isinstance(exc, YamlLimitError) else "not valid YAML: "
    if mark is not None:
        return f"{prefix}{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return f"{prefix}{problem}"
