"""Extracting a tar stream that came from another machine, without trusting it.

A remote host (or anything between it and us) decides what the stream holds, so every member is
checked before anything is written: only regular files and directories (no symlinks, hard links,
devices or FIFOs, unless ``allow_links`` lets links stay inside the target), relative names with
no ``..`` component, nothing that lands outside the target folder, not even through a symlinked
directory already there. Python's own ``tarfile.data_filter`` (3.11.4+) runs as a second opinion
where it exists. Files are written by this module (never ``TarFile.extract``), with
``O_NOFOLLOW``, plain permissions and the member's mtime (so unchanged files keep their
fingerprints across exports).
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

CHUNK = 1024 * 1024


class UnsafeArchiveError(Exception):
    """A member would escape the target folder or is a kind of file we never accept."""

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__(f"refused tar member {member!r}: {reason}")


@dataclass
class Extracted:
    """What one stream put on disk: target-relative paths of the files written."""

    files: list[str] = field(default_factory=list)


def check_relative_name(name: str) -> str:
    """The normalized relative path of a member name; raises for absolute paths and ``..``."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(name, "empty name or a NUL byte in it")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(name, "absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafeArchiveError(name, "names the target folder itself")
    if ".." in parts:
        raise UnsafeArchiveError(name, "'..' component (would leave the target folder)")
    return "/".join(parts)


def _inside(root: Path, rel: str) -> bool:
    target = os.path.realpath(root / rel)
    real_root = os.path.realpath(root)
    return target == real_root or target.startswith(real_root + os.sep)


def _check_member(member: tarfile.TarInfo, rel: str, root: Path, allow_links: bool) -> None:
    if (
        member.isdev()
        or member.isfifo()
        or not (member.isfile() or member.isdir() or member.issym() or member.islnk())
    ):
        raise UnsafeArchiveError(member.name, "device, FIFO or other special file")
    if member.issym() or member.islnk():
        if not allow_links:
            raise UnsafeArchiveError(member.name, f"link to {member.linkname!r}; links are not accepted")
        if member.linkname.startswith("/") or ".." in member.linkname.split("/"):
            raise UnsafeArchiveError(member.name, f"link to {member.linkname!r} points outside the target")
        if member.issym() and not _inside(root, posixpath.join(posixpath.dirname(rel), member.linkname)):
            raise UnsafeArchiveError(member.name, f"link to {member.linkname!r} points outside the target")
    if not _inside(root, rel):
        raise UnsafeArchiveError(member.name, "resolves outside the target folder")
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None and hasattr(member, "replace"):
        try:
            data_filter(member.replace(name=rel, deep=False), str(root))
        except tarfile.FilterError as exc:
            raise UnsafeArchiveError(member.name, f"tarfile's data filter: {exc}") from None


def _make_dirs(root: Path, rel_dir: str) -> Path:
    """Creates ``rel_dir`` under ``root`` one level at a time, refusing symlinked components."""
    current = root
    for part in [p for p in rel_dir.split("/") if p]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveError(rel_dir, f"{current} exists and is not a plain directory")
    return current


def _write_file(src: IO[bytes], dest: Path, mtime: float) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(dest, flags, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
    os.utime(dest, (mtime, mtime), follow_symlinks=False)


def extract_stream(
    fileobj: IO[bytes],
    root: Path,
    *,
    rename: Callable[[str], str | None] | None = None,
    allow_links: bool = False,
) -> Extracted:
    """Extracts a tar stream (read sequentially, never seeked) into ``root``.

    ``rename`` maps a member name to its path under ``root`` (``None`` refuses the member: the
    caller knows exactly which names it asked for). Raises :class:`UnsafeArchiveError` at the
    first member that is not acceptable; members before it stay written, all inside ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = Extracted()
    written: set[str] = set()
    with tarfile.open(fileobj=fileobj, mode="r|*") as archive:
        for member in archive:
            rel = check_relative_name(member.name)
            if rename is not None:
                mapped = rename(rel)
                if mapped is None:
                    raise UnsafeArchiveError(member.name, "not one of the files that were asked for")
                rel = check_relative_name(mapped)
            _check_member(member, rel, root, allow_links)
            if member.isdir():
                _make_dirs(root, rel)
                continue
            parent = _make_dirs(root, posixpath.dirname(rel))
            dest = parent / posixpath.basename(rel)
            if os.path.lexists(dest) and not stat.S_ISREG(os.lstat(dest).st_mode):
                raise UnsafeArchiveError(member.name, f"{dest} exists and is not a regular file")
            if member.issym():
                os.symlink(member.linkname, dest)
            elif member.islnk():
                # A hard link may only repeat a file this very stream wrote before.
                linked = check_relative_name(member.linkname)
                linked = check_relative_name(rename(linked) or "") if rename is not None else linked
                if linked not in written:
                    raise UnsafeArchiveError(
                        member.name, f"hard link to {member.linkname!r}, not in this archive"
                    )
                os.link(root / linked, dest)
            else:
                src = archive.extractfile(member)
                assert src is not None
                _write_file(src, dest, member.mtime)
            out.files.append(rel)
            written.add(rel)
    return out
