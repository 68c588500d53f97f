"""What every sink shares: config models with the common options, and a small base class.

Third-party sinks may subclass :class:`BaseSink` (or implement the ResultSink port from scratch).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.filters import MetricFilter
from evalport.domain.identity import LogMode
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities, config_target_key
from evalport.domain.report import Outcome

#: The output shapes a sink can write: its own, or nemo-evaluator-launcher 0.2.6's (file names,
#: places, keys, run and artifact names), for scripts and dashboards that read the launcher's.
Compat = Literal["evalport", "launcher"]


class InertOptionWarning(UserWarning):
    """A launcher option evalport accepts but that has no effect here (the message says why)."""


class SinkConfig(BaseModel):
    """Options every sink accepts. Unknown keys are an error (the settings loader names them)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Launcher option -> why it has no effect in evalport. Accepted with an InertOptionWarning and
    #: dropped, so a launcher config works unchanged; a sink adds its own to this mapping.
    inert_options: ClassVar[Mapping[str, str]] = {}

    log_metrics: list[str] = Field(default_factory=list, description="metric patterns; default: all")
    compat: Compat = Field(
        default="evalport", description="'launcher': write nemo-evaluator-launcher 0.2.6's shapes"
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_inert_options(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not any(key in data for key in cls.inert_options):
            return data
        data = dict(data)
        for key, why in cls.inert_options.items():
            if key in data:
                data.pop(key)
                message = f"option {key!r} has no effect in evalport: {why}"
                warnings.warn(message, InertOptionWarning, stacklevel=2)
        return data

    @field_validator("log_metrics", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @property
    def metric_filter(self) -> MetricFilter:
        return MetricFilter.of(self.log_metrics)


class ArtifactSinkConfig(SinkConfig):
    copy_artifacts: bool = True
    only_required: bool = True
    copy_logs: bool = False
    exclude: list[str] = Field(default_factory=list, description="extra file patterns never sent")

    @property
    def policy(self) -> ArtifactPolicy:
        return ArtifactPolicy(self.copy_artifacts, self.only_required, self.copy_logs, tuple(self.exclude))


class TrackerSinkConfig(ArtifactSinkConfig):
    log_mode: LogMode = LogMode.PER_TASK


class BaseSink:
    """Holds the validated config; subclasses set ``name``, ``Config`` and implement ``export``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[SinkConfig]] = SinkConfig
    capabilities: ClassVar[SinkCapabilities] = SinkCapabilities()
    #: The pip extra that installs what this sink needs (``pip install 'evalport[<extra>]'``), if any.
    extra: ClassVar[str | None] = None
    #: Modules that must be importable for the sink to work (the registry checks them, not imported).
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: SinkConfig | dict[str, Any] | None = None) -> None:
        if config is None or isinstance(config, dict):
            config = self.Config.model_validate(config or {})
        self.config = config

    @property
    def destination(self) -> str:
        return self.name

    @property
    def policy(self) -> ArtifactPolicy:
        config_policy = getattr(self.config, "policy", None)
        return config_policy if config_policy is not None else ArtifactPolicy(False, True, False)

    @property
    def metric_filter(self) -> MetricFilter:
        return self.config.metric_filter

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        raise NotImplementedError

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """By default the ledger is trusted: every job is taken as still held. Sinks override this."""
        return set(located)

    def check(self) -> CheckResult:
        return CheckResult(True, f"{self.name}: nothing to check")

    def describe(self) -> str:
        return self.destination

    def target_key(self) -> str:
        return config_target_key(self.destination, self.config)

    def close(self) -> None:
        return None
