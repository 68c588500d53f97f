"""ExportReport: what happened to each (job, destination)."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(str, enum.Enum):
    EXPORTED = "exported"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    PLANNED = "planned"
    FAILED = "failed"

    @property
    def ok(self) -> bool:
        return self is not Status.FAILED

    @property
    def delivered(self) -> bool:
        """The destination holds the result (sent now, before, or kept there on purpose)."""
        return self in (Status.EXPORTED, Status.UPDATED, Status.UNCHANGED, Status.SKIPPED)


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: str
    destination: str
    status: Status
    reason: str = ""
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d


@dataclass
class ExportReport:
    """Outcomes per (job, destination), plus problems that belong to no single job (an unknown id)."""

    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, outcomes: Iterable[Outcome]) -> None:
        self.outcomes.extend(outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems

    def counts(self) -> dict[str, int]:
        return dict(Counter(o.status.value for o in self.outcomes))

    def for_destination(self, destination: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.destination == destination]

    def exit_code(self) -> int:
        """0 when everything went out (or was unchanged or skipped on purpose), else 1."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "problems": list(self.problems),
            "notes": list(self.notes),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }
