"""`evalport watch` as a long-running process on a temporary execution DB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalport.testing.factory import append_records, write_launcher_home
from tests.support.waiting import wait_for


def exported_ids(out: Path) -> list[str]:
    try:
        return [r["job_id"] for r in json.loads((out / "results.json").read_text())["runs"]]
    except (FileNotFoundError, ValueError):
        return []


def history() -> list[dict]:
    run = subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "history", "--json", "--limit", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(run.stdout)


@pytest.fixture
def launcher(tmp_path):
    """Job dirs written now; their DB records are appended by the test while watch runs."""
    home = write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=5)
    records = [j.record for j in home.jobs]
    home.exec_db.unlink()
    return home, records


def start_watch(exec_db: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalport.app.cli",
            "watch",
            "--dest",
            "local",
            "--output-dir",
            str(out),
            "--interval",
            "0.2",
            "--exec-db",
            str(exec_db),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out


def test_jobs_appearing_while_watching_are_exported_once_per_destination(launcher, tmp_path):
    home, records = launcher
    out = tmp_path / "out"
    proc = start_watch(home.exec_db, out)
    try:
        append_records(home.exec_db, records[:2])
        wait_for(lambda: len(exported_ids(out)) == 2, what="the first two jobs")
        append_records(home.exec_db, records[2:])
        wait_for(lambda: len(exported_ids(out)) == 4, what="all four jobs")
        time.sleep(1.0)  # a few more cycles: nothing may be sent twice
    finally:
        printed = stop(proc)
    events = history()
    assert sorted(e["job_id"] for e in events) == sorted(j.job_id for j in home.jobs)
    assert {e["status"] for e in events} == {"exported"}
    assert printed.count("-> local: exported") == 4


def test_a_restarted_watcher_re_exports_nothing(launcher, tmp_path):
    home, records = launcher
    append_records(home.exec_db, records)
    out = tmp_path / "out"
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalport.app.cli",
            "watch",
            "--once",
            "--dest",
            "local",
            "--output-dir",
            str(out),
            "--exec-db",
            str(home.exec_db),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert len(exported_ids(out)) == 4
    before = len(history())
    proc = start_watch(home.exec_db, out)
    time.sleep(1.5)
    assert "exported" not in stop(proc)
    assert len(history()) == before


def test_a_destination_down_for_a_cycle_receives_the_job_on_the_next(launcher, tmp_path):
    home, records = launcher
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the output directory should be")
    out = blocker / "out"
    proc = start_watch(home.exec_db, out)
    try:
        append_records(home.exec_db, records[:1])
        wait_for(lambda: any(e["status"] == "failed" for e in history()), what="a failed delivery")
        blocker.unlink()
        wait_for(lambda: exported_ids(out) == [records[0]["job_id"]], what="the retry")
    finally:
        printed = stop(proc)
    statuses = [e["status"] for e in reversed(history())]
    assert statuses[0] == "failed" and statuses[-1] == "exported"
    assert "failed" in printed and "exported" in printed


def test_sigint_finishes_cleanly(launcher, tmp_path):
    home, records = launcher
    append_records(home.exec_db, records)
    proc = start_watch(home.exec_db, tmp_path / "out")
    wait_for(lambda: len(exported_ids(tmp_path / "out")) == 4, what="the export")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


def unreadable(job_dir: Path, how: str) -> None:
    """A results.yml the reader cannot turn into numbers: a 400-digit value, or a recursive alias."""
    import re

    results = job_dir / "artifacts" / "results.yml"
    if how == "huge integer":
        results.write_text(re.sub(r"value: \S+", "value: " + "9" * 400, results.read_text(), count=1))
    elif how == "recursive alias":
        results.write_text("results:\n  groups: &g\n    t:\n      groups: *g\n")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("interval", ["0", "-1", "nan"])
def test_a_poll_interval_that_is_not_a_positive_number_is_a_usage_error(interval, capsys, tmp_path):
    from evalport.app.cli import main

    code = main(["watch", "--once", "--interval", interval, "--output-dir", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--interval" in err and "positive" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("how", ["huge integer", "recursive alias"])
def test_a_job_that_cannot_be_read_neither_stops_the_watch_nor_is_retried_in_a_tight_loop(
    launcher, tmp_path, how
):
    home, records = launcher
    bad = home.jobs[0]
    unreadable(bad.directory, how)
    out = tmp_path / "out"
    proc = start_watch(home.exec_db, out)
    try:
        append_records(home.exec_db, records)
        good = sorted(j.job_id for j in home.jobs[1:])
        wait_for(lambda: sorted(exported_ids(out)) == good, what="the jobs after the bad one")
        time.sleep(2.0)  # ten polls at 0.2 s; the backoff (0.2, 0.4, 0.8, 1.6 s) allows four or five tries
        assert proc.poll() is None, "watch must keep running"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, warned = proc.communicate(timeout=30)
    assert proc.returncode == 0, warned
    assert "Traceback" not in warned
    failed_deliveries = [e for e in history() if e["job_id"] == bad.job_id and e["status"] == "failed"]
    crashed_exports = [line for line in warned.splitlines() if bad.job_id in line]
    tries = len(failed_deliveries) + len(crashed_exports)
    assert 1 <= tries <= 5, (failed_deliveries, warned)
    assert bad.job_id not in exported_ids(out)


def test_a_poll_that_raises_is_a_warning_and_the_next_poll_runs(launcher, tmp_path):
    from evalport.app.container import build_container
    from evalport.app.service import ExportService
    from evalport.app.settings import build_settings
    from evalport.app.watch import Watcher

    home, records = launcher
    append_records(home.exec_db, records)
    polls: list[int] = []

    def make_service() -> ExportService:
        polls.append(1)
        if len(polls) == 1:
            raise OSError("the execution DB is on a file system that just went away")
        return build_container(exec_db=home.exec_db).service()

    service = build_container(exec_db=home.exec_db).service()
    sinks = service.build_sinks(build_settings({"output_dir": str(tmp_path / "out")}, ["local"]))
    warnings: list[str] = []
    watcher = Watcher(make_service, sinks, interval=0.01, on_warning=warnings.append)
    watcher.run(max_cycles=2)
    assert len(polls) == 2
    assert len(warnings) == 1 and "OSError" in warnings[0] and "went away" in warnings[0]
    assert sorted(exported_ids(tmp_path / "out")) == sorted(j.job_id for j in home.jobs)


def test_a_watcher_sends_again_what_the_destination_lost(launcher, tmp_path):
    """The ledger is a cache: a deleted output folder does not stay "delivered" for watch."""
    import shutil

    home, records = launcher
    append_records(home.exec_db, records)
    out = tmp_path / "out"
    once = [sys.executable, "-m", "evalport.app.cli", "watch", "--once", "--dest", "local"]
    once += ["--output-dir", str(out), "--exec-db", str(home.exec_db)]
    first = subprocess.run(once, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert len(exported_ids(out)) == 4
    shutil.rmtree(out)
    again = subprocess.run(once, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert sorted(exported_ids(out)) == sorted(r["job_id"] for r in records)
