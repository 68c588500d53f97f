"""A job's state from ``logs/stage.exit`` (``<unix time> <exit code>``), read without reading its results."""

from __future__ import annotations

import logging
import os
from errno import ELOOP
from pathlib import Path
from stat import S_ISLNK, S_ISREG
from typing import NoReturn

from evalport.domain.model import JobState

RESULTS = "results.yml"
#: The files under ``logs/`` a job's state is read from (with ``artifacts/results.yml``).
STATE_MARKERS = ("stage.exit", "stage.running", "stage.pre-start")
_STAGE_EXIT_MAX = 64 * 1024

log = logging.getLogger("evalport.formats.nemo_evaluator")

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_SUCCEEDED_ENDINGS = (b" 0\n", b" 0")


def read_stage_exit(job_dir: Path | str) -> JobState:
    """The job's state from ``logs/stage.*`` markers: ``stage.exit`` holds ``<time> <exit code>``.

    Only a regular ``stage.exit`` is read (a FIFO there would block forever): anything else makes the
    state unknown, with a warning naming the file. With one lstat, one open, one fstat and one read,
    and no Python work beyond them on the usual file (``ls`` asks this of 20,000 jobs).
    """
    plain = type(job_dir) is str and job_dir and job_dir[-1] != "/"  # then os.path.join is a "+"
    logs = f"{job_dir}/logs" if plain else os.path.join(job_dir, "logs")
    exit_path = logs + "/stage.exit"
    try:
        if S_ISLNK(os.lstat(logs).st_mode):
            log.warning("%s is a symbolic link; not followed, so the job's state is unknown", logs)
            return JobState.UNKNOWN
        fd = os.open(exit_path, _OPEN_FLAGS)
        try:
            info = os.fstat(fd)
            if not S_ISREG(info.st_mode) or info.st_size > _STAGE_EXIT_MAX:
                _refuse(exit_path, info.st_mode, info.st_size)
            data = os.read(fd, _STAGE_EXIT_MAX + 1)
        finally:
            os.close(fd)
        if len(data) > _STAGE_EXIT_MAX:
            _refuse(exit_path, info.st_mode, len(data))
    except FileNotFoundError:
        return _state_without_exit(logs, job_dir)
    except OSError as exc:
        reason = "is a symbolic link; only regular files are read" if exc.errno == ELOOP else exc.strerror
        log.warning("%s %s; the job's state is unknown", exit_path, reason or exc)
        return JobState.UNKNOWN
    if data.endswith(_SUCCEEDED_ENDINGS):  # the launcher's own line: its last word is 0
        return JobState.SUCCEEDED
    text = data.decode("utf-8", "replace").split()
    if not text:
        return JobState.UNKNOWN
    try:
        return JobState.SUCCEEDED if int(text[-1]) == 0 else JobState.FAILED
    except ValueError:
        return JobState.UNKNOWN


def _refuse(exit_path: str, mode: int, size: int) -> NoReturn:
    """Raises the OSError saying why ``exit_path`` is not read (not a regular file, or too large)."""
    import errno

    from evalport.adapters.files import FileTooLargeError, NotRegularFileError, file_kind

    if not S_ISREG(mode):
        raise NotRegularFileError(
            errno.EINVAL, f"is {file_kind(mode)}, not a regular file; it is not read", exit_path
        )
    raise FileTooLargeError(Path(exit_path), size, _STAGE_EXIT_MAX)


def _state_without_exit(logs: str, job_dir: Path | str) -> JobState:
    """No ``stage.exit``: running or pending by the other markers, else done if it has results."""
    if os.path.exists(os.path.join(logs, "stage.running")):
        return JobState.RUNNING
    if os.path.exists(os.path.join(logs, "stage.pre-start")):
        return JobState.PENDING
    return (
        JobState.SUCCEEDED
        if os.path.isfile(os.path.join(job_dir, "artifacts", RESULTS))
        else JobState.UNKNOWN
    )
