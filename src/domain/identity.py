"""RunIdentity: how a result maps onto a run at a destination."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from evalport.domain.model import TaskResult


class LogMode(str, enum.Enum):
    PER_TASK = "per_task"
    MULTI_TASK = "multi_task"


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """``per_task``: one run per (invocation, harness, task); ``multi_task``: one run per invocation.

    The key is deterministic, so a sink can find (or name) the run without scanning the destination.
    """

    mode: LogMode
    invocation_id: str
    harness: str | None = None
    task: str | None = None

    @classmethod
    def for_result(cls, result: TaskResult, mode: LogMode | str = LogMode.PER_TASK) -> RunIdentity:
        mode = LogMode(mode)
        if mode is LogMode.MULTI_TASK:
            return cls(mode, result.invocation_id)
        return cls(mode, result.invocation_id, result.harness, result.task)

    @property
    def key(self) -> str:
        if self.mode is LogMode.MULTI_TASK:
            return f"{self.invocation_id}"
        return f"{self.invocation_id}/{self.harness}/{self.task}"

    def run_id(self, length: int = 32) -> str:
        """A lowercase hex id derived from the key (valid as an MLflow tag and a W&B run id)."""
        digest = hashlib.sha256(f"evalport:{self.mode.value}:{self.key}".encode()).hexdigest()
        return digest[:length]
