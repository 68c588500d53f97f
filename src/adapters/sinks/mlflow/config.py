"""The MLflow sink's options (docs/sinks/mlflow.md lists them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from evalport.adapters.sinks.base import SampleSinkConfig, TrackerSinkConfig
from evalport.adapters.sinks.remote import RemoteOptions

#: The placeholders a ``run_name`` template may use.
RUN_NAME_FIELDS = ("invocation_id", "model_id", "harness", "task", "job_id")
DEFAULT_EXPERIMENT = "evalport"
#: nemo-evaluator-launcher's default experiment, used with ``compat: launcher``.
LAUNCHER_EXPERIMENT = "nemo-evaluator-launcher"


class MlflowSinkConfig(TrackerSinkConfig, SampleSinkConfig, RemoteOptions):
    #: ``table``: one table per job (``samples/<harness>.<task>.json``, shown by the UI as a table);
    #: ``traces``: one trace per sample, its scores as feedback (docs/sinks/mlflow.md).
    sample_modes: ClassVar[tuple[str, ...]] = ("none", "table", "traces")

    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; else $MLFLOW_TRACKING_URI; else sqlite:///mlflow.db here",
    )
    experiment_name: str = Field(
        default=DEFAULT_EXPERIMENT,
        min_length=1,
        description=f"default {DEFAULT_EXPERIMENT!r}; {LAUNCHER_EXPERIMENT!r} with compat: launcher",
    )
    run_name: str | None = Field(
        default=None, description="run name; may use {invocation_id} {model_id} {harness} {task} {job_id}"
    )
    description: str | None = Field(default=None, description="the run's description (mlflow.note.content)")
    tags: dict[str, str] = Field(default_factory=dict, description="extra tags on every run")
    extra_metadata: dict[str, Any] = Field(default_factory=dict, description="extra params on every run")
    log_config_params: bool = Field(default=False, description="log the run config, flattened, as params")
    log_config_params_max_depth: int = Field(default=10, ge=1, le=50)
    skip_existing: bool = Field(default=False, description="leave jobs already in MLflow untouched")

    @model_validator(mode="before")
    @classmethod
    def _launcher_spellings(cls, data: Any) -> Any:
        """``exclude_patterns`` (the launcher's key) is ``exclude``; both given: merged. With
        ``compat: launcher`` and no experiment named, the launcher's default experiment."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "exclude_patterns" in data:
            patterns = data.pop("exclude_patterns")
            if patterns is not None:
                data["exclude"] = _merged(data.get("exclude") or [], patterns)
        if data.get("compat") == "launcher" and data.get("experiment_name") is None:
            data["experiment_name"] = LAUNCHER_EXPERIMENT
        return data

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_values_as_text(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in value.items()}
        return value

    @field_validator("run_name")
    @classmethod
    def _run_name_fields(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(**{f: "x" for f in RUN_NAME_FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"run_name {value!r} uses an unknown placeholder ({exc}); "
                    f"use {', '.join('{' + f + '}' for f in RUN_NAME_FIELDS)}"
                ) from None
        return value


def _merged(exclude: Any, patterns: Any) -> Any:
    """``exclude`` then ``exclude_patterns``, each a list or one pattern, without repeats."""
    lists: list[str] = []
    for name, value in (("exclude", exclude), ("exclude_patterns", patterns)):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of file name patterns, got {value!r}")
        lists.extend(value)
    return list(dict.fromkeys(lists))
