"""Artifact staging every sink can call: copy a job's selected files into a folder, incrementally.

The local sink stages into its output folder; tracker sinks stage into a temporary folder and
upload it with one directory call.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from evalport.domain.ports import ExportItem
from evalport.domain.redact import redact_config_text

REDACTED_SUFFIXES = (".yml", ".yaml", ".json", ".env", ".sh", ".cfg", ".ini", ".toml", ".txt", ".log")
MAX_REDACTED_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class StageResult:
    files: tuple[str, ...]
    changed: int


def _same_file(src: os.stat_result, dst: Path) -> bool:
    """A staged copy carries its source's mtime; redaction may change its size, so size is not compared."""
    try:
        return dst.stat().st_mtime_ns == src.st_mtime_ns
    except FileNotFoundError:
        return False


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows it (about 10x cheaper than a copy), else a copy.

    Artifacts are finished results, so sharing the inode is safe; the link survives the source's
    deletion, and a source rewritten later (a new inode, a new mtime) is staged again.
    """
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def copy_redacted(src: Path, dst: Path, st: os.stat_result) -> None:
    """Stages ``src`` at ``dst``; text files that may hold secrets are written with them masked."""
    if src.suffix.lower() in REDACTED_SUFFIXES and st.st_size <= MAX_REDACTED_SIZE:
        data = src.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            _link_or_copy(src, dst)
            return
        redacted = redact_config_text(text)
        if redacted == text:
            _link_or_copy(src, dst)
        else:
            dst.write_bytes(redacted.encode("utf-8"))
    else:
        _link_or_copy(src, dst)


def stage_item(item: ExportItem, target: Path) -> StageResult:
    """Copies the item's selected artifacts and logs to ``target/<artifacts|logs>/...``.

    Unchanged files (same mtime) are not copied again; text files have secrets masked; each copy
    goes to a temp name and is renamed into place, so an interrupted export leaves no partial file.
    """
    files: list[str] = []
    changed = 0
    made: set[Path] = set()
    for rel, src in item.artifact_paths():
        dst = target / rel
        st = src.stat()
        files.append(rel)
        if _same_file(st, dst):
            continue
        if dst.parent not in made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            made.add(dst.parent)
        tmp = dst.with_name(f".{dst.name}.partial")
        try:
            tmp.unlink(missing_ok=True)
            copy_redacted(src, tmp, st)
            if not os.path.samefile(src, tmp):
                os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        changed += 1
    return StageResult(tuple(files), changed)
