"""A job directory's *file signature*: what its files look like on disk, without reading any of them.

The signature lists every entry below ``artifacts/`` and ``logs/`` that the reader may look at (the
same walk as :func:`evalport.adapters.files.list_files`: no link followed, never-sent folders not
entered) with its kind, size and mtime in nanoseconds, plus the kind of the two folders themselves.
When no log is sent, ``logs/`` counts only for the markers a job's state is read from
(``stage.exit`` and the others). A file rewritten, added, removed or replaced by a link changes it;
the service compares it with the one the ledger stored to skip unchanged jobs before parsing
anything.

A file modified within :data:`RACY_SECONDS` of the walk is *racy* (a rewrite in the same clock tick
would keep its mtime): such a job gets no signature, so it is read as before, every time, until
its files have settled.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

from evalport.adapters.formats.stage_exit import STATE_MARKERS
from evalport.domain.artifacts import is_excluded_by_default

RACY_SECONDS = 2.0
_FOLDERS = ("artifacts", "logs")


_KINDS = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l"}
_FORMAT = 0o170000  # stat.S_IFMT's mask, applied inline (a function call per entry is most of the cost)


def racy_after_ns(now_ns: int | None = None) -> int:
    """The mtime (ns) from which a file counts as racy, for a walk starting at ``now_ns`` (now)."""
    return (now_ns if now_ns is not None else time.time_ns()) - int(RACY_SECONDS * 1e9)


def directory_signature(
    job_dir: Path | str, now_ns: int | None = None, *, racy_after: int | None = None, logs: bool = True
) -> str:
    """The signature of ``job_dir``'s files, or '' when it cannot be trusted (racy or unreadable).

    ``racy_after`` (from :func:`racy_after_ns`) lets a caller signing many jobs read the clock once.
    ``logs=False`` (no log is sent): of ``logs/``, only the markers the job's state is read from
    count, so a log that grows changes nothing that is exported and is not walked."""
    if racy_after is None:
        racy_after = racy_after_ns(now_ns)
    parts: list[str] = []
    base = os.fspath(job_dir)
    for folder in _FOLDERS:
        root = os.path.join(base, folder)
        try:
            kind = _KINDS.get(os.lstat(root).st_mode & _FORMAT, "o")
        except FileNotFoundError:
            kind = "-"
        except OSError:
            return ""
        parts.append(f"{folder}\0{kind}")
        if kind != "d":
            continue
        if folder == "logs" and not logs:
            if not _markers(root, racy_after, parts):
                return ""
        elif not _walk(root, folder + "/", racy_after, parts):
            return ""
    parts.sort()
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _walk(root: str, prefix: str, racy_after: int, parts: list[str]) -> bool:
    """Appends an entry per file and folder below ``root``; False when one is racy or unreadable."""
    excluded_names = _EXCLUDED
    kinds = _KINDS
    append = parts.append
    stack = [(root, prefix)]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    excluded = excluded_names.get(name)
                    if excluded is None:
                        excluded = excluded_names[name] = is_excluded_by_default(name)
                    if excluded:
                        continue
                    st = entry.stat(follow_symlinks=False)
                    mtime = st.st_mtime_ns
                    if mtime >= racy_after:
                        return False
                    kind = kinds.get(st.st_mode & _FORMAT, "o")
                    append(f"{prefix}{name}\0{kind}\0{st.st_size}\0{mtime}")
                    if kind == "d":
                        stack.append((entry.path, f"{prefix}{name}/"))
        except OSError:
            return False
    return True


def _markers(logs: str, racy_after: int, parts: list[str]) -> bool:
    """Appends an entry per state marker in ``logs`` (its absence too); False when one is racy."""
    parts.append("logs/\0markers")
    for name in STATE_MARKERS:
        try:
            st = os.lstat(f"{logs}/{name}")
        except FileNotFoundError:
            continue
        except OSError:
            return False
        if st.st_mtime_ns >= racy_after:
            return False
        kind = _KINDS.get(st.st_mode & _FORMAT, "o")
        parts.append(f"logs/{name}\0{kind}\0{st.st_size}\0{st.st_mtime_ns}")
    return True


#: Whether a name is one the reader never lists, by name (names repeat across jobs: asked once).
_EXCLUDED: dict[str, bool] = {}
