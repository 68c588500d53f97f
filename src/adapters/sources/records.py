"""An execution-DB line as the launcher writes it, validated before it becomes a Job.

The execution DB is outside data: a hand edit, a crashed writer or another tool can leave lines of
any shape. A line is accepted only when the fields evalport relies on have their shapes:

- ``invocation_id`` and ``job_id`` are strings usable as one path component (they name folders in
  the local sink and keys elsewhere): no ``/``, ``\\`` or NUL, not ``.``/``..``, at most 255
  characters; and ``job_id`` is ``<invocation_id>.<something>``;
- ``timestamp`` is a finite number (a numeric string is accepted) or missing;
- ``data`` and ``config`` are mappings (or missing); the paths in ``data`` are strings without NUL,
  and the SSH host and user do not start with ``-`` (they are command-line arguments);
- ``executor`` is a string (or missing, meaning ``local``).

Anything else in ``config`` keeps its shape; the code that reads a part of it checks that part.

A well-formed line (the launcher's own) is checked here directly, with the same rules and without
pydantic; only a line that fails a check goes through the pydantic model (:mod:`record_model`),
whose error names the fields that are wrong. Either way the result is the same
:class:`ExecDbRecord`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_ID_LENGTH = 255
PATH_FIELDS = ("output_dir", "remote_rundir_path")
SSH_FIELDS = ("hostname", "username")
_SAFE_INT = 2**53


def check_path_component(value: str, what: str = "id") -> str:
    """``value`` if it can be one path component as is; else a ValueError saying why not."""
    if not value.strip():
        raise ValueError(f"the {what} is empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"the {what} is {len(value)} characters long, over {MAX_ID_LENGTH}")
    if "\x00" in value:
        raise ValueError(f"the {what} holds a NUL byte")
    if "/" in value or "\\" in value:
        raise ValueError(f"the {what} {value!r} holds a path separator")
    if value in (".", ".."):
        raise ValueError(f"the {what} {value!r} names a folder, not a job")
    return value


def timestamp_value(value: Any) -> Any:
    """A timestamp as given, a numeric string as a number; a ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a number (seconds since the epoch)") from None
    if isinstance(value, (int, float)) and not math.isfinite(float(value)):
        raise ValueError(f"{value!r} is not a finite number")
    return value


def consistency_problem(job_id: str, invocation_id: str, data: dict[str, Any]) -> str:
    """What is wrong between the ids and in ``data``'s paths and SSH names ('' when nothing)."""
    inv, dot, rest = job_id.partition(".")
    if inv != invocation_id or not dot or not rest:
        return f"job_id {job_id!r} is not '<invocation_id>.<index>' for invocation {invocation_id!r}"
    for key in PATH_FIELDS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"data.{key} is {type(value).__name__}, not a path"
        if "\x00" in value:
            return f"data.{key} holds a NUL byte"
    for key in SSH_FIELDS:
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or value.startswith("-") or "\x00" in value):
            return f"data.{key} {value!r} is not a host or user name"
    return ""


@dataclass(frozen=True, slots=True)
class ExecDbRecord:
    """One job as the launcher recorded it (validated: see the module doc)."""

    job_id: str
    invocation_id: str
    executor: str = "local"
    timestamp: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def shape_problems(self) -> list[str]:
        """Parts of ``config`` evalport reads whose shape is wrong; they are ignored where used."""
        problems = []
        evaluation = self.config.get("evaluation")
        if evaluation is not None and not isinstance(evaluation, dict):
            problems.append(f"config.evaluation is a {type(evaluation).__name__}, not a mapping")
        elif isinstance(evaluation, dict):
            tasks = evaluation.get("tasks")
            if tasks is not None and not isinstance(tasks, list):
                problems.append(f"config.evaluation.tasks is a {type(tasks).__name__}, not a list")
            elif isinstance(tasks, list) and not all(isinstance(t, dict) for t in tasks):
                problems.append("config.evaluation.tasks holds entries that are not mappings")
        target = self.config.get("target")
        endpoint = target.get("api_endpoint") if isinstance(target, dict) else None
        if (target is not None and not isinstance(target, dict)) or (
            endpoint is not None and not isinstance(endpoint, dict)
        ):
            problems.append("config.target.api_endpoint is not a mapping")
        return problems


def _plain_ids(job_id: str, invocation_id: str) -> bool:
    """True for the launcher's ids (ASCII letters and digits, ``<invocation>.<index>``, not too
    long), which pass :func:`check_path_component` at a glance; False means "check them"."""
    tail = job_id[len(invocation_id) + 1 :]
    return (
        len(job_id) <= MAX_ID_LENGTH
        and job_id[len(invocation_id) : len(invocation_id) + 1] == "."
        and job_id.startswith(invocation_id)
        and invocation_id.isascii()
        and invocation_id.isalnum()
        and tail.isascii()
        and tail.isalnum()
    )


def parse_record(raw: Any) -> ExecDbRecord:
    """The record in a decoded JSON line; a ValueError whose message names the fields that are wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"the line is a JSON {type(raw).__name__}, not an object")
    record = well_formed_record(raw)
    if record is not None:
        return record
    from evalport.adapters.sources.record_model import validated_record

    return validated_record(raw)


def well_formed_record(raw: dict[str, Any]) -> ExecDbRecord | None:
    """The record of a line that passes every check, built without pydantic; None for any other
    line (it then goes through the model, which accepts it or says exactly what is wrong)."""
    job_id, invocation_id = raw.get("job_id"), raw.get("invocation_id")
    if type(job_id) is not str or type(invocation_id) is not str:
        return None
    executor = raw.get("executor")
    if executor is None:
        executor = "local"
    elif type(executor) is not str:
        return None
    timestamp = raw.get("timestamp")
    if timestamp is not None:
        kind = type(timestamp)
        if kind is int and -_SAFE_INT < timestamp < _SAFE_INT:
            timestamp = float(timestamp)
        elif kind is not float or not math.isfinite(timestamp):
            return None
    data, config = raw.get("data"), raw.get("config")
    data = {} if data is None else data
    config = {} if config is None else config
    if type(data) is not dict or type(config) is not dict:
        return None
    if not _plain_ids(job_id, invocation_id):
        try:
            check_path_component(job_id)
            check_path_component(invocation_id)
        except ValueError:
            return None
    if consistency_problem(job_id, invocation_id, data):
        return None
    return ExecDbRecord(job_id, invocation_id, executor, timestamp, data, config)
