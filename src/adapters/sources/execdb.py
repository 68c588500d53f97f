"""The launcher's execution database: ``~/.nemo-evaluator/exec-db/exec.v1.jsonl``.

Every line is validated (:mod:`records`) before it counts: a line that is no JSON object, or whose
fields have the wrong shape, is skipped with a warning naming ``<file>:<line>`` and the field, and
never replaces an earlier valid line for the same job.

The launcher appends a line per job and update, so a team's DB holds many lines per job and only
the last valid one counts. The file is read backwards: a line that plainly names (see
:func:`named_job`) a job already decided by a later valid line is superseded, and is not parsed.
A superseded line's problems are therefore not reported; it is of no consequence.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from evalport.adapters.sources.records import ExecDbRecord, parse_record

log = logging.getLogger("evalport.sources.execdb")

DEFAULT_EXEC_DB = Path("~/.nemo-evaluator/exec-db/exec.v1.jsonl")
EXEC_DB_ENV = "EVALPORT_EXEC_DB"


def default_exec_db_path() -> Path:
    return Path(os.environ.get(EXEC_DB_ENV) or DEFAULT_EXEC_DB).expanduser()


@dataclass
class ExecDbRecords:
    records: dict[str, ExecDbRecord] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


_JOB_ID_KEY = b'"job_id"'
_NAMED_JOB = re.compile(rb'"job_id"\s*:\s*"([^"\\]{1,255})"')


def named_job(line: bytes) -> str | None:
    """The job id ``line`` plainly names, without parsing it: the key occurs once, its value has no
    escape, and the line holds no ``\\u`` escape (which could spell the key a second time). None
    when in doubt; a wrong answer could only ever skip a line naming a job decided later."""
    if line.count(_JOB_ID_KEY) != 1 or b"\\u" in line:
        return None
    m = _NAMED_JOB.search(line)
    return m[1].decode("utf-8", "replace") if m else None


def read_exec_db(path: Path) -> ExecDbRecords:
    """Valid records by job id (in the order jobs first appear); a later valid line for a job
    replaces an earlier one."""
    out = ExecDbRecords()
    if not path.exists():
        return out
    if not path.is_file():
        out.warnings.append(f"{path}: the execution DB is not a regular file; it is not read")
        return out
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if not size:
                return out
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
                _read_backwards(path, view, size, out)
    except (OSError, ValueError) as exc:
        out.warnings.append(f"{path}: cannot read the execution DB: {getattr(exc, 'strerror', None) or exc}")
    return out


def _read_backwards(path: Path, view: mmap.mmap, size: int, out: ExecDbRecords) -> None:
    """Fills ``out`` from the mapped file, last line first (each line copied out of the map alone,
    so a DB of any size costs the memory of its records, not of the file)."""
    starts = array("q", [0])
    position = view.find(b"\n")
    while position != -1:
        starts.append(position + 1)
        position = view.find(b"\n", position + 1)
    decided: dict[str, ExecDbRecord] = {}
    first_seen: dict[str, int] = {}
    warnings: list[tuple[int, str]] = []
    for index in range(len(starts) - 1, -1, -1):
        end = starts[index + 1] - 1 if index + 1 < len(starts) else size
        raw = view[starts[index] : end]
        named = named_job(raw)
        if named is not None and named in decided:
            first_seen[named] = index
            continue
        if not raw.strip():
            continue
        lineno = index + 1
        try:
            record = parse_record(json.loads(raw))
        except (ValueError, RecursionError) as exc:
            message = f"{path}:{lineno}: skipped a corrupt execution-DB line: {_clip(_problem(exc))}"
            warnings.append((lineno, message))
            log.debug(message)
            continue
        first_seen[record.job_id] = index
        if record.job_id in decided:
            continue
        decided[record.job_id] = record
        warnings.extend(
            (lineno, f"{path}:{lineno}: job {record.job_id}: {problem}; that part is ignored")
            for problem in record.shape_problems()
        )
    out.records = {j: decided[j] for j in sorted(decided, key=first_seen.__getitem__)}
    out.warnings.extend(message for _, message in sorted(warnings, key=lambda w: w[0]))


def _problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "not valid JSON (nested too deeply)"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc)


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
