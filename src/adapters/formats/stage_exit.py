"""A job's state from ``logs/stage.exit`` (``<unix time> <exit code>``), read without reading its results."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from evalport.domain.model import JobState

RESULTS = "results.yml"
_STAGE_EXIT_MAX = 64 * 1024

log = logging.getLogger("evalport.formats.nemo_evaluator")


def read_stage_exit(job_dir: Path | str) -> JobState:
    """The job's state from ``logs/stage.*`` markers: ``stage.exit`` holds ``<time> <exit code>``.

    Only a regular ``stage.exit`` is read (a FIFO there would block forever): anything else makes the
    state unknown, with a warning naming the file. On string paths, with one lstat, one open and one
    read (``ls`` asks this of every job).
    """
    import errno
    import stat

    from evalport.adapters.files import FileTooLargeError, NotRegularFileError, file_kind

    logs = os.path.join(job_dir, "logs")
    exit_path = os.path.join(logs, "stage.exit")
    try:
        if stat.S_ISLNK(os.lstat(logs).st_mode):
            log.warning("%s is a symbolic link; not followed, so the job's state is unknown", logs)
            return JobState.UNKNOWN
        fd = os.open(exit_path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise NotRegularFileError(
                    errno.EINVAL,
                    f"is {file_kind(info.st_mode)}, not a regular file; it is not read",
                    exit_path,
                )
            if info.st_size > _STAGE_EXIT_MAX:
                raise FileTooLargeError(Path(exit_path), info.st_size, _STAGE_EXIT_MAX)
            data = os.read(fd, _STAGE_EXIT_MAX + 1)
        finally:
            os.close(fd)
        if len(data) > _STAGE_EXIT_MAX:
            raise FileTooLargeError(Path(exit_path), len(data), _STAGE_EXIT_MAX)
    except FileNotFoundError:
        if os.path.exists(os.path.join(logs, "stage.running")):
            return JobState.RUNNING
        if os.path.exists(os.path.join(logs, "stage.pre-start")):
            return JobState.PENDING
        return (
            JobState.SUCCEEDED
            if os.path.isfile(os.path.join(job_dir, "artifacts", RESULTS))
            else JobState.UNKNOWN
        )
    except OSError as exc:
        reason = (
            "is a symbolic link; only regular files are read" if exc.errno == errno.ELOOP else exc.strerror
        )
        log.warning("%s %s; the job's state is unknown", exit_path, reason or exc)
        return JobState.UNKNOWN
    text = data.decode("utf-8", "replace").split()
    if not text:
        return JobState.UNKNOWN
    try:
        return JobState.SUCCEEDED if int(text[-1]) == 0 else JobState.FAILED
    except ValueError:
        return JobState.UNKNOWN
