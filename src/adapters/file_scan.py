"""The secret scan of a file's bytes, done where the bytes are already in memory (the reader).

One rule with staging (:mod:`evalport.adapters.staging`): a file whose first 8 KiB hold a NUL byte
is binary and sent as it is; a text file is clean when the redactor changes nothing in it. The
reader records a :class:`~evalport.domain.model.FileScan` per file it sends, so staging copies a
clean, unchanged file without reading it again and streams every other file through the redactor.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from evalport.domain.model import FileScan
from evalport.domain.secret_text import TextRedactor

BINARY_SNIFF_BYTES = 8192
#: Larger files are left to staging's streaming scan (bounded memory) instead of being read whole.
MAX_SCAN_BYTES = 8 << 20
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)


def is_binary(head: bytes) -> bool:
    return b"\0" in head[:BINARY_SNIFF_BYTES]


def is_clean(data: bytes) -> bool:
    """True when staging would send ``data`` unchanged: binary, or text the redactor leaves alone."""
    if is_binary(data):
        return True
    text = data.decode("utf-8", "surrogateescape")
    redactor = TextRedactor()
    return redactor.feed(text) + redactor.finish() == text


def scan_of(path: Path, data: bytes, before: os.stat_result) -> FileScan | None:
    """The scan of ``data``, read from ``path`` whose descriptor's stat was ``before``.

    None (nothing recorded: staging scans the file itself) unless ``data`` is the whole file and
    the file still has the identity it had when it was opened.
    """
    if len(data) != before.st_size or len(data) > MAX_SCAN_BYTES:
        return None
    try:
        after = os.lstat(path)
    except OSError:
        return None
    if _identity(after) != _identity(before):
        return None
    clean = is_clean(data)
    return FileScan(
        before.st_ino, before.st_dev, before.st_size, before.st_mtime_ns, before.st_ctime_ns, clean
    )


def scan_file(path: Path) -> FileScan | None:
    """Reads and scans a regular file of at most :data:`MAX_SCAN_BYTES`; None for anything else."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or before.st_size > MAX_SCAN_BYTES:
            return None
        data = os.read(fd, before.st_size + 1) if before.st_size else b""
    except OSError:
        return None
    finally:
        os.close(fd)
    return scan_of(path, data, before)


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def matches(scan: FileScan, st: os.stat_result) -> bool:
    """True when ``st`` is the file ``scan`` was taken of, unchanged since."""
    return scan.identity() == _identity(st)
