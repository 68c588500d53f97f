"""The pydantic model of an execution-DB line: the slow path of :mod:`records`, for the lines that
fail its direct checks. It accepts exactly what those checks accept (and a numeric string as a
timestamp) and otherwise raises a ValueError naming each field that is wrong."""

from __future__ import annotations

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

from evalport.adapters.sources.records import (
    ExecDbRecord,
    check_path_component,
    consistency_problem,
    timestamp_value,
)


def _safe_id(value: str) -> str:
    return check_path_component(value)


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


SafeId = Annotated[str, Field(strict=True), AfterValidator(_safe_id)]
Mapping_ = Annotated[dict[str, Any], BeforeValidator(_none_is_empty)]


class ExecDbLine(BaseModel):
    """One job as the launcher recorded it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: SafeId
    invocation_id: SafeId
    executor: Annotated[str, Field(strict=True)] = "local"
    timestamp: Annotated[float | None, BeforeValidator(timestamp_value)] = None
    data: Mapping_ = Field(default_factory=dict)
    config: Mapping_ = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _executor_default(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("executor") is None and "executor" in raw:
            raw = {**raw, "executor": "local"}
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> ExecDbLine:
        problem = consistency_problem(self.job_id, self.invocation_id, self.data)
        if problem:
            raise ValueError(problem)
        return self


def validated_record(raw: dict[str, Any]) -> ExecDbRecord:
    """The record of ``raw`` as the model validates it; a ValueError naming the wrong fields."""
    try:
        line = ExecDbLine.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None
    return ExecDbRecord(
        line.job_id, line.invocation_id, line.executor, line.timestamp, line.data, line.config
    )


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)
