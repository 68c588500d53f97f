"""The ports: where results come from (ResultSource) and where they go (ResultSink)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError
from evalport.domain.filters import MetricFilter
from evalport.domain.model import Job, JobState, TaskResult
from evalport.domain.report import Outcome


@dataclass(frozen=True, slots=True)
class StagedJob:
    """A job's files as a local directory (``artifacts/`` and ``logs/`` below it)."""

    job: Job
    directory: Path


@dataclass(frozen=True, slots=True)
class ExportItem:
    """One result to send, with the files a sink may attach (paths relative to ``directory``)."""

    result: TaskResult
    directory: Path | None = None
    artifacts: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()

    def artifact_paths(self) -> list[tuple[str, Path]]:
        """(relative path under the job, absolute path) for every selected artifact and log."""
        if self.directory is None:
            return []
        rels = [f"artifacts/{a}" for a in self.artifacts] + [f"logs/{log}" for log in self.logs]
        return [(rel, self.directory / rel) for rel in rels]


@dataclass(frozen=True, slots=True)
class SinkCapabilities:
    """What a sink supports; the contract suite reads these, like SQLAlchemy dialect requirements."""

    artifacts: bool = False
    logs: bool = False
    upsert: bool = True
    multi_task: bool = False
    non_finite_values: bool = True


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ResultSource(Protocol):
    """Resolves ids to jobs, reports their state, and stages their files locally in batches."""

    name: str

    def list_jobs(self) -> list[Job]: ...

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]: ...

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]: ...

    def stage(
        self, jobs: Sequence[Job], policy: ArtifactPolicy, workdir: Path
    ) -> dict[str, StagedJob | EvalportError]: ...

    def close(self) -> None: ...


class ResultReader(Protocol):
    """Reads a staged job directory into a TaskResult (nemo-evaluator's format first)."""

    def read(self, job: Job, directory: Path, state: JobState) -> TaskResult: ...


@runtime_checkable
class ResultSink(Protocol):
    """A destination. ``export`` upserts by RunIdentity and returns one Outcome per item."""

    name: ClassVar[str]
    capabilities: ClassVar[SinkCapabilities]

    @property
    def destination(self) -> str: ...

    @property
    def policy(self) -> ArtifactPolicy: ...

    @property
    def metric_filter(self) -> MetricFilter: ...

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]: ...

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """Of ``located`` (job id -> the ``Outcome.location`` recorded when it was sent), the job ids
        the destination still holds. Asked before the service trusts the ledger's "unchanged";
        must be cheap (a stat, one search), never write, and may raise (then nothing is confirmed).
        """
        ...

    def check(self) -> CheckResult: ...


class ExportLedger(Protocol):
    """What went where: consulted before sending, written after (adapters.ledger.SqliteLedger)."""

    def lookup(self, keys: Iterable[tuple[str, str]]) -> Mapping[tuple[str, str], Any]: ...

    def record(self, entries: Sequence[Any]) -> None: ...
