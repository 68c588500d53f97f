"""The ResultReader the container wires: each job read by the reader of its format.

A launcher job goes to :class:`~evalport.adapters.formats.nemo_evaluator.NemoEvaluatorReader` (in
its worker processes for large runs, secret-scanning as it reads). A job from another harness's
folder (:mod:`evalport.adapters.sources.harness_dirs` put its reader and folder in ``Job.data``) is
read in this process by that harness's reader: each folder once per batch, whatever number of jobs
it holds. Batches keep their order and sizes, so the service cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evalport.adapters.sources.harness_dirs import PATH_KEY, READER_KEY, is_harness_job
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError, ResultError
from evalport.domain.model import Job, JobState, TaskResult
from evalport.domain.ports import ReadRequest, ResultReader


class Deferred:
    """A reader not built yet: ``make()`` builds it."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


class FormatReader:
    def __init__(self, launcher: Any) -> None:
        """``launcher``: the launcher format's ResultReader (its ``read_batches`` and ``scan`` used
        when it has them), or a :class:`Deferred` one, built when a job is first read (an export
        the ledger answers reads nothing, and need not import the YAML reader)."""
        self._launcher = launcher

    @property
    def launcher(self) -> ResultReader:
        if isinstance(self._launcher, Deferred):
            self._launcher = self._launcher.make()
        return self._launcher

    def read(self, job: Job, directory: Path, state: JobState) -> TaskResult:
        if not is_harness_job(job):
            return self.launcher.read(job, directory, state)
        got = read_harness_jobs([(job, directory, state)])[0]
        if isinstance(got, EvalportError):
            raise got
        return got

    def read_many(
        self, requests: Sequence[ReadRequest], scan: ArtifactPolicy | None = None
    ) -> list[TaskResult | EvalportError]:
        out: list[TaskResult | EvalportError] = []
        for results in self.read_batches(requests, [len(requests)], scan):
            out.extend(results)
        return out

    def read_batches(
        self,
        requests: Sequence[ReadRequest],
        batch_sizes: Sequence[int],
        scan: ArtifactPolicy | None = None,
        before_batch: Callable[[int], None] | None = None,
    ) -> Iterator[list[TaskResult | EvalportError]]:
        """Each batch's results in request order; the launcher's jobs streamed by its reader.
        ``before_batch(k)`` runs before any job of batch ``k`` is read."""
        launcher_requests: list[ReadRequest] = []
        launcher_sizes: list[int] = []
        start = 0
        for count in batch_sizes:
            batch = requests[start : start + count]
            start += count
            theirs = [r for r in batch if not is_harness_job(r[0])]
            launcher_requests += theirs
            launcher_sizes.append(len(theirs))
        launcher = self._launcher_batches(launcher_requests, launcher_sizes, scan, before_batch)
        return self._merged(requests, batch_sizes, launcher)

    def _launcher_batches(
        self,
        requests: list[ReadRequest],
        sizes: list[int],
        scan: ArtifactPolicy | None,
        before_batch: Callable[[int], None] | None,
    ) -> Iterator[list[TaskResult | EvalportError]]:
        read_batches: Any = getattr(self.launcher, "read_batches", None)
        if read_batches is None:
            return self._each(requests, sizes, before_batch)
        options: dict[str, Any] = {}
        if before_batch is not None:
            if "before_batch" in _parameters(read_batches):
                options["before_batch"] = before_batch
            else:  # a reader that reads ahead on its own: every batch is prepared first
                for k in range(len(sizes)):
                    before_batch(k)
        return iter(
            read_batches(requests, sizes, scan, **options)
            if scan is not None
            else read_batches(requests, sizes, **options)
        )

    def _each(
        self, requests: list[ReadRequest], sizes: list[int], before_batch: Callable[[int], None] | None
    ) -> Iterator[list[TaskResult | EvalportError]]:
        start = 0
        for k, count in enumerate(sizes):
            if before_batch is not None:
                before_batch(k)
            yield list(self.launcher.read_many(requests[start : start + count])) if count else []
            start += count

    @staticmethod
    def _merged(
        requests: Sequence[ReadRequest],
        sizes: Sequence[int],
        launcher: Iterator[list[TaskResult | EvalportError]],
    ) -> Generator[list[TaskResult | EvalportError], None, None]:
        start = 0
        try:
            for count in sizes:
                batch = requests[start : start + count]
                start += count
                theirs = iter(next(launcher))
                mine = iter(read_harness_jobs([r for r in batch if is_harness_job(r[0])]))
                yield [next(mine) if is_harness_job(r[0]) else next(theirs) for r in batch]
        finally:
            close = getattr(launcher, "close", None)
            if close is not None:
                close()


def read_harness_jobs(requests: Sequence[ReadRequest]) -> list[TaskResult | EvalportError]:
    """Each request's result, its folder read once by its reader; in request order."""
    from evalport.adapters.formats.detect import reader

    by_folder: dict[tuple[str, str], dict[str, TaskResult] | EvalportError] = {}
    out: list[TaskResult | EvalportError] = []
    for job, _directory, state in requests:
        key = (str(job.data[READER_KEY]), str(job.data[PATH_KEY]))
        if key not in by_folder:
            try:
                by_folder[key] = {r.job_id: r for r in reader(key[0]).read(Path(key[1]))}
            except EvalportError as exc:
                by_folder[key] = exc
        found = by_folder[key]
        if isinstance(found, EvalportError):
            out.append(_for_job(found, job))
            continue
        result = found.get(job.job_id)
        if result is None:
            out.append(
                ResultError(
                    "the folder no longer holds this job (re-run or moved?); see `evalport ls --job-dir`",
                    job_id=job.job_id,
                    path=key[1],
                )
            )
            continue
        out.append(
            replace(
                result,
                result_files=result.artifacts,
                state=result.state if state is JobState.UNKNOWN else state,
            )
        )
    return out


def _for_job(exc: EvalportError, job: Job) -> EvalportError:
    if isinstance(exc, ResultError) and exc.job_id is None:
        return ResultError(str(exc), job_id=job.job_id)
    return exc


def _parameters(method: Any) -> Mapping[str, Any]:
    import inspect

    try:
        return inspect.signature(method).parameters
    except (TypeError, ValueError):
        return {}
