"""The local sink's view of its own files between calls: the summary it wrote (kept while the file
is still that one) and the folders it made once per export."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class KeptSummary:
    """The runs (and their JSON lines) of the summary file this sink wrote, with the file's
    identity then: the next batch of the run reuses them while the file is still that one (anyone
    else's write changes its inode or ctime, and then the file is read again)."""

    identity: tuple[int, int, int, int, int]
    runs: dict[str, dict[str, Any]]
    lines: dict[str, str]

    @classmethod
    def of(cls, path: Path, runs: dict[str, dict[str, Any]], lines: dict[str, str]) -> KeptSummary | None:
        identity = _identity(path)
        return cls(identity, runs, lines) if identity is not None else None

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
