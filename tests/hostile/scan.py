"""Reading back everything a run wrote, the way an attacker would: every byte of every file.

Besides the raw bytes, the text a store keeps where raw bytes may split it: the rows of sqlite
databases (MLflow's store, the ledger: long values spill over pages), the records of ``.wandb``
files (32 KiB blocks with chunk headers), gzip members.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import sqlite3
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

_WANDB_IDENT = b":W&B"
_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")


def regular_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root``, symlinks not followed."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                yield path


def special_files(root: Path) -> list[Path]:
    """FIFOs, sockets and devices under ``root`` (symlinks not followed)."""
    out = []
    for folder, dirs, names in os.walk(root):
        for name in [*names, *dirs]:
            mode = (Path(folder) / name).lstat().st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
                out.append(Path(folder) / name)
    return out


def all_entries(root: Path) -> set[Path]:
    """Every path under ``root`` (files, folders, links, special files), links not followed."""
    out: set[Path] = set()
    for folder, dirs, names in os.walk(root):
        out.update(Path(folder) / n for n in [*dirs, *names])
    return out


def wandb_payloads(data: bytes) -> bytes:
    """The record payloads of a ``.wandb`` file, joined (chunk headers and block padding removed)."""
    out = bytearray()
    pos = 7
    while pos + _CHUNK.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK.size:
            pos += left
            continue
        _crc, length, _kind = _CHUNK.unpack_from(data, pos)
        start = pos + _CHUNK.size
        out += data[start : start + length]
        pos = start + length
    return bytes(out)


def sqlite_text(path: Path) -> bytes:
    """Every row of every table, as text (read-only)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return b""
    try:
        parts = []
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in con.execute(f'SELECT * FROM "{table}"'):
                parts.append(
                    " ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row)
                )
        return "\n".join(parts).encode("utf-8", "surrogateescape")
    except sqlite3.Error as exc:
        return f"(sqlite read failed: {exc})".encode()
    finally:
        con.close()


def views(path: Path) -> Iterator[tuple[str, bytes]]:
    """(label, bytes) for the file's raw bytes and any decoded view of them."""
    data = path.read_bytes()
    yield str(path), data
    if data.startswith(_WANDB_IDENT):
        yield f"{path} (records)", wandb_payloads(data)
    elif data.startswith(b"SQLite format 3\x00"):
        yield f"{path} (rows)", sqlite_text(path)
    elif data.startswith(b"\x1f\x8b"):
        with contextlib.suppress(OSError, EOFError):
            yield f"{path} (gunzipped)", gzip.decompress(data)
