"""Every entry point runs the same export: the flags, config shapes and ids behave alike everywhere."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import evalport
from evalport.plugin import BaseSink, Outcome, SinkConfig, Status


def _summary_ids(out: Path) -> list[str]:
    return [r["job_id"] for r in json.loads((out / "results.json").read_text())["runs"]]


def _run_under_a_terminal(argv: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """Runs ``evalport`` with stdin, stdout and stderr on a pseudo-terminal, as a user's shell does."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalport.app.cli", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "COLUMNS": "200", "TERM": "xterm"},
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")


def test_force_under_a_terminal_sends_again(cli, home, tmp_path):
    out = tmp_path / "out"
    job = home.jobs[0].job_id
    args = ["export", job, "--output-dir", str(out), "--exec-db", str(home.exec_db)]

    def deliveries() -> int:  # the ledger records an event each time the sink is called
        return len(json.loads(cli("history", job, "--json").out))

    assert _run_under_a_terminal(args)[0] == 0
    assert deliveries() == 1
    assert _run_under_a_terminal(args)[0] == 0
    assert deliveries() == 1, "without --force the ledger skips the job"
    code, text = _run_under_a_terminal([*args, "--force"])
    assert code == 0, text
    assert "local: 1 " in text
    assert deliveries() == 2, "--force under a terminal sent the job again"


@pytest.mark.parametrize("with_dest", [True, False])
def test_the_cli_takes_options_keyed_by_destination(cli, home, tmp_path, with_dest):
    out = tmp_path / "keyed"
    doc = json.dumps({"local": {"output_dir": str(out), "format": "json"}})
    dest = ["--dest", "local"] if with_dest else []
    run = cli("export", home.invocation_ids[0], *dest, "--config", doc)
    assert run.code == 0, run.err
    assert sorted(_summary_ids(out)) == sorted(j.job_id for j in home.jobs[:3])


def test_a_dry_run_says_what_the_ledger_would_skip(cli, home, tmp_path):
    out = str(tmp_path / "out")
    inv = home.invocation_ids[0]
    assert cli("export", inv, "--output-dir", out).code == 0
    run = cli("export", *home.invocation_ids, "--output-dir", out, "--dry-run", "--json")
    assert run.code == 0, run.err
    statuses = {o["job_id"]: (o["status"], o["reason"]) for o in json.loads(run.out)["outcomes"]}
    for job in home.jobs:
        status, reason = statuses[job.job_id]
        if job.invocation_id == inv:
            assert status == "unchanged" and "ledger" in reason and "--force" in reason
        else:
            assert status == "planned"
    forced = cli("export", *home.invocation_ids, "--output-dir", out, "--dry-run", "--force", "--json")
    assert {o["status"] for o in json.loads(forced.out)["outcomes"]} == {"planned"}


def _history_jobs(cli, ident: str) -> set[str]:
    run = cli("history", ident, "--json")
    assert run.code == 0, run.err
    return {row["job_id"] for row in json.loads(run.out)}


def test_history_takes_every_id_form_that_export_takes(cli, home, tmp_path):
    inv = home.invocation_ids[0]
    assert cli("export", *home.invocation_ids, "--output-dir", str(tmp_path / "out")).code == 0
    first = f"{inv}.0"
    assert _history_jobs(cli, first) == {first}
    assert _history_jobs(cli, f"{inv[:6]}.0") == {first}
    assert _history_jobs(cli, inv[:6]) == {j.job_id for j in home.jobs if j.invocation_id == inv}
    assert _history_jobs(cli, inv) == {j.job_id for j in home.jobs if j.invocation_id == inv}


@pytest.mark.parametrize(
    "command",
    [
        ["export", "--dest", "local"],
        ["show"],
        ["ls"],
        ["history"],
        ["report", "--format", "md"],
    ],
)
def test_an_unknown_id_is_a_usage_error_in_every_command(cli, command):
    run = cli(command[0], "ffffdeadbeef0000", *command[1:])
    assert run.code == 2, (run.out, run.err)
    assert "ffffdeadbeef0000" in run.err


def test_report_leaves_out_failed_jobs_unless_asked(cli, home):
    failed = home.jobs[0]
    (failed.directory / "logs" / "stage.exit").write_text("2026-01-01T00:00:00Z 3\n")
    inv = failed.invocation_id
    run = cli("report", inv, "--format", "md")
    assert run.code == 0, run.err
    assert "2 jobs" in run.out and failed.task.replace("_", "\\_") not in run.out
    assert failed.job_id in run.err and "--include-failed" in run.err
    with_failed = cli("report", inv, "--format", "md", "--include-failed")
    assert with_failed.code == 0, with_failed.err
    assert "3 jobs" in with_failed.out and failed.task.replace("_", "\\_") in with_failed.out


# -- one config document, the same sink configs through the CLI, the API and auto-export -----------


class RecorderConfig(SinkConfig):
    label: str = ""
    size: int = 0


class RecorderSink(BaseSink):
    """Remembers the configs it was built with and holds nothing."""

    name: ClassVar[str] = "recorder"
    Config = RecorderConfig
    built: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        RecorderSink.built.append(self.config.model_dump())

    def export(self, items):
        return [Outcome(i.result.job_id, self.destination, Status.EXPORTED) for i in items]


OPTIONS = {"label": "x", "size": 3, "log_metrics": ["score"]}
DOCUMENTS = {
    "launcher": {
        "execution": {"auto_export": {"destinations": ["recorder"], "configs": {"recorder": OPTIONS}}}
    },
    "export block": {"export": {"recorder": OPTIONS}},
    "keyed by destination": {"recorder": OPTIONS},
    "flat": OPTIONS,
}


@pytest.fixture
def recorder():
    from evalport.plugin import register_sink, unregister_sink

    RecorderSink.built.clear()
    register_sink("recorder")(RecorderSink)
    yield RecorderSink.built
    unregister_sink("recorder")


def _through_cli(cli, home, tmp_path, doc) -> None:
    run = cli("export", home.jobs[0].job_id, "--dest", "recorder", "--config", json.dumps(doc))
    assert run.code == 0, run.err


def _through_api(cli, home, tmp_path, doc) -> None:
    report = evalport.export(home.jobs[0].job_id, "recorder", doc, exec_db=home.exec_db)
    assert report.ok, report.to_dict()


def _through_auto_export(cli, home, tmp_path, doc) -> None:
    from evalport.app.autoexport import auto_export

    path = tmp_path / "run_config.json"
    path.write_text(json.dumps(doc))
    result = auto_export(home.jobs[0].directory, run_config=path, destinations=["recorder"], exit_code=0)
    assert result.exit_code == 0, result


@pytest.mark.parametrize("shape", list(DOCUMENTS))
def test_one_config_document_gives_the_same_sink_configs_everywhere(cli, home, tmp_path, recorder, shape):
    seen = []
    for entry in (_through_cli, _through_api, _through_auto_export):
        recorder.clear()
        entry(cli, home, tmp_path, DOCUMENTS[shape])
        assert len(recorder) == 1, entry.__name__
        seen.append(recorder[0])
    assert seen[0] == {**RecorderConfig().model_dump(), **OPTIONS}
    assert seen[1] == seen[0] and seen[2] == seen[0]
