"""What the readers of other harnesses' output share: stable ids, JSON files, JSONL streams.

Every error names the file (and the line of a JSONL stream) and says what to do about it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from evalport.domain.errors import ResultError
from evalport.domain.model import TaskResult
from evalport.domain.samples import Sample

_ID_LENGTH = 16


def stable_id(*parts: object) -> str:
    """A 16-hex-digit id from the parts' text: the same content always gets the same id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:_ID_LENGTH]


def with_samples(result: TaskResult, reader: HarnessReader, base: Path) -> TaskResult:
    """``result`` whose ``samples()`` streams its per-sample records through ``reader`` (from ``base``)."""
    return replace(result, samples=partial(reader.samples, result, base))


#: The largest aggregate JSON file read (lm-eval results, engine bundles); raised by this variable.
MAX_JSON_BYTES_ENV = "EVALPORT_JSON_MAX_BYTES"
DEFAULT_MAX_JSON_BYTES = 256 * 1024 * 1024


def max_json_bytes() -> int:
    raw = os.environ.get(MAX_JSON_BYTES_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_JSON_BYTES


def load_json_file(path: Path, job_id: str | None = None) -> Any:
    """The JSON document in ``path``; a missing, unreadable, truncated or malformed file is a ResultError.

    Only a regular file is read (a symbolic link, FIFO or device is refused, as for the launcher's
    files), and only up to :func:`max_json_bytes`, checked before reading."""
    from evalport.adapters.files import FileTooLargeError, read_regular_file

    limit = max_json_bytes()
    try:
        data = read_regular_file(path, limit)
    except FileTooLargeError as exc:
        raise ResultError(
            f"is {exc.size:,} bytes, over the limit of {limit:,}; raise {MAX_JSON_BYTES_ENV} to read it",
            job_id=job_id,
            path=path,
        ) from None
    except OSError as exc:
        raise ResultError(f"cannot read: {exc.strerror or exc}", job_id=job_id, path=path) from None
    try:
        text = data.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise ResultError(
            f"is not UTF-8 text ({exc.reason}); is it the right file?", job_id=job_id, path=path
        ) from None
    except json.JSONDecodeError as exc:
        # An error in the last few characters (or an open string) means the file ends mid-document.
        cut_short = exc.pos >= len(text.rstrip()) - 16 or exc.msg.startswith("Unterminated string")
        what = "is truncated" if cut_short else "is not valid JSON"
        raise ResultError(
            f"{what} (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "re-run the harness or restore the file",
            job_id=job_id,
            path=path,
        ) from None


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one (for optional blocks)."""
    return value if isinstance(value, Mapping) else {}


def json_object(value: Any, path: Path, what: str, job_id: str | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ResultError(
            f"{what}: expected a JSON object, got {type(value).__name__}", job_id=job_id, path=path
        )
    return value


#: The longest line of a per-sample JSONL file read (one sample); raised by this variable.
MAX_LINE_BYTES_ENV = "EVALPORT_JSONL_MAX_LINE_BYTES"
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024


def max_line_bytes() -> int:
    raw = os.environ.get(MAX_LINE_BYTES_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_LINE_BYTES


def stream_jsonl(path: Path, job_id: str | None = None) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line number, object)`` for each non-blank line, read one line at a time.

    A regular file only (a link or FIFO is an error naming it); a line longer than
    :func:`max_line_bytes` is an error naming its number, never read whole into memory."""
    from evalport.adapters.files import open_regular_file

    try:
        handle = open_regular_file(path)
    except OSError as exc:
        raise ResultError(f"cannot read: {exc.strerror or exc}", job_id=job_id, path=path) from None
    limit = max_line_bytes()
    with handle:
        for number, raw in enumerate(iter(lambda: handle.readline(limit + 1), b""), 1):
            if len(raw) > limit:
                raise ResultError(
                    f"line {number} is over {limit:,} bytes; raise {MAX_LINE_BYTES_ENV} to read it",
                    job_id=job_id,
                    path=path,
                )
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                tail = " (the last line is cut short: truncated file?)" if not raw.endswith(b"\n") else ""
                raise ResultError(
                    f"line {number} is not valid JSON{tail}: {exc}", job_id=job_id, path=path
                ) from None
            if not isinstance(row, Mapping):
                raise ResultError(f"line {number}: expected a JSON object", job_id=job_id, path=path)
            yield number, row


def iso_seconds(text: Any) -> float | None:
    """Unix seconds of an ISO-8601 time (``Z`` allowed); None when it is absent or not a time."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def number_or_none(value: Any) -> float | None:
    """A JSON number as float; None for anything else (``"N/A"``, bools, null, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.nan


class HarnessReader(Protocol):
    """A reader of one harness's output folder; ``evalport.adapters.formats.detect`` picks one."""

    #: The registry name (``--reader`` / ``reader:``).
    name: str
    #: The files it recognises, as shown when no reader matches a path.
    looks_for: str

    def matches(self, path: Path) -> bool:
        """Whether ``path`` (a directory or one file) holds this format; cheap: names only."""
        ...

    def read(self, path: Path) -> list[TaskResult]:
        """One TaskResult per task, aggregates only (per-sample files are not opened).

        Its ``artifacts`` are paths relative to ``path`` (to its folder when it is a file); a result
        with per-sample records has ``samples`` set (:func:`with_samples`)."""
        ...

    def samples(self, result: TaskResult, directory: Path) -> Iterator[Sample]:
        """The per-sample records of ``result`` (read from ``directory``), streamed."""
        ...
