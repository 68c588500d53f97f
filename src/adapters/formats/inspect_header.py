"""A fast read of an Inspect log's header (everything but the samples), for aggregates.

inspect_ai's ``read_eval_log(header_only=True)`` validates the whole header into pydantic models:
about 3 ms a log, so 1,000 logs take longer than the 3 s the project targets. For the two layouts
inspect_ai 0.3 writes (log schema ``version`` 2) this reads the same JSON directly: the
``header.json`` entry of a ``.eval`` zip (Zstandard method 93, decompressed with ``zstandard``,
which inspect-ai depends on, CRC checked) or the top-level keys of a ``.json`` log up to
``samples`` (``ijson``, also an inspect-ai dependency, so the samples are never parsed). Anything
unexpected (another schema version, a missing module, a damaged file) returns None and the caller
falls back to inspect_ai's reader, which also produces the error message for a damaged file.
"""

from __future__ import annotations

import importlib
import json
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
_ZSTD = 93
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_MAGIC = b"PK\x03\x04"


def fast_header(log_file: Path) -> Mapping[str, Any] | None:
    try:
        doc = _eval_header(log_file) if log_file.suffix == ".eval" else _json_header(log_file)
    except Exception:  # whatever it is, inspect_ai's reader decides and explains
        return None
    if not isinstance(doc, Mapping) or doc.get("version") != SCHEMA_VERSION or "eval" not in doc:
        return None
    return doc


def _eval_header(log_file: Path) -> Any:
    with zipfile.ZipFile(log_file) as archive:
        info = archive.getinfo("header.json")
        if info.compress_type != _ZSTD:
            return json.loads(archive.read(info))
        zstandard = importlib.import_module("zstandard")
        handle = archive.fp
        assert handle is not None
        handle.seek(info.header_offset)
        magic, name_length, extra_length = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
        if magic != _LOCAL_MAGIC:
            return None
        handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
        data = zstandard.ZstdDecompressor().decompress(
            handle.read(info.compress_size), max_output_size=info.file_size
        )
    if zlib.crc32(data) != info.CRC:
        return None
    return json.loads(data)


def json_cut_short(log_file: Path) -> bool:
    """Whether a ``.json`` log ends before its closing brace (inspect_ai would still read its header)."""
    with log_file.open("rb") as handle:
        handle.seek(max(0, log_file.stat().st_size - 64))
        return not handle.read().rstrip().endswith(b"}")


def _json_header(log_file: Path) -> Any:
    ijson = importlib.import_module("ijson")
    doc: dict[str, Any] = {}
    with log_file.open("rb") as handle:
        key: str | None = None
        builder: Any = None
        # Events, not kvitems: kvitems would build the whole ``samples`` value before yielding it.
        for prefix, event, value in ijson.parse(handle, use_float=True):
            if prefix == "" and event in ("map_key", "end_map"):
                if key is not None:
                    doc[key] = builder.value
                if event == "end_map" or value == "samples":
                    break
                key, builder = value, ijson.ObjectBuilder()
            elif key is not None:
                builder.event(event, value)
    return doc
