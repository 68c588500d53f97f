"""Read back the samples tables the W&B sink logged, from the offline run folders the SDK wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalport.adapters.sinks.wandb.samples import LEADING_COLUMNS, TRAILING_COLUMNS, table_key
from evalport.domain.identity import RunIdentity
from evalport.testing.sink_contract import StoredSample
from tests.support.wandb_records import find_run_files, load_run, merge_runs

TEXT_COLUMNS = ("input", "target", "output", "metadata")


def latest_table(root: Path, run_id: str, key: str) -> dict[str, Any] | None:
    """The table the run's summary names under ``key`` (what the W&B UI shows), as the SDK stored it."""
    paths = find_run_files(root, run_id)
    if not paths:
        return None
    summary = merge_runs([load_run(p) for p in paths]).summary
    entry = summary.get(key)
    if not isinstance(entry, dict) or entry.get("_type") != "table-file":
        return None
    for path in reversed(paths):  # the newest folder that holds the file logged last
        stored = path.parent / "files" / entry["path"]
        if stored.is_file():
            return json.loads(stored.read_text("utf-8"))
    raise AssertionError(f"the summary names {entry['path']} but no run folder of {run_id} holds it")


def _run_key(root: Path, run_id: str) -> str | None:
    config = merge_runs([load_run(p) for p in find_run_files(root, run_id)]).config
    return (config.get("evalport") or {}).get("run_key")


def read_table_samples(sink, result) -> list[StoredSample]:
    """The rows of the job's latest table in its run (the run whose config names the job's run key)."""
    key = RunIdentity.for_result(result, sink.config.log_mode).key
    run_ids = {load_run(p).run_id for p in find_run_files(sink.root)}
    runs = [r for r in run_ids if _run_key(sink.root, r) == key]
    assert len(runs) <= 1, f"several runs for {key}: {runs}"
    table = latest_table(sink.root, runs[0], table_key(result)) if runs else None
    if table is None:
        return []
    columns, fixed = table["columns"], set(LEADING_COLUMNS + TRAILING_COLUMNS)
    out = []
    for values in table["data"]:
        row = dict(zip(columns, values, strict=True))
        scores = {k: v for k, v in row.items() if k not in fixed and v is not None}
        out.append(StoredSample(row["sample_id"], scores, "\n".join(str(row[c]) for c in TEXT_COLUMNS)))
    return out
