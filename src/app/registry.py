"""Sinks and sources by name: entry points (built-ins included) plus in-process registration.

Built-in adapters register through the same entry-point groups as third-party ones
(``evalport.sinks``, ``evalport.sources``). A plugin that fails to load is a warning naming it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from evalport.domain.errors import ConfigError

log = logging.getLogger("evalport.registry")

SINK_GROUP = "evalport.sinks"
SOURCE_GROUP = "evalport.sources"

_registered: dict[str, dict[str, Any]] = {SINK_GROUP: {}, SOURCE_GROUP: {}}
T = TypeVar("T")


class PluginWarning(UserWarning):
    """A plugin named in an entry point could not be loaded."""


def register_sink(name: str) -> Callable[[T], T]:
    """Class decorator registering a sink in this process: ``@register_sink("my-dest")``."""

    def decorate(cls: T) -> T:
        if not getattr(cls, "name", None):
            cls.name = name  # type: ignore[attr-defined]
        _registered[SINK_GROUP][name] = cls
        return cls

    return decorate


register_exporter = register_sink  # the reference launcher's name, so custom exporters port easily


def register_source(name: str) -> Callable[[T], T]:
    def decorate(cls: T) -> T:
        _registered[SOURCE_GROUP][name] = cls
        return cls

    return decorate


def _entry_points(group: str) -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=group)}


class Registry:
    """Looks names up lazily: an entry point is imported only when its adapter is asked for."""

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        self.kind = kind
        self._loaded: dict[str, Any] = {}
        self._broken: dict[str, str] = {}

    def names(self) -> list[str]:
        return sorted(set(_entry_points(self.group)) | set(_registered[self.group]))

    def get(self, name: str) -> Any:
        if name in _registered[self.group]:
            return _registered[self.group][name]
        if name in self._loaded:
            return self._loaded[name]
        eps = _entry_points(self.group)
        ep = eps.get(name)
        if ep is None:
            import difflib

            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names()) or 'none'})"
            )
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            self._broken[name] = f"{type(exc).__name__}: {exc}"
            message = f"{self.kind} plugin {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            warnings.warn(message, PluginWarning, stacklevel=2)
            raise ConfigError(message) from exc
        self._loaded[name] = obj
        return obj

    def load_all(self) -> dict[str, Any]:
        """Every adapter that loads; broken ones are reported as warnings and left out."""
        out = {}
        for name in self.names():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PluginWarning)
                    out[name] = self.get(name)
            except ConfigError:
                warnings.warn(
                    f"{self.kind} plugin {name!r} failed to load: {self._broken.get(name, '?')}",
                    PluginWarning,
                    stacklevel=2,
                )
        return out

    def broken(self) -> dict[str, str]:
        return dict(self._broken)


def sink_registry() -> Registry:
    return Registry(SINK_GROUP, "destination")


def source_registry() -> Registry:
    return Registry(SOURCE_GROUP, "source")
