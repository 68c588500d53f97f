"""Which of a job's files may leave the machine, and which are sent.

Two sets of patterns are never sent, by any sink, in any mode, matched case-insensitively on the
name of every part of a file's path (so a matching folder excludes everything below it):

* :data:`NEVER_EXPORTED`: secrets, caches, databases and locks;
* :data:`LAUNCHER_EXCLUDED`: nemo-evaluator-launcher 0.2.6's always-on exclusions, the bulky
  by-products of agentic runs (synthetic data, rollouts, preprocessed datasets: hundreds of MB).

A policy's ``exclude`` patterns (MLflow's ``exclude_patterns`` too) extend them, never replace them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

REQUIRED_ARTIFACTS = ("results.yml", "run_config.yml", "metadata.yaml", "eval_factory_metrics.json")
OPTIONAL_ARTIFACTS = ("report.html", "report.json", "results.json", "omni-info.json", "progress")
NEVER_EXPORTED = (".secrets.env", "*.secrets.env", "*cache*", "*.db", "*.db-*", "*.lock", "*.sqlite*")
LAUNCHER_EXCLUDED = (
    "*cache*",
    "*.db",
    "*.lock",
    "synthetic",
    "debug.json",
    "preprocessed_datasets",
    "evaluator_rollouts.jsonl",
    "evaluator_rollouts_materialized_inputs.jsonl",
)


def _matcher(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for fnmatch ``patterns``, matched against lower-cased names (None: no pattern)."""
    patterns = list(dict.fromkeys(p.lower() for p in patterns if p))
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None


_NEVER = _matcher(NEVER_EXPORTED)
_DEFAULT = _matcher((*NEVER_EXPORTED, *LAUNCHER_EXCLUDED))


def _parts(relpath: str) -> list[str]:
    return relpath.replace("\\", "/").lower().split("/")


def is_never_exported(relpath: str) -> bool:
    """True for files that must never leave the machine (secrets, caches, databases, locks)."""
    assert _NEVER is not None
    return any(_NEVER.match(part) for part in _parts(relpath))


def is_excluded_by_default(name: str) -> bool:
    """True when the file or folder called ``name`` (one path part) is never sent: the listing
    of a job's files does not go into such a folder at all."""
    assert _DEFAULT is not None
    return _DEFAULT.match(name.lower()) is not None


@dataclass(frozen=True, slots=True)
class ArtifactPolicy:
    """``only_required``: the required and optional artifacts by name; else everything not excluded.

    ``exclude``: extra fnmatch patterns, matched like the defaults (case-insensitively, on every
    path part's name); a pattern holding ``/`` is also matched against the whole relative path.
    """

    copy_artifacts: bool = True
    only_required: bool = True
    copy_logs: bool = False
    exclude: tuple[str, ...] = ()

    def excludes(self, relpath: str) -> bool:
        """Whether the file at ``relpath`` (relative to artifacts/ or logs/) is never sent."""
        parts = _parts(relpath)
        assert _DEFAULT is not None
        if any(_DEFAULT.match(part) for part in parts):
            return True
        extra = _extra_matcher(self.exclude)
        if extra is None:
            return False
        whole = "/".join(parts)
        return any(extra.match(part) for part in parts) or extra.match(whole) is not None

    def select_artifacts(self, relpaths: Iterable[str], required: Iterable[str] = ()) -> list[str]:
        """The artifacts sent: with ``only_required``, the launcher's required and optional ones and
        ``required`` (the files a reader of another harness took the results from)."""
        if not self.copy_artifacts:
            return []
        wanted = set(REQUIRED_ARTIFACTS) | set(OPTIONAL_ARTIFACTS) | set(required)
        return sorted(p for p in relpaths if (not self.only_required or p in wanted) and not self.excludes(p))

    def select_logs(self, relpaths: Iterable[str]) -> list[str]:
        if not self.copy_logs:
            return []
        return sorted(p for p in relpaths if not self.excludes(p))

    @classmethod
    def covering(cls, policies: Iterable[ArtifactPolicy]) -> ArtifactPolicy:
        """The smallest policy that stages everything each of ``policies`` selects."""
        policies = list(policies)
        copying = [p for p in policies if p.copy_artifacts]
        return cls(
            copy_artifacts=bool(copying),
            only_required=all(p.only_required for p in copying),
            copy_logs=any(p.copy_logs for p in policies),
            exclude=tuple(sorted(set.intersection(*(set(p.exclude) for p in policies)))) if policies else (),
        )


_EXTRA_CACHE: dict[tuple[str, ...], re.Pattern[str] | None] = {}


def _extra_matcher(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """The compiled ``exclude`` patterns of a policy (compiled once per distinct tuple)."""
    try:
        return _EXTRA_CACHE[patterns]
    except KeyError:
        if len(_EXTRA_CACHE) > 256:
            _EXTRA_CACHE.clear()
        compiled = _EXTRA_CACHE[patterns] = _matcher(patterns)
        return compiled
