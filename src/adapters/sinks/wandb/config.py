"""The W&B sink's options; retries, the run name and tags are spelled as in every remote sink."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.base import SampleSinkConfig, TrackerSinkConfig
from evalport.adapters.sinks.remote import RemoteOptions, retries_option
from evalport.adapters.sinks.wandb.names import clean_tag, is_valid_run_id

NAME_FIELDS = ("invocation_id", "harness", "task", "model_id", "job_id")
MAX_RETRY_WAIT = 4.0


def tags_of(value: Any) -> Any:
    """A list, a comma-separated string, or a mapping ``{k: v}`` (tags ``k:v``; ``k`` when v is empty)."""
    if isinstance(value, str):
        value = [t for t in value.split(",") if t.strip()]
    elif isinstance(value, Mapping):
        value = [f"{k}:{v}" if v not in (None, "") else str(k) for k, v in value.items()]
    return [clean_tag(str(t)) for t in value] if isinstance(value, (list, tuple)) else value


class WandbSinkConfig(TrackerSinkConfig, SampleSinkConfig, RemoteOptions):
    #: ``table``: one ``wandb.Table`` per job, logged under ``samples/<harness>.<task>``.
    sample_modes: ClassVar[tuple[str, ...]] = ("none", "table")
    #: Old option names (documented until the options were unified) -> their names now.
    deprecated_options: ClassVar[Mapping[str, str]] = {"name": "run_name", "attempts": "retries"}

    entity: str | None = Field(default=None, description="W&B entity (team or user); default: yours")
    project: str = "evalport"
    run_name: str | None = Field(
        default=None,
        description="run name template; may use {invocation_id} {harness} "
        "{task} {model_id} {job_id}; default eval-<invocation>[-<task>]",
    )
    run_id: str | None = Field(
        default=None,
        description="multi_task: the id of the run every invocation goes to; default: the invocation "
        "id (the launcher's), so runs the launcher made are resumed",
    )
    group: str | None = Field(default=None, description="run group; default: the invocation id")
    job_type: str = "evaluation"
    tags: list[str] = Field(
        default_factory=list, description="a mapping {k: v} (tags k:v), a list, or comma-separated"
    )
    description: str | None = Field(default=None, description="W&B run notes")
    extra_metadata: dict[str, Any] = Field(default_factory=dict, description="added to the run config")
    dir: Path | None = Field(default=None, description="where run folders are written; default: W&B's")
    mode: Literal["online", "offline"] | None = Field(default=None, description="default: WANDB_MODE/online")
    init_timeout: float = Field(default=15.0, gt=0, description="seconds to wait for the server per attempt")
    retries: int = retries_option(3)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return tags_of(value)

    @field_validator("run_id")
    @classmethod
    def _valid_run_id(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_run_id(value):
            raise ValueError(
                f"run_id {value!r} is not a W&B run id: 1-128 characters, none of : ; , # ? / ' or spaces"
            )
        return value

    @field_validator("run_name")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value:
            try:
                value.format_map(dict.fromkeys(NAME_FIELDS, ""))
            except (KeyError, ValueError, IndexError) as exc:
                known = ", ".join(NAME_FIELDS)
                raise ValueError(f"run_name {value!r}: unknown placeholder {exc}; use {known}") from None
        return value

    def retry_policy(
        self, max_wait: float = MAX_RETRY_WAIT, total_timeout: float | None = None
    ) -> RetryPolicy:
        """Each try waits up to ``init_timeout``; the total is bounded by every try and every wait."""
        if total_timeout is None:
            total_timeout = self.retries * (self.init_timeout + max_wait)
        return super().retry_policy(max_wait, total_timeout)
