"""File helpers every adapter shares: atomic writes, listing a job's files, reading untrusted files."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from evalport.domain.artifacts import is_excluded_by_default


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes, *, parent_exists: bool = False) -> None:
    """Writes ``data`` to a temp file beside ``path`` and renames it over ``path``.

    Readers see the old content or the new one, never a partial file; a failed write leaves
    no temp file behind. The file keeps its old permissions, or gets the usual ones for a new
    file. No fsync: a crash may lose the newest write but never leaves a partial file at ``path``
    (the rename is atomic). ``parent_exists`` spares the folder check when the caller made it.
    """
    atomic_write_parts(path, (data,), parent_exists=parent_exists)


def atomic_write_text_parts(path: Path, parts: Iterable[str], *, parent_exists: bool = False) -> None:
    """:func:`atomic_write_bytes` of the UTF-8 text ``parts`` make one after the other, never
    joined in memory (a team's multi-run summary is tens of MB)."""
    atomic_write_parts(path, (part.encode("utf-8") for part in parts), parent_exists=parent_exists)


def atomic_write_parts(path: Path, parts: Iterable[bytes], *, parent_exists: bool = False) -> None:
    """:func:`atomic_write_bytes` of the bytes ``parts`` make one after the other."""
    path = Path(path)
    if not parent_exists:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = None  # created with 0o666 minus the umask, as any new file
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            for part in parts:
                fh.write(part)
        if mode is not None and mode != 0o666 & ~_umask():
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _open_temp(path: Path) -> tuple[int, str]:
    """A new file with a name no other process uses, beside ``path``, with a new file's usual mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_text(path: Path, text: str, *, parent_exists: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), parent_exists=parent_exists)


class NotRegularFileError(OSError):
    """The path is a FIFO, device, socket, directory or symbolic link: never opened for reading."""


class FileTooLargeError(OSError):
    """The file is larger than the caller's limit; nothing was read."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(errno.EFBIG, f"{size:,} bytes, over the limit of {limit:,}", str(path))


def file_kind(mode: int) -> str:
    """What a non-regular entry is, for messages: "a FIFO", "a symbolic link", ..."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"


_READ_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def read_regular_file(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path`` (see :func:`read_regular_file_stat`)."""
    return read_regular_file_stat(path, max_bytes)[0]


def open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (not a link to one), for streaming it.

    The same guarantees as :func:`read_regular_file_stat` (a FIFO never blocks, the type is checked
    on the open descriptor); raises ``FileNotFoundError``, :class:`NotRegularFileError` or ``OSError``.
    """
    fd, _info = _open_regular(path)
    return os.fdopen(fd, "rb")


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """An open descriptor of ``path`` and its stat, if it is a regular file (see above)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise NotRegularFileError(
                exc.errno, "is a symbolic link; only regular files are read", str(path)
            ) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegularFileError(
            errno.EINVAL, f"is {file_kind(info.st_mode)}, not a regular file; it is not read", str(path)
        )
    return fd, info


def read_regular_file_stat(path: Path, max_bytes: int | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` if it is a regular file (not a link to one) of at most ``max_bytes``.

    Opened non-blocking and without following a final symlink, so a FIFO, device or socket planted
    where a result file belongs can never hang or feed the reader; type and size are checked on the
    open descriptor (no race between a check and the open). Raises ``FileNotFoundError``,
    :class:`NotRegularFileError` (its ``strerror`` says what the path is), :class:`FileTooLargeError`
    or another ``OSError``. The stat is the open descriptor's, taken before the bytes were read.
    """
    fd, info = _open_regular(path)
    with os.fdopen(fd, "rb", buffering=0) as fh:
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileTooLargeError(path, info.st_size, max_bytes)
        data = _read_at_most(fh, (info.st_size if max_bytes is None else max_bytes) + 1)
    if max_bytes is not None and len(data) > max_bytes:  # it grew after fstat
        raise FileTooLargeError(path, len(data), max_bytes)
    return data, info


def _read_at_most(fh, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = fh.read(min(limit - total, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def list_files(
    root: Path,
    passed_over: list[str] | None = None,
    never_sent: Callable[[str], bool] = is_excluded_by_default,
) -> list[str]:
    """Relative POSIX paths of the regular files below ``root`` (no links followed), sorted.

    A ``root`` that is itself a symbolic link lists nothing: it may lead out of the job directory.
    Entries that are neither files nor folders (links, FIFOs, sockets, devices) are never listed;
    ``passed_over`` (when given) receives ``"<relative path> (<what it is>)"`` for each of them.
    Entries whose name ``never_sent`` accepts (by default the files no sink ever sends: caches,
    databases, ``preprocessed_datasets``, ...) are left out, and such folders are not walked.
    """
    out: list[str] = []
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            return out
    except OSError:
        return out
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:  # an unreadable subfolder: its files cannot be sent anyway
            continue
        for entry in entries:
            if never_sent(entry.name):
                continue
            rel = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), rel + "/"))
            elif entry.is_file(follow_symlinks=False):
                out.append(rel)
            elif passed_over is not None:
                passed_over.append(f"{rel} ({_entry_kind(entry)})")
    out.sort()
    return out


def _entry_kind(entry: os.DirEntry[str]) -> str:
    try:
        return file_kind(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return "unreadable"
