"""A run sent to the local folder in several batches leaves the very files one batch leaves, in
every format, and its summary lists every job once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import evalport
from evalport.adapters.sinks.local import LocalSink
from evalport.domain.ports import SinkCapabilities
from evalport.testing.factory import LauncherHome, write_launcher_home


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> LauncherHome:
    """Enough invocations for several batches (a batch is at least 32 jobs of whole invocations)."""
    return write_launcher_home(
        tmp_path_factory.mktemp("many") / "launcher", invocations=30, tasks_per_invocation=3
    )


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its text; the summaries' time stamps left out."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")):
        text = path.read_text(errors="replace")
        if path.name == "results.json":
            doc = json.loads(text)
            doc.pop("updated_at", None)
            text = json.dumps(doc, sort_keys=True)
        out[str(path.relative_to(root))] = re.sub(r'"export_timestamp": "[^"]*"', "", text)
    return out


def export(home: LauncherHome, out: Path, **config) -> evalport.ExportReport:
    return evalport.export(
        home.invocation_ids, "local", {"output_dir": str(out), **config}, exec_db=home.exec_db
    )


@pytest.mark.parametrize(
    "config",
    [{"format": "json"}, {"format": "csv"}, {"format": "json", "compat": "launcher"}, {"format": "md"}],
    ids=["json", "csv", "launcher-json", "md"],
)
def test_several_batches_give_the_same_files_as_one(many, tmp_path, monkeypatch, config):
    batched = export(many, tmp_path / "batched", **config)
    monkeypatch.setattr(LocalSink, "capabilities", SinkCapabilities(artifacts=True, logs=True, batches=False))
    whole = export(many, tmp_path / "whole", **config)
    assert batched.ok and whole.ok
    assert batched.counts() == whole.counts() == {"exported": len(many.jobs)}
    assert tree(tmp_path / "batched") == tree(tmp_path / "whole")


def test_the_summary_of_a_run_in_batches_lists_every_job_once(many, tmp_path):
    report = export(many, tmp_path / "out", format="json")
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert report.ok and sorted(r["job_id"] for r in runs) == sorted(j.job_id for j in many.jobs)
    again = export(many, tmp_path / "out", format="json")
    assert again.counts() == {"unchanged": len(many.jobs)}


def _item(job_id: str):
    from evalport.domain.model import Metric, TaskResult
    from evalport.domain.ports import ExportItem

    result = TaskResult(job_id, job_id.split(".")[0], "gsm8k", "h", "m", "local", (Metric("score", 0.5),))
    return ExportItem(result, None, fingerprint=f"print-{job_id}")


def test_runs_another_export_wrote_into_the_summary_between_two_batches_are_kept(tmp_path):
    out = tmp_path / "out"
    ours, theirs = LocalSink({"output_dir": out}), LocalSink({"output_dir": out})
    ours.export([_item("aaaa.0")])
    theirs.export([_item("bbbb.0")])
    ours.export([_item("cccc.0")])
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["job_id"] for r in runs] == ["aaaa.0", "bbbb.0", "cccc.0"]


def test_a_summary_edited_by_hand_between_two_batches_is_read_again(tmp_path):
    out = tmp_path / "out"
    sink = LocalSink({"output_dir": out})
    sink.export([_item("aaaa.0"), _item("bbbb.0")])
    path = out / "results.json"
    doc = json.loads(path.read_text())
    doc["runs"] = [r for r in doc["runs"] if r["job_id"] != "aaaa.0"]
    path.write_text(json.dumps(doc))
    sink.export([_item("cccc.0")])
    assert [r["job_id"] for r in json.loads(path.read_text())["runs"]] == ["bbbb.0", "cccc.0"]
