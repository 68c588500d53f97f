"""An example evalport sink living outside evalport: one JSON line per run in a file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from evalport.plugin import (
    BaseSink,
    CheckResult,
    ExportItem,
    Outcome,
    RunIdentity,
    SinkCapabilities,
    Status,
    TrackerSinkConfig,
)


class JsonlConfig(TrackerSinkConfig):
    path: Path = Path("evalport-runs.jsonl")


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else repr(value)


class JsonlSink(BaseSink):
    """One JSON line per run, upserted by RunIdentity (an example plugin)."""

    name: ClassVar[str] = "jsonl"
    Config = JsonlConfig
    capabilities = SinkCapabilities(artifacts=True, logs=True, multi_task=True)
    config: JsonlConfig

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        from filelock import FileLock

        path = self.config.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{path}.lock", timeout=60):
                runs = self._read(path)
                statuses = [self._upsert(runs, item) for item in items]
                self._write(path, runs)
        except OSError as exc:
            reason = f"cannot write {path}: {exc.strerror or exc}; choose another path"
            return [Outcome(i.result.job_id, self.destination, Status.FAILED, reason) for i in items]
        return [
            Outcome(i.result.job_id, self.destination, s, location=str(path))
            for i, s in zip(items, statuses, strict=True)
        ]

    def _upsert(self, runs: dict[str, dict[str, Any]], item: ExportItem) -> Status:
        key = RunIdentity.for_result(item.result, self.config.log_mode).key
        old = runs.get(key)
        run = dict(old or {"key": key, "metrics": {}, "files": [], "jobs": []})
        run["metrics"] = {**run["metrics"], **{k: _number(v) for k, v in item.result.flat_metrics().items()}}
        run["files"] = sorted(set(run["files"]) | {rel for rel, _ in item.artifact_paths()})
        run["jobs"] = sorted(set(run["jobs"]) | {item.result.job_id})
        if old == run:
            return Status.UNCHANGED
        runs[key] = run
        return Status.UPDATED if old else Status.EXPORTED

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        if not path.exists():
            return {}
        return {run["key"]: run for run in map(json.loads, path.read_text().splitlines()) if run}

    @staticmethod
    def _write(path: Path, runs: dict[str, dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as fh:
            fh.writelines(json.dumps(runs[k], sort_keys=True) + "\n" for k in sorted(runs))
        os.replace(tmp, path)

    def check(self) -> CheckResult:
        parent = self.config.path.parent
        ok = parent.is_dir() and os.access(parent, os.W_OK)
        return CheckResult(ok, f"jsonl: {self.config.path} {'is' if ok else 'is not'} writable")
