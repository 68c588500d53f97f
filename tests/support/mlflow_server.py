"""A real ``mlflow server`` on 127.0.0.1 for tests and benchmarks.

sqlite backend store and a local artifact folder (served through the server, so uploads go over
HTTP as they do against a team server) in a directory of the caller's choosing. Startup takes
several seconds (the store's migrations and the app import), so tests share one per session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """``start()``, ``stop()``, ``start()`` again on the same port; ``url`` for clients."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.db = self.root / "store.db"
        self.artifacts = self.root / "artifacts"
        self.log = self.root / "server.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_uri(self) -> str:
        return f"sqlite:///{self.db}"

    def command(self) -> list[str]:
        mlflow = Path(sys.executable).with_name("mlflow")
        head = [str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]
        return [
            *head,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            self.backend_uri,
            "--artifacts-destination",
            str(self.artifacts),
        ]

    def start(self, timeout: float = 90.0) -> MlflowServer:
        if self.process is not None and self.process.poll() is None:
            return self
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {self.process.returncode}; see {self.log}:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            if self.healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer /health within {timeout:.0f} s; see {self.log}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """Ends the server's whole process group: SIGKILL when ``kill`` (a crash), else SIGTERM."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    def count_runs(self, status: str | None = None) -> int:
        """Runs in the server's store (with that status, e.g. FINISHED), read from its sqlite file."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as conn:
            if status is None:
                return conn.execute("select count(*) from runs").fetchone()[0]
            return conn.execute("select count(*) from runs where status = ?", (status,)).fetchone()[0]

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
