"""Running the real ``evalport`` command on the hostile corpus: isolated folders, a hang guard."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile.corpus import HostileCorpus

# Seconds before a command counts as hung (the target is 60 s for the whole corpus).
GUARD = float(os.environ.get("HOSTILE_GUARD", "180"))


@dataclass
class CliRun:
    name: str
    args: list[str]
    code: int | None
    out: str
    err: str
    seconds: float

    @property
    def hung(self) -> bool:
        return self.code is None

    def text(self) -> str:
        return self.out + "\n" + self.err

    def json(self):
        assert not self.hung, (
            f"`{self.name}` did not finish in {GUARD:.0f} s (killed); stderr:\n{self.err[-3000:]}"
        )
        try:
            return json.loads(self.out)
        except ValueError:
            pytest.fail(
                f"`{self.name}` printed no JSON report (exit {self.code}); stderr:\n{self.err[-3000:]}"
            )

    def describe(self) -> str:
        return f"`{self.name}` exit {self.code} after {self.seconds:.1f} s; stderr:\n{self.err[-3000:]}"


@dataclass
class Area:
    """The test's folders: the corpus, the output folder (everything evalport may write), a sentinel."""

    top: Path
    corpus: HostileCorpus
    out: Path
    sentinel: Path
    capture: Path
    before: set[Path]

    @property
    def local(self) -> Path:
        return self.out / "local"

    @property
    def mlflow_db(self) -> Path:
        return self.out / "mlflow" / "mlflow.db"

    @property
    def wandb(self) -> Path:
        return self.out / "wandb"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WANDB_", "MLFLOW_", "EVALPORT_", "GOOGLE_", "XDG_"))
        }
        folders = {
            "HOME": "home",
            "TMPDIR": "tmp",
            "XDG_CONFIG_HOME": "xdg-config",
            "XDG_CACHE_HOME": "xdg-cache",
            "XDG_DATA_HOME": "xdg-data",
            "XDG_STATE_HOME": "xdg-state",
            "EVALPORT_STATE_DIR": "state",
            "WANDB_CACHE_DIR": "wandb-cache",
            "WANDB_DATA_DIR": "wandb-data",
            "WANDB_CONFIG_DIR": "wandb-config",
        }
        for name, folder in folders.items():
            (self.out / folder).mkdir(parents=True, exist_ok=True)
            env[name] = str(self.out / folder)
        env.update(
            WANDB_MODE="offline",
            WANDB_BASE_URL="http://127.0.0.1:9",
            WANDB_SILENT="true",
            WANDB_ERROR_REPORTING="false",
            NETRC=str(self.out / "no-netrc"),
            NO_COLOR="1",
            COLUMNS="200",
        )
        return env

    def run(self, name: str, *args: str) -> CliRun:
        """Runs ``evalport <args>`` in its own process group from a folder inside the output folder."""
        cwd = self.out / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "evalport.app.cli", *args]
        out_path, err_path = self.capture / f"{name}.out", self.capture / f"{name}.err"
        started = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=err, cwd=cwd, env=self.env(), start_new_session=True
            )
            try:
                code: int | None = proc.wait(timeout=GUARD)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the hung command, or anything it left running
                proc.wait()
        seconds = time.perf_counter() - started
        print(f"hostile corpus: `{name}` exit {code} in {seconds:.1f} s")
        return CliRun(
            name,
            argv,
            code,
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
            seconds,
        )
