"""Reading many job directories in forked worker processes, safely.

- Workers end with their parent: on Linux each sets ``PR_SET_PDEATHSIG`` to SIGKILL when it starts,
  so a kill -9, SIGTERM or crash of the exporting process never leaves readers running (elsewhere
  the pool's own shutdown is all there is).
- A worker that dies (killed, out of memory, a crash in a C extension) fails only the jobs it was
  reading: the chunks the broken pool did not return are read again one job at a time, each in a
  fresh single worker, so a job that kills its reader is named and every other job is read.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from evalport.domain.errors import EvalportError, ResultError

Request = TypeVar("Request")
Result = TypeVar("Result")

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: the kernel kills this worker when its parent ends (Linux; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            return
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing

    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def read_in_workers(
    read_chunk: Callable[[list[Request]], list[Result | EvalportError]],
    requests: Sequence[Request],
    workers: int,
    job_id: Callable[[Request], str],
) -> list[Result | EvalportError]:
    """``read_chunk`` over ``requests`` in ``workers`` processes, results in request order."""
    size = max(32, len(requests) // (workers * 4))
    chunks = [list(requests[i : i + size]) for i in range(0, len(requests), size)]
    got: list[list[Result | EvalportError] | None] = [None] * len(chunks)
    pool = _pool(workers)
    try:
        futures = [pool.submit(read_chunk, chunk) for chunk in chunks]
        for i, future in enumerate(futures):
            with contextlib.suppress(BrokenProcessPool):  # its chunks are read again, one by one
                got[i] = future.result()
    except BaseException:  # a stop signal: queued chunks are dropped, not read before exiting
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    out: list[Result | EvalportError] = []
    for chunk, results in zip(chunks, got, strict=True):
        out.extend(results if results is not None else _read_one_by_one(read_chunk, chunk, job_id))
    return out


def _read_one_by_one(
    read_chunk: Callable[[list[Request]], list[Result | EvalportError]],
    requests: list[Request],
    job_id: Callable[[Request], str],
) -> list[Result | EvalportError]:
    out: list[Result | EvalportError] = []
    pool = _pool(1)
    try:
        for request in requests:
            try:
                out.extend(pool.submit(read_chunk, [request]).result())
            except BrokenProcessPool:
                out.append(
                    ResultError(
                        "the reader process died while reading this job (killed, out of memory or a "
                        "crash); check its files, or run again",
                        job_id=job_id(request),
                    )
                )
                pool.shutdown(wait=True)
                pool = _pool(1)
    finally:
        pool.shutdown(wait=True)
    return out
