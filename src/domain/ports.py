"""The ports: where results come from (ResultSource), how they are read (ResultReader), where they
go (ResultSink) and what was sent where (ExportLedger). Every member the application uses is
declared here; :func:`protocol_members` lists them for the registry's conformance check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
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
    """One result to send, with the files a sink may attach (paths relative to ``directory``).

    ``fingerprint`` is what it sends as a short hash (:func:`evalport.domain.fingerprint.item_fingerprint`),
    computed once per item per export by the service; the ledger stores it and sinks compare it.
    """

    result: TaskResult
    directory: Path | None = None
    artifacts: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    fingerprint: str = ""

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
    multi_task: bool = False
    non_finite_values: bool = True
    #: The sink takes one run's items in several ``export()`` calls (each batch holds whole
    #: invocations, and each call's outcomes are final), so it can write while the rest is read.
    #: False: the service hands it every item in one call.
    batches: bool = False
    #: The sink stores per-sample records when its config's ``samples`` option is not ``none``
    #: (its config is then a :class:`~evalport.adapters.sinks.base.SampleSinkConfig`); the
    #: contract suite's sample behaviours run only then.
    samples: bool = False
    #: Deprecated and ignored (every sink upserts by RunIdentity); passing it warns.
    upsert: InitVar[bool | None] = None

    def __post_init__(self, upsert: bool | None) -> None:
        if upsert is not None:
            import warnings

            warnings.warn(
                "SinkCapabilities(upsert=...) is deprecated and ignored: every sink upserts by RunIdentity",
                DeprecationWarning,
                stacklevel=3,
            )


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The latest state of one (job, target) in the ledger: what was sent (``fingerprint``), the
    outcome, where it went, and for failures how often it was tried (``watch`` backs off).

    ``signature`` is the job's source signature when that fingerprint was made
    (:func:`evalport.domain.fingerprint.job_signature`; '' when unknown): matching it now means
    the job reads the same, so it is skipped before it is read.
    """

    job_id: str
    target: str
    destination: str
    fingerprint: str
    status: str
    reason: str = ""
    location: str = ""
    attempts: int = 0
    updated_at: float = 0.0
    signature: str = ""


ReadRequest = tuple[Job, Path, JobState]


def config_target_key(destination: str, config: Any) -> str:
    """A destination with its settings: ``mlflow@<hash of the redacted config>`` (the ledger's target).

    ``compat`` is left out at its default, so targets recorded before the option existed still match.
    """
    import hashlib
    import json

    from evalport.domain.redact import redact

    dump = config.model_dump(mode="json") if hasattr(config, "model_dump") else repr(config)
    if isinstance(dump, dict) and dump.get("compat") == "evalport":
        del dump["compat"]
    digest = hashlib.sha256(json.dumps(redact(dump), sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{destination}@{digest}"


def protocol_members(port: type) -> list[str]:
    """The attribute and method names a Protocol class declares (its own and inherited ones)."""
    names: set[str] = set()
    for klass in port.__mro__:
        if klass in (Protocol, object) or klass.__module__ == "typing":
            continue
        names.update(n for n in vars(klass) if not n.startswith("_"))
        names.update(getattr(klass, "__annotations__", {}))
    return sorted(names)


@runtime_checkable
class ResultSource(Protocol):
    """Resolves ids to jobs, reports their state, and stages their files locally in batches."""

    name: str

    @property
    def warnings(self) -> list[str]:
        """Problems met while reading the source (a bad DB line, an unreachable host), for the report."""
        ...

    def list_jobs(self) -> list[Job]: ...

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]: ...

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]: ...

    def stage(
        self, jobs: Sequence[Job], policy: ArtifactPolicy, workdir: Path
    ) -> dict[str, StagedJob | EvalportError]: ...

    def close(self) -> None: ...


@runtime_checkable
class SignedSource(Protocol):
    """What a ResultSource may add so that unchanged jobs are skipped before they are read.

    Not part of ResultSource (a source without it is still one, and its jobs are read every time):
    the service asks :func:`evalport.app.conform.source_signatures`, which answers {} for them.
    """

    def signatures(self, jobs: Sequence[Job], policy: ArtifactPolicy) -> dict[str, str]:
        """A cheap signature of each job's files (sizes, mtimes), computed without reading or
        staging them, that changes whenever :meth:`job_states` may answer differently (a local
        job's state is in its ``logs/`` markers; a Slurm job's also in ``sacct``): a job skipped by
        signature keeps the state it was read in. A job it cannot vouch for (remote, racy,
        unreadable) is left out."""
        ...

    def read_in_place(self, jobs: Sequence[Job]) -> set[str]:
        """Optional: the ids of the jobs whose :meth:`stage` is their own directory (no copy) and
        whose signature needs no query beyond their files. The service may sign such a job just
        before it is read, batch by batch while earlier batches are read, instead of all jobs up
        front; every other job is signed before anything is staged."""
        ...


class ResultReader(Protocol):
    """Reads a staged job directory into a TaskResult (nemo-evaluator's format first)."""

    def read(self, job: Job, directory: Path, state: JobState) -> TaskResult: ...

    def read_many(self, requests: Sequence[ReadRequest]) -> list[TaskResult | EvalportError]:
        """Each request's result, or the error that names its job and file (in request order)."""
        ...


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

    def describe(self) -> str:
        """Where the results went, for people (a folder, a tracking URI and experiment)."""
        ...

    def target_key(self) -> str:
        """The ledger's name for this destination with its settings (``mlflow@<hash>``): the same
        job sent to two tracking servers is two targets."""
        ...

    def close(self) -> None: ...


class ExportLedger(Protocol):
    """What went where: consulted before sending, written after (adapters.ledger.SqliteLedger).

    A cache: its own problems never fail an export; they become :meth:`take_warnings`.
    """

    def lookup(self, keys: Iterable[tuple[str, str]]) -> Mapping[tuple[str, str], LedgerEntry]: ...

    def record(self, entries: Sequence[LedgerEntry]) -> None: ...

    def remember_signatures(self, entries: Sequence[LedgerEntry]) -> None:
        """Stores the ``signature`` of entries whose fingerprint is already recorded (a job found
        unchanged by reading it), without a new event. Optional (see ``complete_ledger``)."""
        ...

    def history(self, job_ids: Sequence[str] | None = None, limit: int = 200) -> list[dict[str, object]]:
        """Events newest first, of ``job_ids`` (all when None)."""
        ...

    def known_job_ids(self) -> list[str]:
        """Every job id the ledger has an event for (to resolve ids of jobs no source lists any more)."""
        ...

    def take_warnings(self) -> list[str]: ...
