"""A job directory's *file signature*: what its files look like on disk, without reading any of them.

The signature lists every entry below ``artifacts/`` and ``logs/`` that the reader may look at (the
same walk as :func:`evalport.adapters.files.list_files`: no link followed, never-sent folders not
entered) with its kind, size and mtime in nanoseconds, plus the kind of the two folders themselves.
A file rewritten, added, removed or replaced by a link changes it; the service compares it with the
one the ledger stored to skip unchanged jobs before parsing anything.

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

from evalport.domain.artifacts import is_excluded_by_default

RACY_SECONDS = 2.0
_FOLDERS = ("artifacts", "logs")


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "o")


_KINDS = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l"}


def directory_signature(job_dir: Path, now_ns: int | None = None) -> str:
    """The signature of ``job_dir``'s files, or '' when it cannot be trusted (racy or unreadable)."""
    racy_after = (now_ns if now_ns is not None else time.time_ns()) - int(RACY_SECONDS * 1e9)
    parts: list[str] = []
    for folder in _FOLDERS:
        root = os.path.join(job_dir, folder)
        try:
            kind = _kind(os.lstat(root).st_mode)
        except FileNotFoundError:
            kind = "-"
        except OSError:
            return ""
        parts.append(f"{folder}\0{kind}")
        if kind == "d" and not _walk(root, folder + "/", racy_after, parts):
            return ""
    parts.sort()
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _walk(root: str, prefix: str, racy_after: int, parts: list[str]) -> bool:
    """Appends an entry per file and folder below ``root``; False when one is racy or unreadable."""
    stack = [(root, prefix)]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    excluded = _EXCLUDED.get(name)
                    if excluded is None:
                        excluded = _EXCLUDED[name] = is_excluded_by_default(name)
                    if excluded:
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if st.st_mtime_ns >= racy_after:
                        return False
                    kind = _kind(st.st_mode)
                    rel = prefix + name
                    parts.append(f"{rel}\0{kind}\0{st.st_size}\0{st.st_mtime_ns}")
                    if kind == "d":
                        stack.append((entry.path, rel + "/"))
        except OSError:
            return False
    return True


#: Whether a name is one the reader never lists, by name (names repeat across jobs: asked once).
_EXCLUDED: dict[str, bool] = {}
