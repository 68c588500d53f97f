"""Invocations, jobs and what a finished job produced."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalport.domain.samples import Sample


class JobState(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RUNNING = "running"
    PENDING = "pending"
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class LocalLocation:
    """The job's directory is readable on this machine."""

    path: str


@dataclass(frozen=True, slots=True)
class RemoteLocation:
    """The job's directory lives on another host, reached as ``user@host``."""

    host: str
    path: str
    user: str | None = None


Location = LocalLocation | RemoteLocation


@dataclass(frozen=True, slots=True)
class Job:
    """One task of an invocation, as the launcher recorded it."""

    job_id: str
    invocation_id: str
    task_name: str
    executor: str
    location: Location
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    timestamp: float | None = None
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    source: str = "local"

    @property
    def index(self) -> int | None:
        tail = self.job_id.rsplit(".", 1)[-1]
        return int(tail) if tail.isdigit() else None

    @property
    def results_dir(self) -> str:
        """The launcher's ``results_dir``: ``hostname:remote_rundir_path`` for a remote job, else its
        recorded ``output_dir``, else the directory evalport reads it from."""
        remote, host = self.data.get("remote_rundir_path"), self.data.get("hostname")
        if isinstance(remote, str) and remote:
            return f"{host}:{remote}" if isinstance(host, str) and host else remote
        recorded = self.data.get("output_dir")
        if isinstance(recorded, str) and recorded:
            return recorded
        location = self.location
        if isinstance(location, RemoteLocation):
            return f"{location.host}:{location.path}"
        return location.path

    @property
    def model_id(self) -> str | None:
        """``target.api_endpoint.model_id`` of the config; None when any part has another shape."""
        target = self.config.get("target")
        endpoint = target.get("api_endpoint") if isinstance(target, Mapping) else None
        model_id = endpoint.get("model_id") if isinstance(endpoint, Mapping) else None
        return model_id if isinstance(model_id, str) else None


@dataclass(frozen=True, slots=True)
class Invocation:
    invocation_id: str
    jobs: tuple[Job, ...]

    @property
    def timestamp(self) -> float | None:
        stamps = [j.timestamp for j in self.jobs if j.timestamp is not None]
        return min(stamps) if stamps else None


def group_invocations(jobs: Iterable[Job]) -> list[Invocation]:
    by_inv: dict[str, list[Job]] = {}
    for job in jobs:
        by_inv.setdefault(job.invocation_id, []).append(job)
    return [
        Invocation(inv, tuple(sorted(js, key=lambda j: (j.index is None, j.index or 0, j.job_id))))
        for inv, js in by_inv.items()
    ]


@dataclass(frozen=True, slots=True)
class Metric:
    """A named value with optional statistics (stderr, stddev, count, ...)."""

    name: str
    value: float
    stats: Mapping[str, float] = field(default_factory=dict)

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)

    def flat(self) -> dict[str, float]:
        out = {self.name: self.value}
        for stat, v in self.stats.items():
            out[f"{self.name}_{stat}"] = v
        return out


@dataclass(frozen=True, slots=True)
class FileScan:
    """The reader's secret scan of one file it read: the file's identity then, and whether it was clean.

    Staging trusts ``clean`` only for a file whose identity (inode, device, size, mtime and ctime,
    which no one can set back) is still this one; any other file is scanned again as it is copied.
    """

    ino: int
    dev: int
    size: int
    mtime_ns: int
    ctime_ns: int
    clean: bool

    def identity(self) -> tuple[int, int, int, int, int]:
        return self.ino, self.dev, self.size, self.mtime_ns, self.ctime_ns


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What a finished job produced, ready to be sent to a destination."""

    job_id: str
    invocation_id: str
    task: str
    harness: str
    model_id: str
    executor: str
    metrics: tuple[Metric, ...]
    state: JobState = JobState.SUCCEEDED
    container: str | None = None
    timestamp: float | None = None
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    artifacts: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    # What the reader skipped or could not use (a symlinked logs/, a FIFO where a file belongs, ...).
    notes: tuple[str, ...] = ()
    #: Where the job's results are, as the launcher names it (``host:path`` for a remote job).
    results_dir: str | None = field(default=None, compare=False)
    #: The launcher command line that started the invocation (``metadata.yaml``), secrets masked.
    launcher_command: str | None = field(default=None, compare=False, repr=False)
    #: The reader's secret scans of the files it read, by path under the job (``artifacts/results.yml``).
    scans: Mapping[str, FileScan] = field(default_factory=dict, compare=False, repr=False)
    #: The files (among ``artifacts``) the reader took the results from: sent like the launcher's
    #: required artifacts (another harness's files have other names than ``results.yml``).
    result_files: tuple[str, ...] = ()
    #: The job's per-sample records, read lazily and streamed each time it is called; None when
    #: its format keeps none (the launcher's results.yml, an lm-eval group). A sink that exports
    #: samples calls it; nothing else reads the per-sample files.
    samples: Callable[[], Iterator[Sample]] | None = field(default=None, compare=False, repr=False)

    def flat_metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in self.metrics:
            out.update(metric.flat())
        return out

    def with_metrics(self, metrics: Iterable[Metric]) -> TaskResult:
        return replace(self, metrics=tuple(metrics))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the result; the shape every file summary uses."""
        return {
            "job_id": self.job_id,
            "invocation_id": self.invocation_id,
            "model_id": self.model_id,
            "harness": self.harness,
            "task": self.task,
            "executor": self.executor,
            "container": self.container,
            "timestamp": self.timestamp,
            "state": self.state.value,
            "metrics": {m.name: m.value for m in self.metrics},
            "stats": {m.name: dict(m.stats) for m in self.metrics if m.stats},
        }
