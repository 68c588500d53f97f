"""Destination settings from YAML/JSON, launcher run-config blocks, CLI flags and ``-o`` overrides.

Precedence, lowest first: ``execution.auto_export.configs.<dest>``, top-level ``export.<dest>``
(or the same options keyed by destination at the top: ``{"mlflow": {...}}``), flat options given
with ``--config``, CLI flags, then ``-o [export.][<dest>.]key=value``. One rule for every entry
point: the CLI, the Python API, auto-export and watch all come here through the planner.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalport.domain.documents import DocumentLoader
from evalport.domain.errors import ConfigError

EVALPORT_KEYS = ("destinations", "export", "job_dirs", "exec_db", "compat", "reader")
#: Top-level keys that are also options of every destination: alone, they do not make a document
#: structured (``{"job_dirs": [...], "output_dir": ...}`` is one exporter's flat options, the shape
#: the launcher's ``export_results`` takes).
SHARED_KEYS = ("job_dirs", "compat")
LAUNCHER_KEYS = (
    "execution",
    "evaluation",
    "target",
    "deployment",
    "env_vars",
    "auxiliary_deployments",
    "defaults",
)


@dataclass
class ExportSettings:
    destinations: list[str] = field(default_factory=list)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    exec_db: str | None = None
    #: The launcher's ``job_dirs`` (results roots to search), lifted out of every destination block.
    job_dirs: list[str] = field(default_factory=list)
    #: What the user should know about the options given (a launcher flag ignored here, ...).
    notes: list[str] = field(default_factory=list)


def _loader(loader: DocumentLoader | None) -> DocumentLoader:
    """The given loader, else the one the composition root provides (it picks the adapter)."""
    if loader is not None:
        return loader
    from evalport.app.container import document_loader

    return document_loader()


def load_document(
    value: str | Path | Mapping[str, Any] | None, loader: DocumentLoader | None = None
) -> dict[str, Any]:
    """``--config``: a YAML/JSON file, an inline JSON object, or a mapping already loaded."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value).strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"--config: inline JSON is not valid: {exc}") from None
    else:
        path = Path(text).expanduser()
        try:
            doc = _loader(loader).load_file(path)
        except OSError as exc:
            raise ConfigError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(f"--config {path}: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"--config must hold a mapping of options, not {type(doc).__name__}")
    return doc


def _closest(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict) and k not in ("tags", "extra_metadata"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# A ``{name}`` template placeholder, as run names and descriptions use (``{model_id}-{task}``).
_PLACEHOLDER = re.compile(r"\{\s*[A-Za-z_][\w.]*\s*\}")


def parse_override_value(raw: str, loader: DocumentLoader | None = None) -> Any:
    """An ``-o`` value read as YAML (``false``, ``3``, ``[a, b]``, ``{"team": "eval"}``), except text
    that YAML cannot read, or would read as a mapping or list only because of ``{name}``
    placeholders (``{task}``, ``{model_id}-{task}``): that is meant as a template, kept as written."""
    if not raw.strip():
        return ""
    try:
        value = _loader(loader).parse_value(raw)
    except Exception:
        return raw
    if isinstance(value, (dict, list)) and _PLACEHOLDER.search(raw):
        return raw
    return value


def parse_override(text: str, loader: DocumentLoader | None = None) -> tuple[list[str], Any]:
    """``a.b.c=value`` to (["a", "b", "c"], value); the value as :func:`parse_override_value` reads it."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"-o {text!r}: expected KEY=VALUE, e.g. -o export.local.format=csv")
    return [p for p in key.strip().split(".") if p], parse_override_value(raw, loader)


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        nxt = target.setdefault(part, {})
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[path[-1]] = value


def is_keyed_by_destination(doc: Mapping[str, Any], names: Collection[str]) -> bool:
    """``{"local": {...}, "mlflow": {...}}``: every top-level key a destination, every value options
    (beside them, only options of every destination: ``compat``, ``job_dirs``)."""
    blocks = {k: v for k, v in doc.items() if k not in SHARED_KEYS}
    return (
        bool(blocks)
        and not any(k in doc for k in EVALPORT_KEYS + LAUNCHER_KEYS if k not in SHARED_KEYS)
        and all(k in names and isinstance(v, Mapping) for k, v in blocks.items())
    )


def build_settings(
    doc: Mapping[str, Any] | None,
    destinations: Sequence[str] = (),
    *,
    flags: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    known: Collection[str] = (),
    accepts: Callable[[str, str], bool] | None = None,
) -> ExportSettings:
    """Destinations and their raw options from any accepted document shape.

    ``known`` are the destination names there are (a document keyed by them is read like an
    ``export:`` block); ``accepts(destination, key)`` says whether a destination has an option, so
    a flag goes only to the destinations that take it (none taking it is an error).
    """
    doc = dict(doc or {})
    if is_keyed_by_destination(doc, {*destinations, *known}):
        blocks = {k: v for k, v in doc.items() if k not in SHARED_KEYS}
        shared = {k: v for k, v in doc.items() if k in SHARED_KEYS}
        doc = {"export": blocks, **shared, **({} if destinations else {"destinations": list(blocks)})}
    structured = any(k in doc for k in EVALPORT_KEYS + LAUNCHER_KEYS if k not in SHARED_KEYS)
    is_launcher = any(k in doc for k in LAUNCHER_KEYS)
    if structured and not is_launcher:
        for key in doc:
            if key not in EVALPORT_KEYS:
                raise ConfigError(f"unknown config key {key!r}{_closest(key, EVALPORT_KEYS)}")
    auto = ((doc.get("execution") or {}).get("auto_export") or {}) if is_launcher else {}
    export_block = doc.get("export") or {}
    if not isinstance(export_block, Mapping):
        raise ConfigError("config key 'export' must map destination names to their options")

    dests = list(destinations) or list(doc.get("destinations") or []) or list(auto.get("destinations") or [])
    dests = list(dict.fromkeys(dests or ["local"]))
    configs: dict[str, dict[str, Any]] = {}
    compat = doc.get("compat") if structured else None
    for dest in dests:
        cfg = _merge(_merge({}, (auto.get("configs") or {}).get(dest) or {}), export_block.get(dest) or {})
        cfg = cfg if structured else _merge(cfg, doc)
        if compat is not None:
            cfg.setdefault("compat", compat)
        configs[dest] = cfg
    notes: list[str] = []
    _apply_flags(configs, flags or {}, accepts, notes)
    for text in overrides:
        _apply_override(configs, text)
    roots = _as_paths(doc.get("job_dirs"), "job_dirs") if structured else []
    for dest, cfg in configs.items():
        if "job_dirs" in cfg:
            roots += _as_paths(cfg.pop("job_dirs"), f"export.{dest}.job_dirs")
    return ExportSettings(
        destinations=dests,
        configs=configs,
        exec_db=doc.get("exec_db"),
        job_dirs=list(dict.fromkeys(roots)),
        notes=notes,
    )


def _as_paths(value: Any, where: str) -> list[str]:
    """``job_dirs`` as the launcher takes it: a list of paths, or one path."""
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [str(value)]
    if isinstance(value, Sequence) and all(isinstance(v, (str, Path)) for v in value):
        return [str(v) for v in value]
    raise ConfigError(f"{where}: expected a list of directories, not {value!r}")


def job_dirs_in(doc: Mapping[str, Any], overrides: Sequence[str] = ()) -> list[str]:
    """Every ``job_dirs`` a document names, before destinations are known (the source is built
    first): at the top, in any ``export.<dest>`` or ``execution.auto_export.configs.<dest>`` block,
    in options keyed by destination, and in ``-o [export.<dest>.]job_dirs=...``."""
    found = _as_paths(doc.get("job_dirs"), "job_dirs")
    auto = doc.get("execution")
    auto = auto.get("auto_export") if isinstance(auto, Mapping) else None
    blocks = [doc.get("export"), auto.get("configs") if isinstance(auto, Mapping) else None, doc]
    for block in blocks:
        for dest, options in (block or {}).items() if isinstance(block, Mapping) else ():
            if isinstance(options, Mapping) and "job_dirs" in options:
                found += _as_paths(options["job_dirs"], f"export.{dest}.job_dirs")
    for text in overrides:
        op, path, value = _parse_hydra(text)
        if op != "~" and path and path[-1] == "job_dirs":
            found += _as_paths(value, f"-o {text}")
    return list(dict.fromkeys(found))


def _apply_flags(
    configs: dict[str, dict[str, Any]],
    flags: Mapping[str, Any],
    accepts: Callable[[str, str], bool] | None,
    notes: list[str],
) -> None:
    """Each flag given goes to the destinations that take it; none taking it is an error, except
    ``--format`` (only ``local`` uses it; like the launcher, a note says it is ignored)."""
    dests = list(configs)
    for key, value in flags.items():
        if value is None:
            continue
        takers = [d for d in dests if accepts is None or accepts(d, key)]
        if not takers and key == "format":
            notes.append(f"--format is only used by --dest local; it is ignored for {', '.join(dests)}")
            continue
        if not takers:
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to {', '.join(dests)}")
        for dest in takers:
            configs[dest][key] = value


def _parse_hydra(text: str) -> tuple[str, list[str], Any]:
    """``[~|+|++]key.path=value`` as the launcher's ``-o`` takes it: the prefix, the path, the value.

    ``+``/``++`` set like a plain override (Hydra's "new key" / "force"); ``~`` deletes the key
    (its ``=value``, if any, is ignored)."""
    op = next((p for p in ("++", "+", "~") if text.startswith(p)), "")
    body = text[len(op) :]
    if op == "~":
        key = body.partition("=")[0]
        if not key.strip():
            raise ConfigError(f"-o {text!r}: expected ~KEY, e.g. -o ~export.mlflow.tags")
        return op, [p for p in key.strip().split(".") if p], None
    path, value = parse_override(body)
    return op, path, value


def _apply_override(configs: dict[str, dict[str, Any]], text: str) -> None:
    """``-o [~|+|++][export.][<dest>.]key=value``: to that destination, or without one to every
    destination; ``~`` deletes the key instead."""
    dests = list(configs)
    op, path, value = _parse_hydra(text)
    scoped = path[0] == "export"
    if scoped:
        path = path[1:]
    if len(path) >= 2 and path[0] in dests:
        targets, path = [configs[path[0]]], path[1:]
    elif scoped:
        raise ConfigError(
            f"-o {text!r}: give export.<destination>.<key> with a destination among {', '.join(dests)}"
        )
    else:
        targets = [configs[d] for d in dests]
    for target in targets:
        if op == "~":
            _delete_path(target, path)
        else:
            _set_path(target, path, value)


def _delete_path(target: dict[str, Any], path: list[str]) -> None:
    for part in path[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            return
        target = nxt
    target.pop(path[-1], None)


def validate_sink_config(sink_cls: Any, destination: str, raw: Mapping[str, Any]) -> Any:
    """The sink's pydantic config; unknown keys name the closest valid key."""
    from pydantic import ValidationError

    model = sink_cls.Config
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        valid = list(model.model_fields)
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            if err.get("type") == "extra_forbidden":
                problems.append(f"unknown key {loc!r}{_closest(loc.split('.')[0], valid)}")
            else:
                problems.append(f"{loc}: {err.get('msg')}")
        raise ConfigError(
            f"destination {destination!r}: " + "; ".join(problems) + f" (valid keys: {', '.join(valid)})"
        ) from None
