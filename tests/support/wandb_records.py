"""Read back the ``.wandb`` file that the real W&B SDK writes for an offline run.

Test-only helper: lets the W&B sink be tested against the real SDK in offline
mode (no mocks, no network) by decoding what the SDK actually stored.

File format (written by the Go service ``wandb-core``, ``core/internal/stream/store.go``
and ``core/pkg/leveldb/record.go``; checked against wandb 0.31.0):

* A 7-byte file header ``<4sHB``: ident ``b":W&B"``, magic ``0xBEE1`` (little-endian
  uint16, so the bytes are ``E1 BE``), version ``0``.
* The file is then a LevelDB-style log: 32 KiB blocks, counted from file offset 0,
  so the header sits inside the first block.  Each block holds chunks; a chunk
  has a 7-byte header ``<IHB`` (CRC32, payload length, chunk type) and then the
  payload.  Chunks never cross a block boundary; if fewer than 7 bytes are left in a
  block, they are zero padding.
* Chunk types: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST.  A record is one FULL chunk or
  FIRST, MIDDLE*, LAST.
* The checksum is the plain (unmasked) IEEE CRC32 ``zlib.crc32`` of the type byte
  followed by the payload (wandb uses ``CRCAlgoIEEE``, not LevelDB's masked CRC32C).
* Each record payload is a serialized ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wandb.proto.wandb_internal_pb2 import Record

__all__ = [
    "BLOCK_SIZE",
    "CorruptWandbFileError",
    "OfflineRun",
    "RecordSpan",
    "TruncatedWandbFileError",
    "WandbFileError",
    "find_run_files",
    "load_merged_run",
    "load_run",
    "merge_runs",
    "read_records",
    "record_spans",
    "wait_for_exit",
]

FILE_IDENT = b":W&B"
FILE_MAGIC = 0xBEE1
FILE_VERSION = 0
BLOCK_SIZE = 32 * 1024

_FILE_HEADER = struct.Struct("<4sHB")
_CHUNK_HEADER = struct.Struct("<IHB")
_HEADER_LEN = 7  # both headers are 7 bytes

_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_CHUNK_NAMES = {_FULL: "FULL", _FIRST: "FIRST", _MIDDLE: "MIDDLE", _LAST: "LAST"}

# Run folders are "<mode>-<YYYYMMDD_HHMMSS>-<run id>[-<suffix>]", where mode is
# "offline-run" or "run"; the SDK adds a numeric suffix when the folder exists.
_RUN_DIR_RE = re.compile(r"^(?:offline-run|run)-(\d{8}_\d{6})-(.+)$")
_RUN_FILE_RE = re.compile(r"^run-(.+)\.wandb$")


class WandbFileError(ValueError):
    """The ``.wandb`` file cannot be decoded."""

    def __init__(self, path: str | os.PathLike[str], offset: int | None, message: str) -> None:
        self.path = Path(path)
        self.offset = offset
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{self.path}: {message}{where}")


class CorruptWandbFileError(WandbFileError):
    """Bad header, checksum mismatch, bad chunk sequence or an undecodable record."""


class TruncatedWandbFileError(WandbFileError):
    """The file ends in the middle of a chunk or of a multi-chunk record.

    This is what a reader sees while the SDK is still writing, so
    :func:`wait_for_exit` retries on it; :func:`read_records` raises it.
    """


# --------------------------------------------------------------------------- low level


@dataclass(frozen=True)
class RecordSpan:
    """Where one record sits in the file: ``[start, end)`` byte offsets and its chunk count."""

    start: int
    end: int
    chunks: int


def _split_payloads(data: bytes, path: str | os.PathLike[str]) -> list[tuple[RecordSpan, bytes]]:
    """Return ``(span, payload)`` for every complete record in ``data``."""
    size = len(data)
    if size < _HEADER_LEN:
        raise TruncatedWandbFileError(path, 0, f"file is {size} bytes, shorter than the 7-byte header")
    ident, magic, version = _FILE_HEADER.unpack_from(data, 0)
    if ident != FILE_IDENT or magic != FILE_MAGIC:
        raise CorruptWandbFileError(
            path, 0, f"not a .wandb file: header is {data[:_HEADER_LEN]!r}, expected b':W&B\\xe1\\xbe\\x00'"
        )
    if version != FILE_VERSION:
        raise CorruptWandbFileError(path, 6, f"unsupported .wandb format version {version}")

    payloads: list[tuple[RecordSpan, bytes]] = []
    pending: list[bytes] | None = None
    pending_start = 0
    pos = _HEADER_LEN
    while pos < size:
        block_end = (pos // BLOCK_SIZE + 1) * BLOCK_SIZE
        if block_end - pos < _HEADER_LEN:
            # Block trailer: too small for a chunk header, must be zero padding.
            if data[pos : min(block_end, size)].strip(b"\0"):
                raise CorruptWandbFileError(path, pos, "non-zero bytes in block trailer")
            pos = block_end
            continue
        if size - pos < _HEADER_LEN:
            raise TruncatedWandbFileError(path, pos, "file ends inside a chunk header")
        checksum, length, chunk_type = _CHUNK_HEADER.unpack_from(data, pos)
        if checksum == 0 and length == 0 and chunk_type == 0:
            # Zero-filled rest of a block: LevelDB readers skip it, but only between records.
            if pending is not None or data[pos : min(block_end, size)].strip(b"\0"):
                raise CorruptWandbFileError(path, pos, "zeroed chunk header")
            pos = block_end
            continue
        if chunk_type not in _CHUNK_NAMES:
            raise CorruptWandbFileError(path, pos, f"unknown chunk type {chunk_type}")
        start = pos + _HEADER_LEN
        end = start + length
        if end > block_end:
            raise CorruptWandbFileError(path, pos, f"chunk of {length} bytes overflows its 32 KiB block")
        if end > size:
            raise TruncatedWandbFileError(
                path, pos, f"file ends inside a {_CHUNK_NAMES[chunk_type]} chunk of {length} bytes"
            )
        payload = data[start:end]
        computed = zlib.crc32(payload, zlib.crc32(bytes((chunk_type,)))) & 0xFFFFFFFF
        if computed != checksum:
            raise CorruptWandbFileError(
                path, pos, f"checksum mismatch (stored {checksum:#010x}, computed {computed:#010x})"
            )
        if chunk_type == _FULL:
            if pending is not None:
                raise CorruptWandbFileError(path, pos, "FULL chunk inside an unfinished multi-chunk record")
            payloads.append((RecordSpan(pos, end, 1), payload))
        elif chunk_type == _FIRST:
            if pending is not None:
                raise CorruptWandbFileError(path, pos, "FIRST chunk inside an unfinished multi-chunk record")
            pending, pending_start = [payload], pos
        else:
            if pending is None:
                raise CorruptWandbFileError(
                    path, pos, f"{_CHUNK_NAMES[chunk_type]} chunk without a preceding FIRST chunk"
                )
            pending.append(payload)
            if chunk_type == _LAST:
                payloads.append((RecordSpan(pending_start, end, len(pending)), b"".join(pending)))
                pending = None
        pos = end
    if pending is not None:
        raise TruncatedWandbFileError(path, pending_start, "file ends inside a multi-chunk record starting")
    return payloads


def _record_class() -> type[Record]:
    from wandb.proto import wandb_internal_pb2

    return wandb_internal_pb2.Record


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    """Parse a whole ``.wandb`` file into ``wandb_internal_pb2.Record`` messages.

    Raises :class:`TruncatedWandbFileError` or :class:`CorruptWandbFileError`
    (both ``ValueError``) with the path and byte offset of the problem.
    """
    from google.protobuf.message import DecodeError

    data = Path(path).read_bytes()
    record_cls = _record_class()
    records = []
    for index, (_span, payload) in enumerate(_split_payloads(data, path)):
        record = record_cls()
        try:
            record.ParseFromString(payload)
        except DecodeError as exc:
            raise CorruptWandbFileError(path, None, f"record #{index} is not a valid Record: {exc}") from exc
        records.append(record)
    return records


def record_spans(path: str | os.PathLike[str]) -> list[RecordSpan]:
    """Byte ranges of the records in a ``.wandb`` file (to cut files at record boundaries in tests)."""
    return [span for span, _payload in _split_payloads(Path(path).read_bytes(), path)]


def _kind(record: Record) -> str | None:
    return record.WhichOneof("record_type")


def wait_for_exit(
    path: str | os.PathLike[str], timeout: float = 10.0, poll_interval: float = 0.02
) -> list[Record]:
    """Poll ``path`` until it holds an exit record; return all its records.

    A missing file or a truncated tail (the SDK still writing) is retried; a
    corrupt file raises at once.  Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        problem: str
        try:
            records = read_records(path)
        except FileNotFoundError:
            problem = "the file does not exist"
        except TruncatedWandbFileError as exc:
            problem = f"the file is truncated ({exc})"
        else:
            if any(_kind(r) == "exit" for r in records):
                return records
            problem = f"{len(records)} records but no exit record"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path}: no exit record after {timeout}s: {problem}")
        time.sleep(poll_interval)


# --------------------------------------------------------------------------- run folding


def _decode_json(value_json: str) -> Any:
    return json.loads(value_json) if value_json else None


def _item_path(item: Any) -> list[str]:
    return [item.key] if item.key else list(item.nested_key)


def _set_path(target: dict[str, Any], keys: list[str], value: Any) -> None:
    if not keys:
        return
    for key in keys[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[keys[-1]] = value


def _del_path(target: dict[str, Any], keys: list[str]) -> None:
    for key in keys[:-1]:
        target = target.get(key)  # type: ignore[assignment]
        if not isinstance(target, dict):
            return
    if keys:
        target.pop(keys[-1], None)


def _apply_updates(target: dict[str, Any], message: Any) -> None:
    """Apply a ConfigRecord or SummaryRecord (``update`` and ``remove`` items) in order."""
    for item in message.update:
        _set_path(target, _item_path(item), _decode_json(item.value_json))
    for item in message.remove:
        _del_path(target, _item_path(item))


def _manifest_entries(manifest: Any) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for entry in manifest.contents:
        info: dict[str, Any] = {"digest": entry.digest, "size": entry.size}
        if entry.ref:
            info["ref"] = entry.ref
        entries[entry.path] = info
    if not manifest.contents and manifest.manifest_file_path:
        # Manifests with more than 100k entries go to a gzipped JSON-lines file in the staging dir.
        with gzip.open(manifest.manifest_file_path, "rt") as fh:
            for line in fh:
                if line.strip():
                    raw = json.loads(line)
                    info = {"digest": raw.get("digest", ""), "size": raw.get("size", 0)}
                    if raw.get("ref"):
                        info["ref"] = raw["ref"]
                    entries[raw["path"]] = info
    return entries


@dataclass
class OfflineRun:
    """What one ``.wandb`` file says about a run (one file per init, so per resume)."""

    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    project: str = ""
    entity: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    resumed: bool = False
    exited: bool = False
    exit_code: int | None = None
    start_time: float | None = None
    records: list[Record] = field(default_factory=list, repr=False, compare=False)

    @property
    def user_summary(self) -> dict[str, Any]:
        """``summary`` without the SDK's ``_step``/``_runtime``/``_timestamp`` keys."""
        return {k: v for k, v in self.summary.items() if not k.startswith("_")}

    @property
    def user_history(self) -> list[dict[str, Any]]:
        """``history`` rows without the SDK's ``_step``/``_runtime``/``_timestamp`` keys."""
        return [{k: v for k, v in row.items() if not k.startswith("_")} for row in self.history]

    @classmethod
    def from_records(cls, path: str | os.PathLike[str], records: list[Record]) -> OfflineRun:
        run = cls(path=Path(path), records=list(records))
        for record in records:
            kind = _kind(record)
            if kind == "run":
                run._apply_run_record(record.run)
            elif kind == "config":
                _apply_updates(run.config, record.config)
            elif kind == "summary":
                _apply_updates(run.summary, record.summary)
            elif kind == "history":
                row: dict[str, Any] = {}
                for item in record.history.item:
                    _set_path(row, _item_path(item), _decode_json(item.value_json))
                run.history.append(row)
            elif kind == "artifact":
                art = record.artifact
                run.artifacts.append(
                    {
                        "name": art.name,
                        "type": art.type,
                        "digest": art.digest,
                        "aliases": list(art.aliases),
                        "description": art.description,
                        "metadata": _decode_json(art.metadata) or {},
                        "manifest": _manifest_entries(art.manifest),
                        # Where the SDK staged each file (until `wandb sync` uploads it).
                        "local_paths": {e.path: e.local_path for e in art.manifest.contents if e.local_path},
                        "used": False,
                    }
                )
            elif kind == "use_artifact":
                use = record.use_artifact
                run.artifacts.append(
                    {"name": use.name, "type": use.type, "id": use.id, "manifest": {}, "used": True}
                )
            elif kind == "files":
                for item in record.files.files:
                    if item.path not in run.files:
                        run.files.append(item.path)
            elif kind == "exit":
                run.exited = True
                run.exit_code = record.exit.exit_code
        run.config.pop("_wandb", None)
        run.summary.pop("_wandb", None)
        return run

    def _apply_run_record(self, rec: Any) -> None:
        # The SDK re-sends the whole run record when e.g. run.name or run.tags change;
        # non-empty fields win, in file order.
        for attr, proto_field in (
            ("run_id", "run_id"),
            ("name", "display_name"),
            ("group", "run_group"),
            ("job_type", "job_type"),
            ("notes", "notes"),
            ("project", "project"),
            ("entity", "entity"),
        ):
            value = getattr(rec, proto_field)
            if value:
                setattr(self, attr, value)
        if rec.tags:
            self.tags = list(rec.tags)
        # `resume` = the run was started with a resume request; `resumed` = the server
        # confirmed it (never set offline).
        self.resumed = self.resumed or rec.resumed or rec.resume
        if rec.HasField("start_time"):
            self.start_time = rec.start_time.seconds + rec.start_time.nanos / 1e9
        if rec.HasField("config"):
            _apply_updates(self.config, rec.config)
        if rec.HasField("summary"):
            _apply_updates(self.summary, rec.summary)


def _resolve_wandb_file(path: Path) -> Path:
    if not path.is_dir():
        return path
    direct = sorted(path.glob("*.wandb"))
    if len(direct) == 1:
        return direct[0]
    found = direct or find_run_files(path)
    if not found:
        raise FileNotFoundError(f"no .wandb file under {path}")
    if len(found) > 1:
        listing = ", ".join(str(p) for p in found)
        raise ValueError(f"{len(found)} .wandb files under {path}; pass one of: {listing}")
    return found[0]


def load_run(
    run_dir_or_wandb_file: str | os.PathLike[str], *, timeout: float = 10.0, require_exit: bool = True
) -> OfflineRun:
    """Decode one run from its ``.wandb`` file, its run folder, or a ``dir=`` root with one run.

    With ``require_exit`` (the default) waits up to ``timeout`` seconds for the
    exit record, since ``run.finish()`` may return before the file is flushed.
    """
    path = _resolve_wandb_file(Path(run_dir_or_wandb_file))
    records = wait_for_exit(path, timeout) if require_exit else read_records(path)
    return OfflineRun.from_records(path, records)


def find_run_files(root_dir: str | os.PathLike[str], run_id: str | None = None) -> list[Path]:
    """All run ``.wandb`` files under ``root_dir``, oldest first.

    Offline mode writes ``<dir>/wandb/offline-run-<YYYYMMDD_HHMMSS>-<id>[-N]/run-<id>.wandb``
    once per ``wandb.init`` (so once per resume too).  The ``latest-run`` symlink is
    not followed.  Order: folder timestamp, then the SDK's collision suffix, then mtime.
    """
    found: list[tuple[tuple[str, int, int, str], Path]] = []
    for dirpath, _dirnames, filenames in os.walk(root_dir):
        folder = Path(dirpath)
        for filename in filenames:
            match = _RUN_FILE_RE.match(filename)
            if not match:
                continue
            file_run_id = match.group(1)
            if run_id is not None and file_run_id != run_id:
                continue
            file_path = folder / filename
            stamp, suffix = "", 0
            dir_match = _RUN_DIR_RE.match(folder.name)
            if dir_match:
                stamp = dir_match.group(1)
                rest = dir_match.group(2)
                if rest.startswith(file_run_id):
                    tail = rest[len(file_run_id) :].lstrip("-")
                    suffix = int(tail) if tail.isdigit() else 0
            found.append(((stamp, suffix, file_path.stat().st_mtime_ns, str(file_path)), file_path))
    return [p for _key, p in sorted(found)]


# --------------------------------------------------------------------------- one run id, many folders


def _deep_update(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def merge_runs(runs: list[OfflineRun]) -> OfflineRun:
    """Fold the folders of one run id (oldest first) into what a server would hold after `wandb sync`.

    Offline resume writes one folder per init and merges nothing, so: later config (deeply) and
    summary values win, history rows and artifacts accumulate, non-empty run fields win.
    """
    if not runs:
        raise ValueError("merge_runs needs at least one run")
    merged = OfflineRun(path=runs[-1].path)
    for run in runs:
        for attr in ("run_id", "name", "group", "job_type", "notes", "project", "entity"):
            if getattr(run, attr):
                setattr(merged, attr, getattr(run, attr))
        if run.tags:
            merged.tags = list(run.tags)
        _deep_update(merged.config, json.loads(json.dumps(run.config)))
        merged.summary.update(run.summary)
        merged.history.extend(run.history)
        merged.artifacts.extend(run.artifacts)
        merged.files.extend(f for f in run.files if f not in merged.files)
        merged.resumed = merged.resumed or run.resumed
        merged.exited, merged.exit_code = run.exited, run.exit_code
        merged.start_time = merged.start_time if merged.start_time is not None else run.start_time
        merged.records.extend(run.records)
    return merged


def load_merged_run(
    root_dir: str | os.PathLike[str], run_id: str, *, timeout: float = 10.0
) -> OfflineRun | None:
    """Every folder of ``run_id`` under ``root_dir`` merged in time order, or None if there is none."""
    files = find_run_files(root_dir, run_id=run_id)
    if not files:
        return None
    return merge_runs([load_run(f, timeout=timeout) for f in files])
