from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from evalport.app.cli import main
from evalport.testing.factory import LauncherHome, write_launcher_home


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=3, seed=3)


@pytest.fixture
def cli(capsys, home):
    """Runs the CLI in-process against the home's execution DB."""

    def run(*args: str, exec_db: bool = True) -> Run:
        argv = [str(a) for a in args]
        if exec_db:
            argv += ["--exec-db", str(home.exec_db)]
        code = main(argv)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
