"""The writing half of staging: a staged file is written at a unique temp name beside its final
name and renamed into place (never a partial file at a final name), or, in a private folder, at
its name directly (see :mod:`evalport.adapters.staging`); a clean file is copied by the kernel."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

StrPath = str | os.PathLike[str]


class _Unscannable(Exception):
    """The file cannot be scanned for secrets, so it is not sent."""


def _temp_name(dst: StrPath) -> str:
    folder, name = os.path.split(os.fspath(dst))
    return os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(6).hex()}.partial")


def _remove(path: StrPath) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _publish(dst: StrPath, tmp: StrPath, st: os.stat_result | None) -> None:
    """Renames a finished temp file into place (never a partial file at ``dst``); removes it on failure.

    In a private folder (``tmp`` is ``dst``: :func:`_create_out`) there is nothing to rename."""
    try:
        if st is not None:
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        if tmp is not dst:
            os.replace(tmp, dst)
    except BaseException:
        _remove(tmp)
        raise


def _copy_from_fd(fd: int, out: Callable[[bytes], object], size: int, chunk_bytes: int) -> None:
    """Writes the first ``size`` bytes of ``fd`` (read by offset, so the scan position is kept)."""
    offset = 0
    while offset < size:
        data = os.pread(fd, min(chunk_bytes, size - offset), offset)
        if not data:
            raise _Unscannable("it shrank while being staged")
        out(data)
        offset += len(data)


def _create_out(dst: StrPath, private: bool) -> tuple[int, StrPath]:
    """Where a staged file is written: ``dst`` itself in a private folder (it must not exist
    yet), else a temp file beside it (renamed by :func:`_publish`)."""
    if private:
        return os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), dst
    return _create_temp(dst)


def _create_temp(dst: StrPath) -> tuple[int, str]:
    """A new file with a name no other process uses, beside ``dst`` (same file system, for rename)."""
    while True:
        tmp = _temp_name(dst)
        try:
            return os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666
            ), tmp
        except FileExistsError:
            continue


def _kernel_copy(fd: int, out: int, size: int) -> bool:
    """Copies the first ``size`` bytes of ``fd`` to ``out`` in the kernel; False if it cannot here."""
    copy = getattr(os, "copy_file_range", None)
    offset = 0
    try:
        while offset < size:
            if copy is not None:
                n = copy(fd, out, size - offset, offset)
            else:
                n = os.sendfile(out, fd, offset, size - offset)
            if n == 0:
                raise _Unscannable("it shrank while being staged")
            offset += n
    except OSError:
        if offset:
            raise
        return False
    return True


def _copy_temp(dst: StrPath, fd: int, st: os.stat_result, chunk_bytes: int, private: bool = False) -> None:
    """A copy of ``fd`` (its first ``st.st_size`` bytes) at a unique temp name, renamed to ``dst``
    (written at ``dst`` directly when ``private``)."""
    out, tmp = _create_out(dst, private)
    try:
        if not _kernel_copy(fd, out, st.st_size):
            os.lseek(out, 0, os.SEEK_SET)
            os.ftruncate(out, 0)
            with os.fdopen(os.dup(out), "wb") as fh:
                _copy_from_fd(fd, fh.write, st.st_size, chunk_bytes)
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))  # by descriptor: no path looked up again
    except BaseException:
        os.close(out)
        _remove(tmp)
        raise
    os.close(out)
    _publish(dst, tmp, None)


def _write_temp(dst: StrPath, st: os.stat_result, fill: Callable[[Callable[[bytes], object]], None]) -> None:
    """Writes a new file at a unique temp name beside ``dst`` via ``fill(write)``, then renames it."""
    fd, tmp = _create_temp(dst)
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out.write)
    except BaseException:
        _remove(tmp)
        raise
    _publish(dst, tmp, st)
