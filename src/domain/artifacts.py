"""Which of a job's files may leave the machine, and which are sent."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

REQUIRED_ARTIFACTS = ("results.yml", "run_config.yml", "metadata.yaml", "eval_factory_metrics.json")
OPTIONAL_ARTIFACTS = ("report.html", "report.json", "results.json", "omni-info.json", "progress")
NEVER_EXPORTED = (".secrets.env", "*.secrets.env", "*cache*", "*.db", "*.db-*", "*.lock", "*.sqlite*")


_NEVER = re.compile("|".join(fnmatch.translate(p) for p in NEVER_EXPORTED))


def is_never_exported(relpath: str) -> bool:
    """True for files that must never leave the machine (secrets, caches, databases, locks)."""
    return any(_NEVER.match(part.lower()) for part in relpath.replace("\\", "/").split("/"))


@dataclass(frozen=True, slots=True)
class ArtifactPolicy:
    """``only_required``: the required and optional artifacts by name; else everything not excluded."""

    copy_artifacts: bool = True
    only_required: bool = True
    copy_logs: bool = False
    exclude: tuple[str, ...] = ()

    def _excluded(self, relpath: str) -> bool:
        return is_never_exported(relpath) or any(
            fnmatch.fnmatch(relpath, p) or fnmatch.fnmatch(relpath.rsplit("/", 1)[-1], p)
            for p in self.exclude
        )

    def select_artifacts(self, relpaths: Iterable[str]) -> list[str]:
        if not self.copy_artifacts:
            return []
        wanted = set(REQUIRED_ARTIFACTS) | set(OPTIONAL_ARTIFACTS)
        return sorted(
            p for p in relpaths if not self._excluded(p) and (not self.only_required or p in wanted)
        )

    def select_logs(self, relpaths: Iterable[str]) -> list[str]:
        if not self.copy_logs:
            return []
        return sorted(p for p in relpaths if not self._excluded(p))

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
