"""An unchanged job is skipped on its files' signatures before anything is parsed; any change, any
doubt, or --force reads it again."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

import evalport
from evalport.adapters.ledger import LEDGER_FILE
from evalport.domain.report import Status
from evalport.testing.factory import LauncherHome, write_launcher_home

HOUR_AGO_NS = (1_767_225_600 - 3600) * 10**9


def settle(root: Path) -> None:
    """Dates every file and folder below ``root`` an hour back: files written just now are racy
    (a rewrite within the same clock tick keeps the mtime), and racy jobs are always read."""
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.utime(os.path.join(folder, name), ns=(HOUR_AGO_NS, HOUR_AGO_NS), follow_symlinks=False)


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    home = write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=5)
    settle(home.root)
    return home


def export(home: LauncherHome, out: Path, **options) -> evalport.ExportReport:
    config = {"output_dir": str(out), "format": "json", **options.pop("config", {})}
    return evalport.export(home.invocation_ids, "local", config, exec_db=home.exec_db, **options)


def results_file(home: LauncherHome, index: int = 0) -> Path:
    return home.jobs[index].directory / "artifacts" / "results.yml"


def spoil_keeping_the_signature(path: Path) -> None:
    """Replaces the file's bytes with ones no YAML parser accepts, keeping its size and mtime."""
    st = os.lstat(path)
    path.write_bytes(b"{" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def statuses(report: evalport.ExportReport) -> dict[str, Status]:
    return {o.job_id: o.status for o in report.outcomes}


def test_an_unchanged_job_is_reported_unchanged_without_being_read(home, tmp_path):
    assert export(home, tmp_path / "out").counts() == {"exported": 4}
    spoil_keeping_the_signature(results_file(home))
    again = export(home, tmp_path / "out")
    assert again.counts() == {"unchanged": 4} and again.exit_code() == 0


def test_force_reads_every_job_again(home, tmp_path):
    export(home, tmp_path / "out")
    spoil_keeping_the_signature(results_file(home))
    forced = export(home, tmp_path / "out", force=True)
    assert statuses(forced)[home.jobs[0].job_id] is Status.FAILED
    assert "results.yml" in next(o.reason for o in forced.outcomes if o.status is Status.FAILED)


def test_a_touched_file_makes_the_job_read_again(home, tmp_path):
    export(home, tmp_path / "out")
    path = results_file(home)
    spoil_keeping_the_signature(path)
    os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS + 10**9))
    assert statuses(export(home, tmp_path / "out"))[home.jobs[0].job_id] is Status.FAILED


def test_a_new_file_in_logs_makes_the_job_read_again_when_logs_are_sent(home, tmp_path):
    export(home, tmp_path / "out", config={"copy_logs": True})
    spoil_keeping_the_signature(results_file(home))
    (home.jobs[0].directory / "logs" / "late.log").write_text("written after the export\n")
    settle(home.root)
    report = export(home, tmp_path / "out", config={"copy_logs": True})
    assert statuses(report)[home.jobs[0].job_id] is Status.FAILED


def test_a_new_log_changes_nothing_sent_when_logs_are_not_sent_so_the_job_stays_unchanged(home, tmp_path):
    export(home, tmp_path / "out")
    spoil_keeping_the_signature(results_file(home))
    (home.jobs[0].directory / "logs" / "late.log").write_text("written after the export\n")
    settle(home.root)
    assert statuses(export(home, tmp_path / "out"))[home.jobs[0].job_id] is Status.UNCHANGED


def test_a_rewritten_exit_marker_makes_the_job_read_again_when_logs_are_not_sent(home, tmp_path):
    export(home, tmp_path / "out")
    spoil_keeping_the_signature(results_file(home))
    marker = home.jobs[0].directory / "logs" / "stage.exit"
    marker.write_text(marker.read_text() + "\n")
    settle(home.root)
    assert statuses(export(home, tmp_path / "out"))[home.jobs[0].job_id] is Status.FAILED


def test_a_file_written_just_now_is_read_every_time(home, tmp_path):
    path = results_file(home)
    path.write_bytes(path.read_bytes())  # a fresh mtime: within the racy window
    export(home, tmp_path / "out")
    spoil_keeping_the_signature(path)
    assert statuses(export(home, tmp_path / "out"))[home.jobs[0].job_id] is Status.FAILED


def test_a_changed_sink_config_reads_the_jobs_again(home, tmp_path):
    export(home, tmp_path / "out")
    spoil_keeping_the_signature(results_file(home))
    report = export(home, tmp_path / "out", config={"log_metrics": ["*"]})
    assert statuses(report)[home.jobs[0].job_id] is Status.FAILED


def test_a_changed_execution_db_record_reads_the_job_again(home, tmp_path):
    export(home, tmp_path / "out")
    spoil_keeping_the_signature(results_file(home))
    lines = home.exec_db.read_text().splitlines()
    first = json.loads(lines[0])
    first["config"]["note"] = "edited after the export"
    home.exec_db.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    assert statuses(export(home, tmp_path / "out"))[first["job_id"]] is Status.FAILED


def test_another_evalport_version_reads_the_jobs_again(home, tmp_path, monkeypatch):
    export(home, tmp_path / "out")
    spoil_keeping_the_signature(results_file(home))
    monkeypatch.setattr(evalport, "__version__", evalport.__version__ + ".post1")
    assert statuses(export(home, tmp_path / "out"))[home.jobs[0].job_id] is Status.FAILED


def test_a_job_that_failed_since_is_left_out_not_reported_unchanged(home, tmp_path):
    export(home, tmp_path / "out")
    exit_marker = home.jobs[0].directory / "logs" / "stage.exit"
    exit_marker.write_text("1767225600 1\n")
    settle(home.root)
    assert statuses(export(home, tmp_path / "out"))[home.jobs[0].job_id] is Status.SKIPPED


def test_a_deleted_destination_file_is_exported_again(home, tmp_path):
    first = export(home, tmp_path / "out")
    job = home.jobs[0].job_id
    location = next(Path(o.location) for o in first.outcomes if o.job_id == job)
    for path in sorted(location.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    location.rmdir()
    again = export(home, tmp_path / "out")
    assert statuses(again)[job] in (Status.EXPORTED, Status.UPDATED)
    assert any("no longer holds" in n for n in again.notes)


def test_the_signature_is_stored_beside_the_fingerprint_it_was_read_with(home, tmp_path):
    export(home, tmp_path / "out")
    ledger = Path(os.environ["EVALPORT_STATE_DIR"]) / LEDGER_FILE
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute(
            "SELECT s.signature, s.fingerprint = e.fingerprint FROM signatures s "
            "JOIN exports e USING (job_id, target)"
        ).fetchall()
    assert len(rows) == 4 and all(same for _, same in rows)
    assert all(signature.endswith("/succeeded") for signature, _ in rows)


def test_a_ledger_from_before_signatures_learns_them_on_the_next_export(home, tmp_path):
    export(home, tmp_path / "out")
    ledger = Path(os.environ["EVALPORT_STATE_DIR"]) / LEDGER_FILE
    with sqlite3.connect(ledger) as conn:
        conn.execute("DROP TABLE signatures")
    assert export(home, tmp_path / "out").counts() == {"unchanged": 4}, "read, found unchanged"
    spoil_keeping_the_signature(results_file(home))
    assert export(home, tmp_path / "out").counts() == {"unchanged": 4}, "now skipped unread"


def test_an_older_evalport_reading_the_ledger_still_finds_its_columns(home, tmp_path):
    export(home, tmp_path / "out")
    ledger = Path(os.environ["EVALPORT_STATE_DIR"]) / LEDGER_FILE
    with sqlite3.connect(ledger) as conn:
        [width] = {len(row) for row in conn.execute("SELECT * FROM exports")}
    assert width == 9, "the exports table an older version selects * from is unchanged"
