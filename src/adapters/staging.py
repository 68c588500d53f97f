"""Artifact staging every sink can call: copy a job's selected files into a folder, incrementally.

The local sink stages into its output folder; tracker sinks stage into a temporary folder and
upload it with one directory call.

Every text file is scanned for secrets whatever its name or size, streamed in chunks of whole
lines, unless the reader already scanned it (:attr:`TaskResult.scans`: it had the bytes in hand)
and the file is still the one it scanned (same inode, size and mtime; else it is scanned again).
A file with no secret is copied by the kernel (``copy_file_range``; never read into Python, never
a hard link); one with secrets is written masked. What
cannot be scanned (a line too long, a read error) is withheld, never sent raw; symbolic links and
special files (FIFOs, devices, sockets) are never followed or opened. Each withheld file is named
with the reason in :attr:`StageResult.withheld`.

Into a shared folder, each file is written at a unique temp name and renamed into place, so nothing
partial is ever visible at a final name. Into a *private* folder (``private=True``: one this process
just made under a name no reader looks at, which the caller renames into place once complete, as the
local sink does for a job's new folder) files are written at their names directly: the folder's
rename is what publishes them, and a temp name and rename per file would only cost system calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from evalport.adapters.file_scan import is_binary, matches
from evalport.adapters.files import file_kind
from evalport.adapters.staging_files import (
    _copy_from_fd,
    _copy_temp,
    _create_out,
    _publish,
    _remove,
    _Unscannable,
)
from evalport.domain.fingerprint import file_signatures as file_signatures  # re-exported for sinks
from evalport.domain.model import FileScan
from evalport.domain.ports import ExportItem
from evalport.domain.secret_text import TextRedactor

StrPath = str | os.PathLike[str]

log = logging.getLogger("evalport.staging")

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 32 << 20
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)


@dataclass(frozen=True)
class StageResult:
    """``files`` staged (relative paths), how many were (re)written, and ``withheld``: (file, why)."""

    files: tuple[str, ...]
    changed: int
    withheld: tuple[tuple[str, str], ...] = ()

    @property
    def note(self) -> str:
        """One line naming each withheld file and why (empty when nothing was withheld)."""
        if not self.withheld:
            return ""
        return "not sent: " + "; ".join(f"{rel} ({why})" for rel, why in self.withheld)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link (not followed)"
    return f"{file_kind(mode)}, not a regular file"


def _same_file(src: os.stat_result, dst: StrPath) -> bool:
    """A staged copy carries its source's mtime; redaction may change its size, so size is not compared."""
    try:
        return os.lstat(dst).st_mtime_ns == src.st_mtime_ns
    except FileNotFoundError:
        return False


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns


def _link(
    src: StrPath, dst: StrPath, fd: int, st: os.stat_result, chunk_bytes: int, private: bool = False
) -> None:
    """A clean file's copy, made by the kernel from ``fd`` (the scanned inode), never read into Python.

    Never a hard link: the exported copy must stay what was exported when the job's file is later
    rewritten in place or the copy edited, and linking would change the source's ctime (what tells a
    rewritten file from the scanned one).
    """
    _copy_temp(dst, fd, st, chunk_bytes, private)


def _read(fd: int, n: int) -> bytes:
    try:
        return os.read(fd, n)
    except OSError as exc:
        raise _Unscannable(f"cannot read it: {exc.strerror or exc}") from exc


def _scan(
    fd: int,
    dst: StrPath,
    st: os.stat_result,
    first: bytes,
    chunk_bytes: int,
    max_line_bytes: int,
    private: bool = False,
) -> bool:
    """Streams ``fd`` through the redactor; on the first change writes the masked copy. True if written.

    Reads up to the size the file had when opened (a file still growing is caught when linked).
    Bytes that are not UTF-8 are carried through unchanged (surrogateescape), so a masked copy
    differs from its source only in the masked spans.
    """
    redactor = TextRedactor()
    pending = bytearray()
    scanned, read = 0, len(first)
    out = None
    tmp: StrPath | None = None
    block = first
    try:
        while True:
            final = not block
            if final:
                lines, pending = bytes(pending), bytearray()
            else:
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    pending += block
                    if len(pending) > max_line_bytes:
                        raise _Unscannable(
                            f"it has a line longer than {max_line_bytes} bytes, too long to scan for secrets"
                        )
                    block = _read(fd, min(chunk_bytes, st.st_size - read)) if read < st.st_size else b""
                    read += len(block)
                    continue
                lines = bytes(pending) + block[:cut] if pending else block[:cut]
                pending = bytearray(block[cut:])
            text = lines.decode("utf-8", "surrogateescape")
            masked = redactor.feed(text)
            if final:
                masked += redactor.finish()
            if out is None and masked != text:
                fd_out, tmp = _create_out(dst, private)
                out = os.fdopen(fd_out, "wb")
                _copy_from_fd(fd, out.write, scanned, chunk_bytes)
            if out is not None:
                out.write(masked.encode("utf-8", "surrogateescape"))
            scanned += len(lines)
            if final:
                break
            block = _read(fd, min(chunk_bytes, st.st_size - read)) if read < st.st_size else b""
            read += len(block)
        if out is None:
            return False
        out.close()
    except BaseException:
        if out is not None:
            out.close()
        if tmp is not None:
            _remove(tmp)
        raise
    assert tmp is not None
    _publish(dst, tmp, st)
    return True


#: What stage_item passes as ``st`` when it did not stat the source (place_file never reads it).
_NOT_LOOKED_AT = os.stat_result((0,) * 10)


def place_file(
    src: StrPath,
    dst: StrPath,
    st: os.stat_result,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    scan: FileScan | None = None,
    private: bool = False,
) -> str | None:
    """Stages ``src`` at ``dst``: text with secrets masked, binary files as they are.

    ``scan``, the reader's scan of ``src``, spares reading it only when it found the file clean and
    the opened file is still that one; otherwise the file is scanned here as it is copied.
    ``private``: ``dst``'s folder is the caller's own, unpublished (the module doc); ``dst`` must not exist.
    ``st`` is not looked at (the open descriptor's stat decides); it stays for callers that pass it.
    Returns None once placed, or the reason the file is withheld (nothing is then written).
    A missing source and errors writing ``dst`` are raised (OSError) for the sink to report:
    the job fails naming the file.
    """
    try:
        fd = os.open(src, _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(src):
            return "a symbolic link (not followed)"
        return f"cannot read it: {exc.strerror or exc}"
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            return _kind(opened.st_mode)
        if scan is not None and scan.clean and matches(scan, opened):
            _link(src, dst, fd, opened, chunk_bytes, private)
            return None
        # never ask for more than the file holds: a 1 MiB read buffer costs more than a small file
        first = _read(fd, min(chunk_bytes, opened.st_size)) if opened.st_size else b""
        binary = is_binary(first)
        if binary or not _scan(fd, dst, opened, first, chunk_bytes, max_line_bytes, private):
            _link(src, dst, fd, opened, chunk_bytes, private)
        return None
    except _Unscannable as exc:
        return str(exc)
    finally:
        os.close(fd)


def _unsafe_path(root: StrPath, rel: str, checked: dict[str, str | None]) -> str | None:
    """Why ``rel`` may not be read below ``root`` (a folder on the way is a link, ``..``), else None."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return "its path leaves the job directory"
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if prefix not in checked:
            try:
                mode = os.lstat(os.path.join(root, prefix)).st_mode
                checked[prefix] = None if stat.S_ISDIR(mode) else f"{prefix} is {_kind(mode)}"
            except FileNotFoundError:
                raise
            except OSError as exc:
                checked[prefix] = f"cannot read {prefix}: {exc.strerror or exc}"
        if checked[prefix] is not None:
            return checked[prefix]
    return None


def _drop_stale(dst: StrPath) -> None:
    """A copy staged earlier of a file now withheld must not stay at its final name."""
    with contextlib.suppress(OSError):
        os.unlink(dst)


def _selected(item: ExportItem) -> list[str]:
    """The paths under the job of its selected artifacts and logs (none without a directory)."""
    if item.directory is None:
        return []
    return [f"artifacts/{a}" for a in item.artifacts] + [f"logs/{name}" for name in item.logs]


def stage_item(
    item: ExportItem,
    target: Path,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    private: bool = False,
) -> StageResult:
    """Stages the item's selected artifacts and logs at ``target/<artifacts|logs>/...``.

    Unchanged files (same mtime as their source) are left alone; text files have secrets masked;
    nothing partial is ever visible at a final name, also when several processes stage the same
    job into the same folder. Files that may not or cannot be sent are in ``withheld``; a
    selected file that no longer exists raises FileNotFoundError naming it (the job fails).

    ``private``: ``target`` is a folder this process just made and publishes itself once complete
    (the module doc); files are written at their names, none is there to compare with.
    """
    files: list[str] = []
    withheld: list[tuple[str, str]] = []
    changed = 0
    made: set[str] = set()
    checked: dict[str, str | None] = {}
    scans = item.result.scans
    # Plain strings in this loop: it runs for every file of every job, and pathlib costs more
    # than the system calls here.
    root = os.fspath(item.directory) if item.directory is not None else ""
    into = os.fspath(target)
    for rel in _selected(item):
        reason = _unsafe_path(root, rel, checked)
        if reason is not None:
            withheld.append((rel, reason))
            continue
        src = f"{root}/{rel}"
        dst = f"{into}/{rel}"
        # Into a private folder nothing is there to compare with, and place_file's open (no link
        # followed, the type checked on the descriptor) says all a stat here would.
        st = _NOT_LOOKED_AT
        reason = None
        if not private:
            try:
                st = os.lstat(src)
                reason = None if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)
            except FileNotFoundError:
                raise
            except OSError as exc:
                reason = f"cannot read it: {exc.strerror or exc}"
        if reason is None:
            if not private and _same_file(st, dst):
                files.append(rel)
                continue
            parent = os.path.dirname(dst)
            if parent not in made:
                try:
                    os.mkdir(parent)
                except FileExistsError:
                    pass
                except FileNotFoundError:
                    os.makedirs(parent, exist_ok=True)
                made.add(parent)
            reason = place_file(
                src,
                dst,
                st,
                chunk_bytes=chunk_bytes,
                max_line_bytes=max_line_bytes,
                scan=scans.get(rel),
                private=private,
            )
        if reason is not None:
            withheld.append((rel, reason))
            _drop_stale(dst)
            continue
        files.append(rel)
        changed += 1
    result = StageResult(tuple(files), changed, tuple(withheld))
    if withheld:
        log.warning("job %s: %s", item.result.job_id, result.note)
    return result
