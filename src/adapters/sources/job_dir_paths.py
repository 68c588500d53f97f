"""What ``--job-dir`` paths hold: launcher job directories (a job, an invocation or a results root)
or folders for the other harnesses' readers. Plain ``os`` calls: a root of a thousand runs' folders
is walked on every command that is given it."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from evalport.domain.errors import UsageError

#: ``--reader`` naming the launcher's own format (the default for a launcher job directory).
NEMO_EVALUATOR = "nemo_evaluator"

_EXPECTED = (
    "expected a job directory (<invocation dir>/<task>.<index> with artifacts/ or logs/), "
    "an invocation directory, or a results root holding them"
)


def _is_job_dir(path: Path) -> bool:
    """Has artifacts/ or logs/ (a symlinked one counts, so that reading the job says what is wrong)."""
    for name in ("artifacts", "logs"):
        try:
            mode = os.lstat(os.path.join(path, name)).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
            return True
    return False


def _subdirs(path: Path) -> list[Path]:
    """The real folders directly below ``path`` (never a symlink to one: links may lead anywhere), sorted."""
    try:
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def split_job_dirs(
    paths: Sequence[Path], reader: str | None = None
) -> tuple[list[Path], list[tuple[str, Path]], list[UsageError]]:
    """What the user gave with ``--job-dir``: launcher job directories, folders (or files) for the
    other harnesses' readers, and errors. Without ``reader``, a path holding no launcher job directory
    goes to the harness readers (which say what each looked for when none recognises it); with
    ``reader`` (``--reader``), every path is read with that reader alone."""
    if reader == NEMO_EVALUATOR:
        found, problems = find_job_dirs(paths)
        return found, [], problems
    launcher: list[Path] = []
    harness: list[tuple[str, Path]] = []
    errors: list[UsageError] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists() and not path.is_symlink():
            errors.append(UsageError(f"--job-dir {given}: no such file or directory"))
            continue
        found = find_job_dirs([path])[0] if reader is None else []
        if found:
            launcher.extend(found)
        else:
            harness.append((str(given), path))
    return launcher, harness, errors


def find_job_dirs(paths: Sequence[Path]) -> tuple[list[Path], list[UsageError]]:
    """Job directories from what the user gave: a job dir, an invocation dir, or a results root.

    A results root (the launcher's ``execution.output_dir``) holds invocation dirs, which hold job
    dirs. A path that does not exist, or is a folder holding no job directory (``/etc``, an empty
    folder), is a UsageError naming the path and what was expected; it never becomes a made-up job.
    """
    out: list[Path] = []
    errors: list[UsageError] = []
    for given in paths:
        path = Path(given).expanduser()
        if _is_job_dir(path):
            out.append(path)
            continue
        if not path.exists():
            errors.append(UsageError(f"--job-dir {given}: no such file or directory"))
            continue
        if not path.is_dir():
            errors.append(UsageError(f"--job-dir {given}: is not a directory; {_EXPECTED}"))
            continue
        found: list[Path] = []
        for child in _subdirs(path):
            if _is_job_dir(child):
                found.append(child)
            else:
                found.extend(g for g in _subdirs(child) if _is_job_dir(g))
        if found:
            out.extend(found)
        else:
            errors.append(UsageError(f"--job-dir {given}: holds no job directory; {_EXPECTED}"))
    return out, errors
