"""One top-level entry of a YAML mapping document, parsed without parsing the rest of it.

``metadata.yaml`` carries the launcher's whole resolved config and, at its end, the command line;
a job that has its config from the execution DB needs only the command. Finding the entry's lines
in the bytes and parsing just those is exact for the block style YAML dumpers write; anything
else (flow style, anchors or aliases, tags, document markers or directives, tabs, a quoted or
repeated key) answers "unusual" and the caller parses the whole document.
"""

from __future__ import annotations

from typing import Any

from evalport.adapters.formats.safe_yaml import YamlLimits, load_yaml_bytes

UNUSUAL = object()
#: Bytes that can start anchors, aliases, tags, flow collections or directives somewhere in a line.
_UNUSUAL_BYTES = (b"&", b"*", b"!", b"%")


def top_level_entry(data: bytes, key: str, limits: YamlLimits | None = None) -> Any:
    """The value of ``key:`` at column 0 of the block mapping in ``data`` (None when the document
    has no such key), or :data:`UNUSUAL` when the document is not plain enough to tell that way."""
    head = data.lstrip()
    if not head or head[:1] in (b"{", b"[", b"-", b"%") or head.startswith(b"---"):
        return UNUSUAL
    if b"\n---" in data or b"\n..." in data or b"\t" in data or b"\r" in data:
        return UNUSUAL
    name = key.encode()
    marker = name + b":"
    starts = [i for i in _line_starts_with(data, marker)]
    if not starts:
        return UNUSUAL if name in data else None  # named some other way (quoted, explicit key)
    if len(starts) > 1:
        return UNUSUAL  # a duplicate key: the full parse says what is wrong
    start = starts[0]
    end = start
    while True:
        newline = data.find(b"\n", end)
        if newline < 0:
            end = len(data)
            break
        end = newline + 1
        if end < len(data) and data[end : end + 1] not in (b" ", b"\n"):
            break
    entry = data[start:end]
    if any(b in entry for b in _UNUSUAL_BYTES):
        return UNUSUAL
    doc = load_yaml_bytes(entry, limits)
    if not isinstance(doc, dict) or list(doc) != [key]:
        return UNUSUAL
    return doc[key]


def _line_starts_with(data: bytes, marker: bytes) -> list[int]:
    out = [0] if data.startswith(marker) else []
    needle = b"\n" + marker
    at = data.find(needle)
    while at >= 0:
        out.append(at + 1)
        at = data.find(needle, at + 1)
    return out
