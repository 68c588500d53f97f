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
from evalport.domain.sample_rows import DEFAULT_MAX_CHARS, NO_SAMPLES, SampleOptions

#: The output shapes a sink can write: its own, or nemo-evaluator-launcher 0.2.6's (file names,
#: places, keys, run and artifact names), for scripts and dashboards that read the launcher's.
Compat = Literal["evalport", "launcher"]


class InertOptionWarning(UserWarning):
    """A launcher option evalport accepts but that has no effect here (the message says why)."""


#: The launcher's deprecated names for options (its ExportConfig's), with their current name.
LAUNCHER_RENAMED: Mapping[str, str] = {"log_logs": "copy_logs", "log_artifacts": "copy_artifacts"}
#: Launcher options evalport spells otherwise; taken under evalport's name where a config has that
#: option and not the launcher's (a sink may declare the launcher's name itself).
LAUNCHER_SPELLINGS: Mapping[str, str] = {"exclude_patterns": "exclude"}
#: Every key of the launcher's ExportConfig, which each of its exporters' configs takes.
LAUNCHER_EXPORT_KEYS = ("job_dirs", "copy_logs", "copy_artifacts", "only_required", "log_metrics")
_NO_FILES = "this destination sends no files"
_JOB_DIRS = (
    "it says where the jobs are, not where they go; evalport's export reads it from the config "
    "(or --job-dirs) before the destinations are built"
)


class SinkConfig(BaseModel):
    """Options every sink accepts. Unknown keys are an error (the settings loader names them).

    Every key of the launcher's ExportConfig validates in every sink config: ``log_logs`` and
    ``log_artifacts`` under their new names (a RenamedOptionWarning), the others as an
    InertOptionWarning where this sink has no such option (``copy_logs`` for Sheets, ...).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Launcher option -> why it has no effect in evalport. Accepted with an InertOptionWarning and
    #: dropped, so a launcher config works unchanged; a sink adds its own to this mapping.
    inert_options: ClassVar[Mapping[str, str]] = {}

    log_metrics: list[str] = Field(default_factory=list, description="metric patterns; default: all")
    compat: Compat = Field(
        default="evalport", description="'launcher': write nemo-evaluator-launcher 0.2.6's shapes"
    )

    @classmethod
    def takes_option(cls, key: str) -> bool:
        """Whether ``key`` validates here: a field, or a launcher option accepted with a warning."""
        return key in cls.model_fields or key in cls.inert_options or key in LAUNCHER_EXPORT_KEYS

    @classmethod
    def _inert(cls) -> dict[str, str]:
        """Launcher keys this config drops, with why: the sink's own, then the ExportConfig ones it lacks."""
        out = {k: _NO_FILES for k in LAUNCHER_EXPORT_KEYS if k not in cls.model_fields}
        out["job_dirs"] = _JOB_DIRS
        out.update(cls.inert_options)
        return {k: v for k, v in out.items() if k not in cls.model_fields}

    @model_validator(mode="before")
    @classmethod
    def _drop_inert_options(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        renamed = [k for k in LAUNCHER_RENAMED if k in data and k not in cls.model_fields]
        spelled = [
            k
            for k, new in LAUNCHER_SPELLINGS.items()
            if k in data and k not in cls.model_fields and new in cls.model_fields
        ]
        inert = cls._inert()
        if not renamed and not spelled and not any(key in data for key in inert):
            return data
        data = dict(data)
        for old in spelled:
            new, value = LAUNCHER_SPELLINGS[old], data.pop(old)
            if new in data and data[new] != value:
                raise ValueError(f"{old!r} is the launcher's name of {new!r}; give only {new!r}")
            data[new] = value
        for old in renamed:
            from evalport.adapters.sinks.remote import RenamedOptionWarning

            new, value = LAUNCHER_RENAMED[old], data.pop(old)
            if value is None:
                continue
            # As the launcher does: the new name, when also given, wins.
            data.setdefault(new, value)
            warnings.warn(f"option {old!r} is deprecated; use {new!r}", RenamedOptionWarning, stacklevel=2)
        for key, why in inert.items():
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


class SampleSinkConfig(SinkConfig):
    """The per-sample options of a sink whose capabilities say ``samples``.

    A sink's config inherits this (beside its other base) and sets ``sample_modes``, the values its
    ``samples`` option takes (``none`` and its own shapes; ``true`` means the first of those, ``false``
    ``none``), and redeclares ``samples`` to change the default (``none`` unless it says otherwise).
    """

    sample_modes: ClassVar[tuple[str, ...]] = (NO_SAMPLES,)

    samples: str = Field(
        default=NO_SAMPLES, description="how per-sample records are stored; 'none': not at all"
    )
    max_samples: int | None = Field(
        default=None, ge=1, description="at most this many samples per job (default: all)"
    )
    max_sample_chars: int | None = Field(
        default=DEFAULT_MAX_CHARS, ge=1, description="a sample's text cells are cut to this many characters"
    )

    @field_validator("samples", mode="before")
    @classmethod
    def _sample_mode(cls, value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            shapes = [m for m in cls.sample_modes if m != NO_SAMPLES]
            return shapes[0] if value and shapes else NO_SAMPLES
        if isinstance(value, str) and value.strip().lower() not in cls.sample_modes:
            choices = ", ".join(repr(m) for m in cls.sample_modes)
            raise ValueError(f"samples: {value!r} is not one of {choices}")
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def sample_options(self) -> SampleOptions:
        return SampleOptions(self.samples, self.max_samples, self.max_sample_chars)


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

    @property
    def sample_options(self) -> SampleOptions:
        """What this sink stores of each job's samples (nothing unless its config has the option)."""
        options = getattr(self.config, "sample_options", None)
        return options if isinstance(options, SampleOptions) else SampleOptions()

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
