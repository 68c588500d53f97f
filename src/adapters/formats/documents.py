"""The DocumentLoader the container hands to settings: bounded, safe YAML (JSON is YAML too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalport.adapters.formats.safe_yaml import YamlLimits


class YamlDocumentLoader:
    def load_file(self, path: Path) -> Any:
        import yaml

        from evalport.adapters.formats.yamlio import describe_yaml_error, load_yaml_text

        # A bounded read: `--config <(...)` is a pipe (so no size to stat), and a huge or endless
        # file must not be read whole; load_yaml_text refuses what is over the limit.
        with open(path, "rb") as fh:
            raw = fh.read(YamlLimits.from_env().max_bytes + 1)
        try:
            return load_yaml_text(raw)
        except yaml.YAMLError as exc:
            raise ValueError(describe_yaml_error(exc)) from None

    def parse_value(self, text: str) -> Any:
        from evalport.adapters.formats.yamlio import load_yaml_text

        return load_yaml_text(text)
