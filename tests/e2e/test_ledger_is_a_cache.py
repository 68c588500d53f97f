"""The export ledger is a cache: the destination has the last word, and a broken ledger never fails an export."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

import evalport
from evalport.adapters.ledger import LEDGER_FILE, LedgerUnavailable, SqliteLedger
from evalport.adapters.sinks.base import BaseSink, SinkConfig
from evalport.app.registry import register_sink
from evalport.domain.ports import ExportItem
from evalport.domain.report import Outcome, Status
from evalport.testing.factory import LauncherHome, write_launcher_home


@register_sink("shelf")
class ShelfSink(BaseSink):
    """A real, minimal sink: a class-level dict is its destination; locations are ``shelf:<job>``."""

    name: ClassVar[str] = "shelf"
    Config = SinkConfig
    shelf: ClassVar[dict[str, dict[str, float]]] = {}
    confirm_raises: ClassVar[bool] = False

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        out = []
        for item in items:
            job_id = item.result.job_id
            status = Status.UPDATED if job_id in self.shelf else Status.EXPORTED
            self.shelf[job_id] = item.result.flat_metrics()
            out.append(Outcome(job_id, self.destination, status, "", f"shelf:{job_id}"))
        return out

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        if self.confirm_raises:
            raise ConnectionError("the shelf cannot be reached")
        return {job for job, where in located.items() if where == f"shelf:{job}" and job in self.shelf}


@pytest.fixture(autouse=True)
def _empty_shelf():
    ShelfSink.shelf.clear()
    ShelfSink.confirm_raises = False


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=11)


def export(home: LauncherHome, **options) -> evalport.ExportReport:
    return evalport.export(home.invocation_ids, "shelf", options or None, exec_db=home.exec_db)


def ledger_path() -> Path:
    import os

    return Path(os.environ["EVALPORT_STATE_DIR"]) / LEDGER_FILE


# ---- the destination has the last word ------------------------------------------------------------


def test_a_job_the_destination_still_holds_is_skipped_as_unchanged(home):
    assert export(home).counts() == {"exported": 4}
    again = export(home)
    assert again.counts() == {"unchanged": 4} and not again.notes


def test_jobs_the_destination_lost_are_exported_again_and_the_report_says_so(home):
    export(home)
    lost = sorted(ShelfSink.shelf)[:3]
    for job in lost:
        del ShelfSink.shelf[job]
    report = export(home)
    statuses = {o.job_id: o.status for o in report.outcomes}
    assert {statuses[j] for j in lost} == {Status.EXPORTED}
    assert [s for j, s in statuses.items() if j not in lost] == [Status.UNCHANGED]
    assert report.exit_code() == 0
    assert sorted(ShelfSink.shelf) == sorted(j.job_id for j in home.jobs), "the lost jobs are written again"
    [note] = report.notes
    assert "shelf" in note and "3" in note and "exported again" in note
    assert export(home).counts() == {"unchanged": 4}, "the new export is recorded"


def test_a_sink_that_cannot_confirm_gets_every_job_again(home):
    export(home)
    ShelfSink.confirm_raises = True
    report = export(home)
    assert report.counts() == {"updated": 4} and report.exit_code() == 0
    assert any("no longer holds" in n for n in report.notes)


def test_a_sink_without_still_holds_is_trusted_as_before(home):
    from tests.e2e.test_service_and_plugins import MemorySink

    evalport.export(home.invocation_ids, "memory", exec_db=home.exec_db)
    MemorySink.stored.clear()
    again = evalport.export(home.invocation_ids, "memory", exec_db=home.exec_db)
    assert again.counts() == {"unchanged": 4}


# ---- a metric filter that keeps nothing ---------------------------------------------------------


def test_a_metric_filter_matching_nothing_still_exports_but_says_so(home):
    report = export(home, log_metrics=["no-such-metric*"])
    assert report.counts() == {"exported": 4} and report.exit_code() == 0
    assert all(metrics == {} for metrics in ShelfSink.shelf.values())
    [note] = report.notes
    assert "shelf" in note and "no-such-metric*" in note and "4 of 4" in note


def test_a_metric_filter_that_keeps_something_adds_no_note(home):
    report = export(home, log_metrics=["!no-such-metric"])
    assert all(ShelfSink.shelf.values())
    assert not [n for n in report.notes if "metric filter" in n]


# ---- a broken ledger is a warning, never a failure ---------------------------------------------------


def the_ledger_warning(report: evalport.ExportReport, path: Path) -> str:
    warnings = [n for n in report.notes if "export ledger" in n]
    assert len(warnings) == 1, report.notes
    assert str(path) in warnings[0] and "move it aside" in warnings[0]
    return warnings[0]


def test_a_corrupt_ledger_file_is_one_warning_and_the_export_goes_on(home):
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00garbage, not a database\xff" * 200)
    report = export(home)
    assert report.counts() == {"exported": 4} and report.exit_code() == 0
    the_ledger_warning(report, path)
    assert path.read_bytes().startswith(b"\x00garbage"), "the damaged file is left for the user to inspect"


def test_a_corrupt_ledger_finds_nothing_records_nothing_and_history_names_the_file():
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database " * 100)
    ledger = SqliteLedger()
    assert ledger.lookup([("job", "target")]) == {}
    ledger.record([])  # nothing to do, no error
    [warning] = ledger.take_warnings()
    assert str(path) in warning and "move it aside" in warning
    assert ledger.take_warnings() == [], "each problem is reported once"
    with pytest.raises(LedgerUnavailable, match="move it aside") as raised:
        SqliteLedger().history()
    assert str(path) in str(raised.value)


def test_an_unwritable_state_dir_is_a_warning_and_the_export_goes_on(home, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("the state dir cannot be made below a file")
    monkeypatch.setenv("EVALPORT_STATE_DIR", str(blocker / "state"))
    report = export(home)
    assert report.counts() == {"exported": 4} and report.exit_code() == 0
    the_ledger_warning(report, blocker / "state" / LEDGER_FILE)


def test_a_locked_ledger_is_a_warning_and_the_export_goes_on(home, monkeypatch):
    export(home)
    monkeypatch.setattr(SqliteLedger, "busy_timeout", 0.2)
    holder = sqlite3.connect(ledger_path(), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM exports")
        ShelfSink.shelf.clear()
        report = export(home)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert report.exit_code() == 0
    assert {o.status for o in report.outcomes} <= {Status.EXPORTED, Status.UPDATED}
    the_ledger_warning(report, ledger_path())


def test_history_on_a_corrupt_ledger_is_a_clear_error_not_a_traceback(capsys):
    from evalport.app.cli import main

    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"garbage " * 100)
    assert main(["history"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "move it aside" in err and "Traceback" not in err


def test_a_relative_output_dir_is_unchanged_on_re_export_from_the_same_folder(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = {"output_dir": "relative-results"}
    first = evalport.export(home.invocation_ids, "local", {"local": options}, exec_db=home.exec_db)
    again = evalport.export(home.invocation_ids, "local", {"local": options}, exec_db=home.exec_db)
    assert {o.status for o in first.outcomes} == {Status.EXPORTED}
    assert {o.status for o in again.outcomes} == {Status.UNCHANGED}
    assert not [n for n in again.notes + again.problems if "no longer holds" in n]
    assert all(Path(o.location).is_absolute() for o in again.outcomes)
