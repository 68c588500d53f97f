"""A request becomes a plan: destinations with validated configs, their sinks built, the run's flags.

All of it happens before any job is read, so a configuration error costs nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evalport.app.conform import complete_sink
from evalport.app.request import ExportRequest
from evalport.app.settings import ExportSettings, build_settings, validate_sink_config
from evalport.domain.errors import ConfigError, UsageError
from evalport.domain.model import JobState
from evalport.domain.ports import ResultSink


@dataclass(frozen=True)
class ExportPlan:
    """What one run does: which ids go to which sinks, and how (``force``, ``dry_run``, ...)."""

    ids: tuple[str, ...]
    sinks: tuple[ResultSink, ...]
    include_failed: bool = False
    dry_run: bool = False
    force: bool = False
    states: Mapping[str, JobState] = field(default_factory=dict)
    settings: ExportSettings = field(default_factory=ExportSettings)
    #: Destinations that could not be built (a missing extra), when planned leniently (``doctor``).
    unavailable: Mapping[str, ConfigError] = field(default_factory=dict)
    #: What the user should know about the options given, each once: a launcher option that has
    #: no effect here, an old option name, a flag only another destination uses. Entry points
    #: print them (the CLI as warnings on stderr); they are never Python warnings.
    notes: tuple[str, ...] = ()

    @property
    def destinations(self) -> list[str]:
        return list(self.settings.destinations)

    def narrowed(self, ids: Sequence[str], sinks: Sequence[ResultSink], **flags: Any) -> ExportPlan:
        """The same plan for other ids and a subset of its sinks (``watch`` sends one job at a time)."""
        return replace(self, ids=tuple(ids), sinks=tuple(sinks), **flags)


class SinkFactory:
    """Builds sinks by name from a registry, each from its validated pydantic config."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def names(self) -> list[str]:
        return list(self.registry.names())

    def accepts(self, destination: str, key: str) -> bool:
        config_cls = self.registry.get(destination).Config
        takes = getattr(config_cls, "takes_option", None)
        return bool(takes(key)) if callable(takes) else key in config_cls.model_fields

    def build(self, destination: str, raw_config: Mapping[str, Any] | None = None) -> ResultSink:
        sink_cls = self.registry.get(destination)
        config = validate_sink_config(sink_cls, destination, raw_config or {})
        return complete_sink(sink_cls(config))

    def build_noting(
        self, destination: str, raw_config: Mapping[str, Any] | None, notes: list[str]
    ) -> ResultSink:
        """:meth:`build`, the warnings its config gives (launcher options, old names) added to
        ``notes`` as ``<destination>: <message>`` instead of going to Python's warning output."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sink = self.build(destination, raw_config)
        for w in caught:
            note = f"{destination}: {w.message}"
            if note not in notes:
                notes.append(note)
        return sink


class Planner:
    """Turns an ExportRequest into an ExportPlan with one rule for every document shape and flag."""

    def __init__(self, sinks: SinkFactory, default_destinations: Sequence[str] = ("local",)) -> None:
        self.sinks = sinks
        self.default_destinations = tuple(default_destinations)

    def settings(self, request: ExportRequest) -> ExportSettings:
        settings = build_settings(
            request.document,
            request.destinations,
            flags={k: v for k, v in request.flags.items() if v is not None},
            overrides=request.overrides,
            # the names matter only to tell a document keyed by destination; asking scans every
            # installed distribution's entry points, which a plan without a document never needs
            known=self.sinks.names() if request.document else (),
            accepts=self.sinks.accepts,
        )
        return settings

    def plan(self, request: ExportRequest, *, lenient: bool = False) -> ExportPlan:
        """The plan; with ``lenient`` a destination whose extra is missing is left out and named in
        ``unavailable`` instead of failing the whole plan."""
        from evalport.app.registry import MissingExtraError

        settings = self.settings(request)
        sinks: list[ResultSink] = []
        unavailable: dict[str, ConfigError] = {}
        notes = list(settings.notes)
        for destination in settings.destinations:
            try:
                sinks.append(self.sinks.build_noting(destination, settings.configs.get(destination), notes))
            except MissingExtraError as missing:
                if not lenient:
                    raise
                unavailable[destination] = missing
        if not sinks and not unavailable:
            raise UsageError("no destination given; pass --dest (local, mlflow, wandb, gsheets, ...)")
        return ExportPlan(
            ids=tuple(request.ids),
            sinks=tuple(sinks),
            include_failed=request.include_failed,
            dry_run=request.dry_run,
            force=request.force,
            states=dict(request.states),
            settings=settings,
            unavailable=unavailable,
            notes=tuple(notes),
        )
