"""The local sink's view of its own files between calls: the summary it wrote (kept while the file
is still that one), the folders it made once per export, and a new job folder's private twin."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from evalport.domain.report import Status

if TYPE_CHECKING:
    from evalport.adapters.sinks.local_launcher import Change
    from evalport.adapters.staging import StageResult
    from evalport.domain.ports import ExportItem


@dataclass(frozen=True, slots=True)
class KeptSummary:
    """The runs of the JSON summary file this sink wrote (each one's JSON line and fingerprint),
    with the file's identity then: the next batch of the run reuses them while the file is still
    that one (anyone else's write changes its inode or ctime, and then the file is read again)."""

    identity: tuple[int, int, int, int, int]
    fingerprints: dict[str, Any]
    lines: dict[str, str]

    @classmethod
    def of(cls, path: Path, fingerprints: dict[str, Any], lines: dict[str, str]) -> KeptSummary | None:
        identity = _identity(path)
        return cls(identity, fingerprints, lines) if identity is not None else None

    def holds(self, path: Path) -> bool:
        return _identity(path) == self.identity


def _identity(path: Path) -> tuple[int, int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def make_dir(path: Path, made: set[Path]) -> bool:
    """Creates ``path`` (and its parent, once per export: ``made`` holds the parents already
    there); True when ``path`` existed already."""
    if path.parent not in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        made.add(path.parent)
    try:
        path.mkdir()
        return False
    except FileExistsError:
        return True


T = TypeVar("T")


def stage_in_twin(job_dir: Path, made: set[Path], stage: Callable[[Path], T]) -> T:
    """``stage(twin)`` for a job with no folder yet: it fills a private twin of ``job_dir``
    (:func:`private_twin`), renamed to ``job_dir`` once complete, so its files need no temp file
    and rename each. Raises :class:`Occupied` when the folder exists (or appeared meanwhile); on
    any failure the twin is removed, and a file named in the error is named at ``job_dir``."""
    twin = private_twin(job_dir, made)
    if twin is None:
        raise Occupied
    try:
        staged = stage(twin)
    except BaseException as exc:
        remove_twin(twin)
        named = getattr(exc, "filename", None)
        if isinstance(exc, OSError) and isinstance(named, str) and named.startswith(f"{twin}/"):
            exc.filename = f"{job_dir}{named[len(str(twin)) :]}"  # the name the user knows
        raise
    if not publish_twin(twin, job_dir):
        raise Occupied
    return staged


def private_twin(job_dir: Path, made: set[Path]) -> Path | None:
    """A new, empty folder beside ``job_dir`` under a name no reader looks at (hidden, this
    process's), to be filled and renamed to ``job_dir`` by :func:`publish_twin`; None when
    ``job_dir`` exists already (a job exported before is updated in place, file by file)."""
    if job_dir.parent not in made:
        job_dir.parent.mkdir(parents=True, exist_ok=True)
        made.add(job_dir.parent)
    if os.path.lexists(job_dir):
        return None
    twin = job_dir.parent / f".{job_dir.name}.{os.getpid()}.{os.urandom(6).hex()}.partial"
    twin.mkdir()
    return twin


def publish_twin(twin: Path, job_dir: Path) -> bool:
    """Renames the filled ``twin`` to ``job_dir``, so the job's files appear all at once, complete;
    False (the twin removed) when ``job_dir`` appeared meanwhile with something in it (another
    export of the same job): the caller stages into it as into any existing folder."""
    try:
        os.rename(twin, job_dir)  # replaces an empty folder, never one with files
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            remove_twin(twin)
            raise
        remove_twin(twin)
        return False
    return True


def write_job_summary(
    job_dir: Path, fmt: str, entry: dict[str, Any], *, existed: bool = True, private: bool = False
) -> str | None:
    """``result.json`` (``fmt`` json) or ``result.csv`` of one job, rewritten only when it changed;
    ``existed`` False (the job's folder was just made) spares reading what cannot be there, and
    ``private`` (a folder not yet published) writing it atomically. Returns the JSON line written
    (the multi-run summary holds the same), None for CSV."""
    from evalport.adapters.files import atomic_write_text
    from evalport.adapters.sinks.local_layout import csv_text, flat_row

    line = None
    if fmt == "json":
        # Compact: an indented dump runs the pure-Python encoder, several times slower.
        line = json.dumps(entry, sort_keys=True)
        text = line + "\n"
        path = job_dir / "result.json"
    else:
        text = csv_text([flat_row(entry)])
        path = job_dir / "result.csv"
    if existed:
        try:
            if path.read_text() == text:
                return line
        except FileNotFoundError:
            pass
    if private:
        write_new_file(path, text.encode("utf-8"))
    else:
        atomic_write_text(path, text, parent_exists=True)
    return line


def write_new_file(path: Path, data: bytes) -> None:
    """``data`` in a new file at ``path`` (in a private twin: nothing can be there yet, nobody reads it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def remove_twin(twin: Path) -> None:
    """Removes an unpublished twin and what was staged in it (never followed: it holds no link)."""
    with contextlib.suppress(OSError):
        shutil.rmtree(twin)


class Occupied(Exception):
    """The job's folder exists: it is updated in place, file by file."""


@dataclass(frozen=True, slots=True)
class StagedJob:
    item: ExportItem
    entry: dict[str, Any]
    stage: StageResult
    existed: bool
    #: compat launcher: what the job's own processed_results file needed.
    change: Change | None = None


def job_status(job: StagedJob, was_there: bool, old_fingerprint: Any, *, has_summary: bool) -> Status:
    """Exported, updated or unchanged: by the summary's fingerprint (the item's; ``was_there``: the
    summary held the job, with ``old_fingerprint``), else by the folder."""
    changed = job.stage.changed
    if not has_summary:
        return (
            Status.UPDATED
            if job.existed and changed
            else (Status.UNCHANGED if job.existed else Status.EXPORTED)
        )
    if not was_there:
        return Status.EXPORTED
    if old_fingerprint != job.entry["fingerprint"] or changed:
        return Status.UPDATED
    return Status.UNCHANGED
