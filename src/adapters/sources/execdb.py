"""The launcher's execution database: ``~/.nemo-evaluator/exec-db/exec.v1.jsonl``.

Every line is validated (:mod:`records`) before it counts: a line that is no JSON object, or whose
fields have the wrong shape, is skipped with a warning naming ``<file>:<line>`` and the field, and
never replaces an earlier valid line for the same job.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
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


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        yield from enumerate(fh, start=1)


def read_exec_db(path: Path) -> ExecDbRecords:
    """Valid records by job id; a later valid line for a job replaces an earlier one."""
    import json

    out = ExecDbRecords()
    if not path.exists():
        return out
    if not path.is_file():
        out.warnings.append(f"{path}: the execution DB is not a regular file; it is not read")
        return out
    try:
        for lineno, raw in _iter_lines(path):
            if not raw.strip():
                continue
            try:
                record = parse_record(json.loads(raw))
            except (ValueError, RecursionError) as exc:
                message = f"{path}:{lineno}: skipped a corrupt execution-DB line: {_clip(_problem(exc))}"
                out.warnings.append(message)
                log.debug(message)
                continue
            for problem in record.shape_problems():
                out.warnings.append(f"{path}:{lineno}: job {record.job_id}: {problem}; that part is ignored")
            out.records[record.job_id] = record
    except OSError as exc:
        out.warnings.append(f"{path}: cannot read the execution DB: {exc.strerror or exc}")
    return out


def _problem(exc: Exception) -> str:
    import json

    if isinstance(exc, RecursionError):
        return "not valid JSON (nested too deeply)"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc)


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
