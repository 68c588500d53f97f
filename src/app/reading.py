"""The reading half of the use case: ids -> jobs -> states -> staged folders -> TaskResults.

:class:`~evalport.app.service.ExportService` inherits it; ``show`` and ``report`` use only this
half (:meth:`JobReading.read_results`), ``export`` streams its batches to the sinks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from evalport.app.items import result_notes
from evalport.app.request import ExportRequest
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError, UsageError
from evalport.domain.model import Job, JobState, TaskResult
from evalport.domain.ports import ReadRequest, ResultReader, ResultSource, StagedJob
from evalport.domain.report import ExportReport

#: States a job can still leave: never exported, whatever --include-failed says.
NOT_FINISHED = (JobState.RUNNING, JobState.PENDING)


def _takes_scan(method: Any) -> bool:
    return _takes(method, "scan")


def _takes(method: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _skip_reason(state: JobState) -> str:
    if state in NOT_FINISHED:
        return f"job is {state.value}; export it once it has finished"
    return f"job {state.value}; pass --include-failed to export what it produced"


class JobReading:
    """Resolving, staging and reading jobs through the source and reader ports."""

    source: ResultSource
    reader: ResultReader

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        """The jobs ``ids`` name, and an error per id that names none: a lookup, which reads only
        the execution-DB lines that could name them where the source can (as ``show`` does: a few
        ids in a team's DB cost a search, not a parse of every line). The source's warnings then
        name only the corrupt lines of that read; an export still reads, and reports, every line."""
        if ids and hasattr(type(self.source), "only_wanted_lines"):
            before = self.source.only_wanted_lines  # type: ignore[attr-defined]
            self.source.only_wanted_lines = True  # type: ignore[attr-defined]
            try:
                return self.source.resolve(ids)
            finally:
                self.source.only_wanted_lines = before  # type: ignore[attr-defined]
        return self.source.resolve(ids)

    def resolve_or_raise(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        """The jobs ``ids`` name; when ids were given and none names a job, a usage error (exit 2)."""
        jobs, errors = self.source.resolve(ids)
        if errors and not jobs:
            raise UsageError("; ".join(str(e) for e in errors))
        return jobs, errors

    def read_results(
        self,
        ids: Sequence[str] | ExportRequest,
        *,
        include_failed: bool = True,
        skips_are_problems: bool = True,
    ) -> tuple[list[TaskResult], ExportReport]:
        """Results of the named jobs (for ``show`` and ``report``); problems land in the report.

        Given a request, its ids and ``include_failed`` are used; an id that names no job is a
        usage error when no id names one (as in ``export``). A job left out for its state (failed,
        running) is a problem, or with ``skips_are_problems=False`` a note."""
        if isinstance(ids, ExportRequest):
            include_failed = ids.include_failed
            ids = ids.ids
        report = ExportReport()
        results: list[TaskResult] = []
        jobs, errors = self.resolve_or_raise(ids)
        report.problems.extend(str(e) for e in errors)
        with tempfile.TemporaryDirectory(prefix="evalport-stage-") as workdir:
            for job, got in self._read(jobs, ArtifactPolicy(False), Path(workdir), include_failed):
                if isinstance(got, str):
                    skipped = got.startswith("skip:")
                    line = f"job {job.job_id}: {got.removeprefix('skip:')}"
                    (report.problems if skips_are_problems or not skipped else report.notes).append(line)
                else:
                    results.append(got[0])
                    report.notes.extend(result_notes(got[0]))
        return results, report

    def _read(
        self,
        jobs: Sequence[Job],
        policy: ArtifactPolicy,
        workdir: Path,
        include_failed: bool,
        known_states: Mapping[str, JobState] | None = None,
    ) -> list[tuple[Job, tuple[TaskResult, Path] | str]]:
        """Each job with (result, staged dir) or a reason it cannot be exported."""
        out, requests = self._requests(jobs, policy, workdir, include_failed, known_states)
        for batch in self._read_batches(requests, policy, [len(requests)]):
            out.extend(batch)
        return out

    def _requests(
        self,
        jobs: Sequence[Job],
        policy: ArtifactPolicy,
        workdir: Path,
        include_failed: bool,
        known_states: Mapping[str, JobState] | None = None,
    ) -> tuple[list[tuple[Job, tuple[TaskResult, Path] | str]], list[ReadRequest]]:
        """The jobs left out (each with the reason) and the read requests of the others, staged."""
        states = {**self.source.job_states(jobs), **(known_states or {})}
        out: list[tuple[Job, tuple[TaskResult, Path] | str]] = []
        wanted: list[Job] = []
        for job in jobs:
            state = states.get(job.job_id, JobState.UNKNOWN)
            if state is JobState.SUCCEEDED or (include_failed and state not in NOT_FINISHED):
                wanted.append(job)
            else:
                out.append((job, "skip:" + _skip_reason(state)))
        staged = self.source.stage(wanted, policy, workdir) if wanted else {}
        requests: list[ReadRequest] = []
        for job in wanted:
            got = staged.get(job.job_id)
            if isinstance(got, StagedJob):
                requests.append((job, got.directory, states.get(job.job_id, JobState.UNKNOWN)))
            else:
                out.append((job, str(got or f"job {job.job_id}: the source staged nothing")))
        return out, requests

    def _read_batches(
        self,
        requests: list[ReadRequest],
        policy: ArtifactPolicy | None,
        sizes: Sequence[int],
        before_batch: Callable[[int], None] | None = None,
    ) -> Generator[list[tuple[Job, tuple[TaskResult, Path] | str]], None, None]:
        """Each batch (``sizes`` consecutive requests) read, as soon as it is: a reader with
        ``read_batches`` reads ahead (in its workers) while the caller works on what it yielded.
        A reader that takes ``scan`` also secret-scans the files ``policy`` sends while it has
        their bytes (so staging need not read them again).

        ``before_batch(k)`` runs before any request of batch ``k`` is read: by the reader when it
        takes ``before_batch`` (while it reads the batches before), else here, for every batch
        up front (a reader that reads ahead) or before each (one read batch by batch here)."""
        scan = policy if policy is not None and (policy.copy_artifacts or policy.copy_logs) else None
        read_batches = getattr(self.reader, "read_batches", None)
        if read_batches is not None:
            options: dict[str, Any] = {"scan": scan} if scan and _takes_scan(read_batches) else {}
            if before_batch is not None:
                if _takes(read_batches, "before_batch"):
                    options["before_batch"] = before_batch
                else:
                    for k in range(len(sizes)):
                        before_batch(k)
            got: Any = read_batches(requests, sizes, **options)
        else:
            got = self._read_each(requests, scan, sizes, before_batch)
        start = 0
        try:
            for count, results in zip(sizes, got, strict=True):
                batch = requests[start : start + count]
                start += count
                yield [
                    (job, str(result) if isinstance(result, EvalportError) else (result, directory))
                    for (job, directory, _state), result in zip(batch, results, strict=True)
                ]
        finally:  # stops the reader's workers when the caller stops early
            close = getattr(got, "close", None)
            if close is not None:
                close()

    def _read_each(
        self,
        requests: list[ReadRequest],
        scan: ArtifactPolicy | None,
        sizes: Sequence[int],
        before_batch: Callable[[int], None] | None = None,
    ) -> Generator[list[TaskResult | EvalportError], None, None]:
        """A reader without ``read_batches``: its ``read_many`` per batch, called as each is needed."""
        start = 0
        for k, count in enumerate(sizes):
            batch = requests[start : start + count]
            start += count
            if before_batch is not None:
                before_batch(k)
            if scan is not None and _takes_scan(self.reader.read_many):
                read_many: Any = self.reader.read_many  # the ResultReader port has no ``scan`` (yet)
                yield list(read_many(batch, scan=scan))
            else:
                yield list(self.reader.read_many(batch)) if batch else []
