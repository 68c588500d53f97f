"""Artifact staging every sink can call: copy a job's selected files into a folder, incrementally.

The local sink stages into its output folder; tracker sinks stage into a temporary folder and
upload it with one directory call.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
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


def file_signatures(item: ExportItem) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of each file an item would send; a missing file is (path, -1, -1).

    Cheap to compute (stat only), and changes whenever a file is rewritten: sinks and the ledger
    put it in their fingerprints of what was sent.
    """
    out = []
    for rel, path in item.artifact_paths():
        try:
            st = path.stat()
            out.append((rel, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((rel, -1, -1))
    return out


def _same_file(src: os.stat_result, dst: Path) -> bool:
    """A staged copy carries its source's mtime; redaction may change its size, so size is not compared."""
    try:
        return dst.stat().st_mtime_ns == src.st_mtime_ns
    except FileNotFoundError:
        return False


def _replace_via_temp(dst: Path, write: Callable[[Path], None], st: os.stat_result | None) -> None:
    """Writes through a temp name and renames it into place: readers never see a partial file."""
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        tmp.unlink(missing_ok=True)
        write(tmp)
        if st is not None:
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link(src: Path, dst: Path, st: os.stat_result) -> None:
    """A hard link where the file system allows it (far cheaper than a copy), else a copy.

    Artifacts are finished results, so sharing the inode is safe; the link survives the source's
    deletion, and a source rewritten later (new mtime) is staged again. A new link is atomic by
    itself; replacing an existing file goes through a temp name.
    """
    if not dst.exists():
        try:
            os.link(src, dst)
            return
        except FileExistsError:
            pass
        except OSError:
            _replace_via_temp(dst, lambda tmp: shutil.copyfile(src, tmp), st)
            return
    try:
        _replace_via_temp(dst, lambda tmp: os.link(src, tmp), None)
    except OSError:
        _replace_via_temp(dst, lambda tmp: shutil.copyfile(src, tmp), st)


def place_file(src: Path, dst: Path, st: os.stat_result) -> None:
    """Stages ``src`` at ``dst``; text files that hold secrets are written with them masked."""
    if src.suffix.lower() in REDACTED_SUFFIXES and st.st_size <= MAX_REDACTED_SIZE:
        data = src.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            redacted = redact_config_text(text)
            if redacted != text:
                _replace_via_temp(dst, lambda tmp: tmp.write_bytes(redacted.encode("utf-8")), st)
                return
    _link(src, dst, st)


def stage_item(item: ExportItem, target: Path) -> StageResult:
    """Stages the item's selected artifacts and logs at ``target/<artifacts|logs>/...``.

    Unchanged files (same mtime as their source) are left alone; text files have secrets masked;
    nothing partial is ever visible at a final name.
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
            try:
                dst.parent.mkdir()
            except FileExistsError:
                pass
            except FileNotFoundError:
                dst.parent.mkdir(parents=True, exist_ok=True)
            made.add(dst.parent)
        place_file(src, dst, st)
        changed += 1
    return StageResult(tuple(files), changed)
