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
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

MAX_ID_LENGTH = 255
PATH_FIELDS = ("output_dir", "remote_rundir_path")
SSH_FIELDS = ("hostname", "username")


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


def _safe_id(value: str) -> str:
    return check_path_component(value)


def _timestamp(value: Any) -> Any:
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


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


SafeId = Annotated[str, Field(strict=True), AfterValidator(_safe_id)]
Mapping_ = Annotated[dict[str, Any], BeforeValidator(_none_is_empty)]


class ExecDbRecord(BaseModel):
    """One job as the launcher recorded it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: SafeId
    invocation_id: SafeId
    executor: Annotated[str, Field(strict=True)] = "local"
    timestamp: Annotated[float | None, BeforeValidator(_timestamp)] = None
    data: Mapping_ = Field(default_factory=dict)
    config: Mapping_ = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _executor_default(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("executor") is None and "executor" in raw:
            raw = {**raw, "executor": "local"}
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> ExecDbRecord:
        inv, dot, rest = self.job_id.partition(".")
        if inv != self.invocation_id or not dot or not rest:
            raise ValueError(
                f"job_id {self.job_id!r} is not '<invocation_id>.<index>' "
                f"for invocation {self.invocation_id!r}"
            )
        for key in PATH_FIELDS:
            value = self.data.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"data.{key} is {type(value).__name__}, not a path")
            if "\x00" in value:
                raise ValueError(f"data.{key} holds a NUL byte")
        for key in SSH_FIELDS:
            value = self.data.get(key)
            if value is not None and (not isinstance(value, str) or value.startswith("-") or "\x00" in value):
                raise ValueError(f"data.{key} {value!r} is not a host or user name")
        return self

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


def parse_record(raw: Any) -> ExecDbRecord:
    """The record in a decoded JSON line; a ValueError whose message names the fields that are wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"the line is a JSON {type(raw).__name__}, not an object")
    try:
        return ExecDbRecord.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)
