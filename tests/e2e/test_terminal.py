"""What the CLI prints at an 80-column terminal (a pseudo-terminal) and into pipes: full ids, ``ls``
grouped by invocation, one-line warnings, help text for every option, quiet broken pipes, wording."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from evalport.app.cli import main
from evalport.testing.factory import write_launcher_home

COMMANDS = ["export", "ls", "show", "history", "watch", "auto-export", "report", "doctor", "sinks"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "EVALPORT_EXEC_DB")}
    return {**env, "COLUMNS": "80", "LINES": "40", "TERM": "xterm", **extra}


def at_terminal(*args: object, **env: str) -> tuple[int, str]:
    """Runs ``evalport args`` with stdout and stderr on an 80-column pseudo-terminal; (exit code, text)."""
    main_fd, child_fd = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalport.app.cli", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=child_fd,
        stderr=child_fd,
        env=_env(NO_COLOR="1", **env),
    )
    os.close(child_fd)
    chunks = []
    while True:
        ready, _, _ = select.select([main_fd], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(main_fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(main_fd)
    code = proc.wait(timeout=60)
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return code, re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)


@pytest.fixture
def home(tmp_path: Path):
    return write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=3, seed=3)


def _inline(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# 1. full ids


def test_ls_at_an_80_column_terminal_prints_every_job_id_whole(home):
    code, text = at_terminal("ls", "--exec-db", home.exec_db)
    assert code == 0, text
    for job in home.jobs:
        assert re.search(rf"(^|\s){re.escape(job.job_id)}(\s|$)", text, re.M), text
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_show_at_an_80_column_terminal_names_the_job_by_its_full_id(home):
    job = home.jobs[0]
    code, text = at_terminal("show", job.job_id, "--exec-db", home.exec_db)
    assert code == 0, text
    assert re.search(rf"(^|\s){re.escape(job.job_id)}(\s|$)", text, re.M), text
    assert "…" not in text


def test_ls_into_a_pipe_prints_every_job_id_whole(home, capsys):
    code, out, _ = _inline(capsys, "ls", "--exec-db", home.exec_db)
    assert code == 0
    assert all(job.job_id in out for job in home.jobs) and "…" not in out


# 2. ls grouped by invocation


def test_ls_prints_a_line_per_invocation_with_model_task_count_and_states_then_its_jobs(home, capsys):
    code, out, _ = _inline(capsys, "ls", "--exec-db", home.exec_db)
    assert code == 0
    lines = out.splitlines()
    for inv in home.invocation_ids:
        head = next(i for i, line in enumerate(lines) if line.startswith(inv) or f" {inv} " in line)
        model = home.job(f"{inv}.0").model_id
        assert model in lines[head] and "3 tasks" in lines[head] and "3 succeeded" in lines[head], lines[head]
        below = "\n".join(lines[head + 1 : head + 6])
        assert all(f"{inv}.{i}" in below for i in range(3)), out


def test_ls_of_job_dirs_fills_the_model_column_from_the_job_s_run_config(home, capsys):
    job = home.jobs[0]
    code, out, _ = _inline(capsys, "ls", "--job-dir", job.directory, "--exec-db", home.root / "none.jsonl")
    assert code == 0, out
    # one model per invocation: the invocation's line names it (its job lines leave it out)
    (inv_line,) = [line for line in out.splitlines() if job.invocation_id in line and "1 task" in line]
    assert job.model_id in inv_line, out


def test_ls_names_each_job_folder_below_its_invocation_folder_and_keeps_ids_whole(home):
    code, text = at_terminal("ls", "--exec-db", home.exec_db)
    assert code == 0, text
    for job in home.jobs:
        (line,) = [row for row in text.splitlines() if f" {job.job_id} " in row]
        assert job.directory.name[:8] in line  # the job's own folder, not the whole path folded
    assert str(home.jobs[0].directory.parent)[:10] in text  # the invocation's folder on its line


# 3. ls with no execution DB


def test_ls_with_no_default_execution_db_says_where_it_looked_and_exits_0(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nowhere" / "exec.v1.jsonl"
    monkeypatch.setenv("EVALPORT_EXEC_DB", str(missing))
    code, _out, err = _inline(capsys, "ls")
    assert code == 0
    assert f"no execution DB at {missing}" in err and "--exec-db" in err and "--job-dir" in err


def test_ls_with_an_exec_db_option_naming_a_missing_file_is_a_usage_error(tmp_path, capsys):
    missing = tmp_path / "typo.jsonl"
    code, _out, err = _inline(capsys, "ls", "--exec-db", missing)
    assert code == 2
    assert f"no execution DB at {missing}" in err


# 4. warnings on one line


def test_a_warning_longer_than_80_columns_is_one_line_at_a_terminal(home):
    long_db = home.root / ("a-folder-long-enough-to-push-the-warning-past-eighty-columns-" * 2) / "e.jsonl"
    long_db.parent.mkdir(parents=True)
    long_db.write_text(home.exec_db.read_text() + "{not json\n")
    code, text = at_terminal("ls", "--exec-db", long_db)
    assert code == 0, text
    (line,) = [line for line in text.splitlines() if "corrupt execution-DB line" in line]
    assert line.startswith("warning:") and str(long_db) in line, text


# 5. help


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_has_help_text(command, capsys):
    main([command, "--help"])
    text = capsys.readouterr().out
    assert "--empty-" not in text
    lines = [line.strip("│").rstrip() for line in text.splitlines() if re.match(r"│[\s*]+-", line)]
    assert lines or command == "sinks", text
    indent = min((len(line) - len(line.lstrip(" *")) for line in lines), default=0)
    # a deeper line holds a name that did not fit beside the one above (``--only-required`` ``--all-artifacts``)
    options = [line.strip(" *") for line in lines if len(line) - len(line.lstrip(" *")) == indent]
    for option in options:
        words = re.split(r"\s{2,}", option, maxsplit=1)
        assert len(words) == 2 and not words[1].startswith("[default"), f"{command}: {option!r}\n{text}"


def test_evalport_help_describes_every_command(capsys):
    main(["--help"])
    text = capsys.readouterr().out
    for command in COMMANDS:
        (line,) = [line for line in text.splitlines() if re.match(rf"│ {re.escape(command)}\s", line)]
        assert len(line.strip("│ ").split(None, 1)) == 2, line


# 6. broken pipes


@pytest.mark.parametrize("args", [["ls", "--json"], ["ls"], ["history", "--json"], ["show", "--json"]])
def test_output_into_a_closed_pipe_ends_quietly(home, args):
    if args[0] == "show":
        args = [*args, home.invocation_ids[0]]
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -0`: the reader is gone before the first line
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalport.app.cli", *args, "--exec-db", str(home.exec_db)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        env=_env(EVALPORT_STATE_DIR=str(home.root / "state")),
    )
    os.close(write_end)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 0, err


# 7. wording


def test_a_report_of_one_model_says_1_model(home, capsys, tmp_path):
    job = home.jobs[0]
    code, out, err = _inline(
        capsys, "report", job.job_id, "--output", tmp_path / "r.md", "--exec-db", home.exec_db
    )
    assert code == 0, err
    assert "1 job," in out and "1 model," in out and "1 task " in out, out


def test_watch_once_does_not_say_it_is_watching_every_30s(home, capsys, tmp_path):
    code, out, err = _inline(
        capsys, "watch", "--once", "--output-dir", tmp_path / "o", "--exec-db", home.exec_db
    )
    assert code == 0, err
    assert "every" not in out and "watching" not in out, out
