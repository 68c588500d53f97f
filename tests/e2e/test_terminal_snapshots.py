"""Snapshots of `ls` and `show` at an 80-column terminal: what a person sees, full ids included.

The launcher home lives at a fixed path so that the table layout does not depend on the length of
pytest's temporary folder; times are shown in UTC. To accept a deliberate change of layout, run
with ``EVALPORT_UPDATE_SNAPSHOTS=1`` and review the diff of tests/e2e/snapshots/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from evalport.testing.factory import write_launcher_home
from tests.e2e.test_terminal import at_terminal

SNAPSHOTS = Path(__file__).parent / "snapshots"
ROOT = Path("/tmp/evalport-snapshot-home")


@pytest.fixture
def fixed_home():
    shutil.rmtree(ROOT, ignore_errors=True)
    home = write_launcher_home(ROOT, invocations=2, tasks_per_invocation=2, seed=7)
    yield home
    shutil.rmtree(ROOT, ignore_errors=True)


def matches_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("EVALPORT_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; see the module docstring to accept it"


def test_ls_at_80_columns_looks_as_it_did(fixed_home):
    code, text = at_terminal("ls", "--exec-db", fixed_home.exec_db, TZ="UTC", HOME="/nonexistent")
    assert code == 0, text
    assert all(f" {job.job_id} " in text for job in fixed_home.jobs)
    matches_snapshot("ls_80.txt", text)


def test_show_at_80_columns_looks_as_it_did(fixed_home):
    job = fixed_home.jobs[0]
    code, text = at_terminal(
        "show", job.job_id, "--exec-db", fixed_home.exec_db, TZ="UTC", HOME="/nonexistent"
    )
    assert code == 0, text
    assert job.job_id in text
    matches_snapshot("show_80.txt", text)


def test_no_color_at_a_terminal_prints_no_color_codes(fixed_home):
    """NO_COLOR (no-color.org) turns colour off; bold and other emphasis may stay."""
    # at_terminal strips escape codes, so read the pty bytes raw through `script`-like capture
    import pty
    import select
    import subprocess
    import sys

    from tests.e2e.test_terminal import _env

    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalport.app.cli", "ls", "--exec-db", str(fixed_home.exec_db)],
        stdin=subprocess.DEVNULL,
        stdout=child_fd,
        stderr=child_fd,
        env=_env(NO_COLOR="1"),
    )
    os.close(child_fd)
    raw = b""
    while select.select([main_fd], [], [], 30)[0]:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        raw += chunk
    os.close(main_fd)
    assert proc.wait(timeout=30) == 0
    assert fixed_home.jobs[0].job_id.encode() in raw
    import re

    codes = [int(c) for m in re.findall(rb"\x1b\[([0-9;]*)m", raw) for c in m.split(b";") if c]
    assert not [c for c in codes if 30 <= c <= 49 or 90 <= c <= 107], codes


def test_the_readme_first_command_leaves_nothing_untracked(tmp_path):
    """README line 1 exports into ./mlflow.db and ./evalport-results; .gitignore covers what it leaves."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copy(repo / ".gitignore", work / ".gitignore")
    shutil.copytree(repo / "examples" / "nel-results", work / "examples" / "nel-results")
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    dests = ["--dest", "local", "--dest", "mlflow"]
    run = subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "export", "--job-dir", "examples/nel-results", *dests],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert (work / "mlflow.db").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=work, capture_output=True, text=True)
    untracked = [line for line in status.stdout.splitlines() if line.startswith("??")]
    assert untracked == [], untracked
