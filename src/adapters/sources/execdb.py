"""The launcher's execution database: ``~/.nemo-evaluator/exec-db/exec.v1.jsonl``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("evalport.sources.execdb")

DEFAULT_EXEC_DB = Path("~/.nemo-evaluator/exec-db/exec.v1.jsonl")
EXEC_DB_ENV = "EVALPORT_EXEC_DB"


def default_exec_db_path() -> Path:
    return Path(os.environ.get(EXEC_DB_ENV) or DEFAULT_EXEC_DB).expanduser()


@dataclass
class ExecDbRecords:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        yield from enumerate(fh, start=1)


def read_exec_db(path: Path) -> ExecDbRecords:
    """Records by job id; a later line for a job replaces an earlier one; corrupt lines are skipped."""
    out = ExecDbRecords()
    if not path.exists():
        return out
    for lineno, raw in _iter_lines(path):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            job_id = rec["job_id"]
            rec["invocation_id"]
            if not isinstance(job_id, str):
                raise TypeError("job_id is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            message = f"{path}:{lineno}: skipped a corrupt execution-DB line ({type(exc).__name__}: {exc})"
            out.warnings.append(message)
            log.debug(message)
            continue
        out.records[job_id] = rec
    return out
