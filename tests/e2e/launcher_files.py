"""Reading and comparing nemo-evaluator-launcher's local files (processed_results.json / .csv).

Shared by the side-by-side tests (the real launcher, tests/e2e/test_launcher_local.py) and the
recorded copy (tests/data/launcher_reference). A comparison holds evalport's file to the
launcher's: the same jobs at the same task and model, the same keys, the same values; timestamps
by type, ``results_dir`` by the folder it names (``root`` maps the recorded home to this one).
evalport may add score keys only as ``<launcher key>_<stat>`` (statistics the launcher drops).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

BASE_COLUMNS = [
    "Model Name",
    "Harness",
    "Task Name",
    "Executor",
    "Container",
    "Invocation ID",
    "Job ID",
    "Results Dir",
]
ENTRY_KEYS = [
    "invocation_id",
    "job_id",
    "harness",
    "container",
    "scores",
    "timestamp",
    "executor",
    "results_dir",
]
STATS = ("count", "mean", "stddev", "stderr", "min", "max", "sum", "var")


def entries(path: Path) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """job id -> (task, model, entry); a job found twice fails."""
    out: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for task, block in json.loads(path.read_text(encoding="utf-8"))["benchmarks"].items():
        for model, listed in block["models"].items():
            for entry in listed:
                assert entry["job_id"] not in out, f"{entry['job_id']} is in {path} twice"
                out[entry["job_id"]] = (task, model, entry)
    return out


def csv_table(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    ids = [r["Job ID"] for r in rows]
    assert len(ids) == len(set(ids)), f"a job is in {path} twice: {ids}"
    return header, {r["Job ID"]: r for r in rows}


def same_folder(theirs: str | None, ours: str | None, root: tuple[str, str] | None = None) -> bool:
    if theirs is None or ours is None:
        return theirs == ours
    if root is not None:
        theirs = theirs.replace(root[0], root[1], 1)
    return Path(theirs).resolve() == Path(ours).resolve()


def assert_extra_scores_are_statistics(theirs: dict[str, Any], ours: dict[str, Any], where: str) -> None:
    missing = sorted(set(theirs) - set(ours))
    assert not missing, f"{where}: the launcher's score keys {missing} are missing"
    for key, value in theirs.items():
        assert ours[key] == value, f"{where}: {key} is {ours[key]!r}, the launcher's {value!r}"
    for key in set(ours) - set(theirs):
        base, _, stat = key.rpartition("_")
        assert base in theirs and stat in STATS, f"{where}: {key} is neither the launcher's nor a statistic"


def assert_same_json(theirs: Path, ours: Path, root: tuple[str, str] | None = None) -> None:
    for doc in (json.loads(theirs.read_text()), json.loads(ours.read_text())):
        assert list(doc) == ["benchmarks", "export_timestamp"]
        datetime.fromisoformat(doc["export_timestamp"])
    want, got = entries(theirs), entries(ours)
    assert sorted(got) == sorted(want), f"{ours}: other jobs than the launcher's {theirs}"
    for job_id, (task, model, entry) in want.items():
        our_task, our_model, our_entry = got[job_id]
        where = f"{ours} job {job_id}"
        assert (our_task, our_model) == (task, model), where
        assert list(our_entry) == ENTRY_KEYS == list(entry), where
        for key in ("invocation_id", "job_id", "harness", "container", "executor"):
            assert our_entry[key] == entry[key], f"{where}: {key}"
        assert type(our_entry["timestamp"]) is type(entry["timestamp"]), f"{where}: timestamp"
        assert same_folder(entry["results_dir"], our_entry["results_dir"], root), f"{where}: results_dir"
        assert_extra_scores_are_statistics(entry["scores"], our_entry["scores"], where)


def assert_same_csv(theirs: Path, ours: Path, root: tuple[str, str] | None = None) -> None:
    their_header, their_rows = csv_table(theirs)
    our_header, our_rows = csv_table(ours)
    assert their_header[:8] == BASE_COLUMNS == our_header[:8]
    assert our_header[8:] == sorted(our_header[8:]), f"{ours}: score columns are not sorted"
    assert set(their_header[8:]) <= set(our_header[8:]), f"{ours}: a launcher column is missing"
    assert sorted(our_rows) == sorted(their_rows), f"{ours}: other jobs than the launcher's {theirs}"
    for job_id, row in their_rows.items():
        ours_row, where = our_rows[job_id], f"{ours} job {job_id}"
        for column in BASE_COLUMNS[:-1]:
            assert ours_row[column] == row[column], f"{where}: {column}"
        assert same_folder(row["Results Dir"], ours_row["Results Dir"], root), f"{where}: Results Dir"
        scores = {k: v for k, v in row.items() if k not in BASE_COLUMNS and v != ""}
        our_scores = {k: v for k, v in ours_row.items() if k not in BASE_COLUMNS and v != ""}
        assert_extra_scores_are_statistics(
            {k: float(v) for k, v in scores.items()}, {k: float(v) for k, v in our_scores.items()}, where
        )


def assert_same_tree(theirs: Path, ours: Path, fmt: str, root: tuple[str, str] | None = None) -> None:
    """The combined file and every per-job file of the launcher's output folder, compared."""
    compare = assert_same_json if fmt == "json" else assert_same_csv
    name = f"processed_results.{fmt}"
    their_files = sorted(p.relative_to(theirs).as_posix() for p in theirs.rglob(name))
    our_files = sorted(p.relative_to(ours).as_posix() for p in ours.rglob(name))
    assert our_files == their_files
    assert name in their_files and len(their_files) > 2
    for rel in their_files:
        compare(theirs / rel, ours / rel, root)
