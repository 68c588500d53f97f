"""Sinks and sources by name: entry points (built-ins included) plus in-process registration.

Built-in adapters register through the same entry-point groups as third-party ones
(``evalport.sinks``, ``evalport.sources``). A plugin that fails to load is a warning naming it.

Asking for a built-in by name does not scan the installed distributions' entry points (about
50 ms per scan on a machine with mlflow and wandb installed): :data:`BUILTINS` mirrors the groups of
pyproject.toml (a unit test keeps the two equal), so ``get("local")`` imports the module directly.
Any other name, and :meth:`Registry.names`, scan the group, once per registry.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from evalport.domain.errors import ConfigError

log = logging.getLogger("evalport.registry")

SINK_GROUP = "evalport.sinks"
SOURCE_GROUP = "evalport.sources"

T = TypeVar("T")


# The built-in sinks' optional extras, for naming the extra when a built-in's module itself fails to
# import for want of its SDK (the classes declare ``extra``/``requires`` for the usual, lazy case).
BUILTIN_EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mlflow": ("mlflow", ("mlflow",)),
    "wandb": ("wandb", ("wandb",)),
    "gsheets": ("gsheets", ("gspread",)),
}


# The built-in adapters' entry points, as pyproject.toml declares them (a built-in name resolves to
# its own module; a third-party distribution cannot replace a built-in under the same name).
BUILTINS: dict[str, dict[str, str]] = {
    SINK_GROUP: {
        "local": "evalport.adapters.sinks.local:LocalSink",
        "mlflow": "evalport.adapters.sinks.mlflow:MlflowSink",
        "wandb": "evalport.adapters.sinks.wandb:WandbSink",
        "gsheets": "evalport.adapters.sinks.gsheets:GsheetsSink",
    },
    SOURCE_GROUP: {
        "local": "evalport.adapters.sources.local:LocalSource",
        "slurm": "evalport.adapters.sources.slurm:SlurmSource",
    },
}


class BuiltinEntryPoint:
    """A built-in's ``module:attribute``, loaded like an entry point (without importlib.metadata)."""

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value

    def load(self) -> Any:
        import importlib

        module, _, attribute = self.value.partition(":")
        return getattr(importlib.import_module(module), attribute)


class PluginWarning(UserWarning):
    """A plugin named in an entry point could not be loaded."""


class MissingExtraError(ConfigError):
    """An adapter's Python packages are not installed; the message gives the line that installs them."""

    def __init__(self, kind: str, name: str, extra: str | None, missing: Sequence[str]) -> None:
        self.name = name
        self.extra = extra
        self.missing = tuple(missing)
        if extra:
            self.hint = f"needs the {extra} extra: pip install 'evalport[{extra}]'"
        else:
            packages = " ".join(self.missing)
            self.hint = f"needs {', '.join(self.missing)}, which is not installed: pip install {packages}"
        super().__init__(f"{kind} {name!r} {self.hint}")


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (``find_spec`` only)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package of a dotted name is missing
        return False
    except ValueError:  # already imported with no __spec__ (e.g. created at run time): it is there
        return True


def requirements(name: str, cls: Any) -> tuple[str | None, tuple[str, ...]]:
    """The extra and the import names an adapter declares it needs (``extra``, ``requires``)."""
    return getattr(cls, "extra", None), tuple(getattr(cls, "requires", ()) or ())


def missing_requirements(kind: str, name: str, cls: Any) -> MissingExtraError | None:
    extra, requires = requirements(name, cls)
    missing = [m for m in requires if not is_installed(m)]
    return MissingExtraError(kind, name, extra, missing) if missing else None


def _entry_points(group: str) -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=group)}


class Registry:
    """Adapters by name: entry points, looked up lazily (imported only when asked for), plus classes
    registered in this process with :meth:`register` (which win over an entry point of that name).

    Each instance holds its own registrations; :func:`sink_registry` and :func:`source_registry`
    give the process-wide ones that ``@register_sink`` writes to and the container hands out.
    """

    def __init__(self, group: str, kind: str, port: Any = None) -> None:
        self.group = group
        self.kind = kind
        self.port = port
        self._registered: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        self._broken: dict[str, str] = {}
        self._installed: set[str] = set()
        self._builtins = BUILTINS.get(group, {})
        self._scanned: dict[str, Any] | None = None

    def register(self, name: str, cls: Any) -> Any:
        """Registers ``cls`` under ``name`` in this registry (a later registration replaces it)."""
        self._registered[name] = cls
        self._installed.discard(name)
        return cls

    def unregister(self, name: str) -> None:
        """Forgets an in-process registration (an entry point of that name is found again)."""
        self._registered.pop(name, None)
        self._installed.discard(name)

    def names(self) -> list[str]:
        return sorted(set(self._builtins) | set(self._entry_points()) | set(self._registered))

    def _entry_points(self) -> dict[str, Any]:
        """The group's entry points, scanned once for this registry."""
        if self._scanned is None:
            self._scanned = _entry_points(self.group)
        return self._scanned

    def _entry_point(self, name: str) -> Any:
        """The entry point of ``name``: a built-in's without a scan, else from the installed ones."""
        value = self._builtins.get(name)
        if value is not None:
            return BuiltinEntryPoint(name, value)
        return self._entry_points().get(name)

    def get(self, name: str) -> Any:
        """The adapter class; a usage error if it is unknown, broken, or its extra is not installed."""
        obj = self._load(name)
        if name not in self._installed:
            missing = missing_requirements(self.kind, name, obj)
            if missing is not None:
                raise missing
            self._installed.add(name)
        return obj

    def _load(self, name: str) -> Any:
        if name in self._registered:
            return self._registered[name]
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_point(name)
        if ep is None:
            import difflib

            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names()) or 'none'})"
            )
        try:
            obj = ep.load()
        except ModuleNotFoundError as exc:
            if exc.name and name in BUILTIN_EXTRAS and exc.name.split(".")[0] in BUILTIN_EXTRAS[name][1]:
                raise MissingExtraError(self.kind, name, BUILTIN_EXTRAS[name][0], [exc.name]) from None
            return self._broken_plugin(name, ep, exc)
        except Exception as exc:  # a broken plugin must not take the others down
            return self._broken_plugin(name, ep, exc)
        self._check_conformance(name, ep.value, obj)
        self._loaded[name] = obj
        return obj

    def _check_conformance(self, name: str, where: str, cls: Any) -> None:
        """A warning naming a plugin whose class lacks members of the port (it is still returned)."""
        missing = nonconforming_members(cls, self.port) if self.port is not None else []
        if missing:
            warnings.warn(
                f"{self.kind} plugin {name!r} ({where}) does not implement the {self.port.__name__} port: "
                f"missing {', '.join(missing)}",
                PluginWarning,
                stacklevel=4,
            )

    def _broken_plugin(self, name: str, ep: Any, exc: Exception) -> Any:
        self._broken[name] = f"{type(exc).__name__}: {exc}"
        message = f"{self.kind} plugin {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
        warnings.warn(message, PluginWarning, stacklevel=3)
        raise ConfigError(message) from exc

    def load_all(self) -> dict[str, Any]:
        """Every adapter that loads and has its extra; broken ones are warnings and left out, and
        those whose extra is missing are left out too (:meth:`catalog` has them)."""
        return {name: cls for name, cls in self.catalog().items() if not isinstance(cls, MissingExtraError)}

    def catalog(self) -> dict[str, Any]:
        """Every adapter that loads: its class, or the MissingExtraError saying what to install."""
        out: dict[str, Any] = {}
        for name in self.names():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PluginWarning)
                    out[name] = self.get(name)
            except MissingExtraError as missing:
                out[name] = missing
            except ConfigError:
                warnings.warn(
                    f"{self.kind} plugin {name!r} failed to load: {self._broken.get(name, '?')}",
                    PluginWarning,
                    stacklevel=2,
                )
        return out


def nonconforming_members(cls: Any, port: Any) -> list[str]:
    """The members of the Protocol ``port`` that ``cls`` does not define (checked on the class,
    so nothing is instantiated; ``runtime_checkable`` cannot look at a class's instance members)."""
    from evalport.domain.ports import protocol_members

    return [m for m in protocol_members(port) if not hasattr(cls, m) and m not in _instance_members(cls)]


def _instance_members(cls: Any) -> set[str]:
    """Names a class declares for its instances without a class-level value (``name: str``)."""
    out: set[str] = set()
    for klass in getattr(cls, "__mro__", ()):
        out.update(getattr(klass, "__annotations__", {}))
    return out


_DEFAULTS: dict[str, Registry] = {}


def sink_registry() -> Registry:
    """The process-wide sink registry (``@register_sink`` writes here; the container hands it out)."""
    if SINK_GROUP not in _DEFAULTS:
        from evalport.domain.ports import ResultSink

        _DEFAULTS[SINK_GROUP] = Registry(SINK_GROUP, "destination", ResultSink)
    return _DEFAULTS[SINK_GROUP]


def source_registry() -> Registry:
    """The process-wide source registry."""
    if SOURCE_GROUP not in _DEFAULTS:
        from evalport.domain.ports import ResultSource

        _DEFAULTS[SOURCE_GROUP] = Registry(SOURCE_GROUP, "source", ResultSource)
    return _DEFAULTS[SOURCE_GROUP]


def register_sink(name: str, registry: Registry | None = None) -> Callable[[T], T]:
    """Class decorator registering a sink in this process: ``@register_sink("my-dest")``.

    Registers in ``registry`` when given, else in the process-wide one; undo with
    :func:`unregister_sink`.
    """

    def decorate(cls: T) -> T:
        if not getattr(cls, "name", None):
            cls.name = name  # type: ignore[attr-defined]
        (registry or sink_registry()).register(name, cls)
        return cls

    return decorate


register_exporter = register_sink  # the reference launcher's name, so custom exporters port easily


def unregister_sink(name: str, registry: Registry | None = None) -> None:
    (registry or sink_registry()).unregister(name)


def register_source(name: str, registry: Registry | None = None) -> Callable[[T], T]:
    def decorate(cls: T) -> T:
        (registry or source_registry()).register(name, cls)
        return cls

    return decorate
