"""YAML loading with libyaml when PyYAML was built with it (about 10x faster than pure Python)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_text(text: str | bytes) -> Any:
    return yaml.load(text, Loader=SafeLoader)


def load_yaml_file(path: Path) -> Any:
    with open(path, "rb") as fh:
        return yaml.load(fh, Loader=SafeLoader)


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"not valid YAML: {problem} at line {mark.line + 1}, column {mark.column + 1}"
    return f"not valid YAML: {problem}"
