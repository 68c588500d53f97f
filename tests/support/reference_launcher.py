"""The real nemo-evaluator-launcher 0.2.6, run in its own venv, for side-by-side tests.

`.ci/setup.d/30-launcher.sh` installs it into ``build/venv-launcher`` (same mlflow and wandb versions
as ours, so both tools open the same sqlite stores and offline run folders). A test that needs it
takes the ``reference_launcher`` fixture and is skipped, with the reason, when it is not installed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / "build" / "venv-launcher"


def reference_executable() -> Path | None:
    """The launcher's console script, from $EVALPORT_REFERENCE_LAUNCHER or build/venv-launcher."""
    given = os.environ.get("EVALPORT_REFERENCE_LAUNCHER")
    exe = Path(given) if given else DEFAULT_VENV / "bin" / "nemo-evaluator-launcher"
    return exe if exe.is_file() and os.access(exe, os.X_OK) else None


@dataclass(frozen=True)
class ReferenceLauncher:
    """Runs the launcher with HOME at a launcher home, so it reads that home's execution DB."""

    executable: Path

    @property
    def python(self) -> Path:
        return self.executable.parent / "python"

    def env(self, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": f"{self.executable.parent}:/usr/bin:/bin",
            "HOME": str(home),
            "NEMO_EVALUATOR_EXEC_DB_FILE": str(Path(home) / ".nemo-evaluator" / "exec-db" / "exec.v1.jsonl"),
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "NO_PROXY": "*",
            "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
            "LANG": "C.UTF-8",
        }
        env.update(extra or {})
        return env

    def export(
        self,
        home: Path,
        ids: Sequence[str],
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """``nemo-evaluator-launcher export IDS... ARGS...``; fails the test if it exits non-zero."""
        cmd = [str(self.executable), "export", *ids, *args]
        proc = subprocess.run(
            cmd,
            cwd=cwd or home,
            env=self.env(home, env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def python_call(
        self, home: Path, code: str, *, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``code`` with the launcher venv's Python (to call its API the way launcher code does)."""
        proc = subprocess.run(
            [str(self.python), "-c", code],
            cwd=cwd or home,
            env=self.env(home, env),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise AssertionError(f"reference python exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def reference_launcher() -> ReferenceLauncher:
    exe = reference_executable()
    if exe is None:
        pytest.skip(
            "nemo-evaluator-launcher 0.2.6 is not installed (bash .ci/setup.d/30-launcher.sh installs it "
            "into build/venv-launcher, or set EVALPORT_REFERENCE_LAUNCHER)"
        )
    return ReferenceLauncher(exe)
