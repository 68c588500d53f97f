"""What the benchmarks share: data, the two tools, timed subprocesses and their peak memory.

Every command runs as a user would run it: a fresh process (cold: nothing imported, no ledger, a
fresh output folder), stdout and stderr captured (quiet: no terminal, so no progress bar), with
HOME at the generated launcher home so neither tool reads or writes the real home. Nothing here
reaches the network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LAUNCHER_VENV = REPO / "build" / "venv-launcher"
FALLBACK_VENV = HERE / ".venv-ref"
REF_VERSION = "nemo-evaluator-launcher==0.2.6"
LAUNCHER = "nemo-evaluator-launcher"


@dataclass(frozen=True)
class Run:
    """One timed process: wall seconds, peak memory (MiB) and exit code.

    ``tree_mib`` is the largest sampled sum of PSS (proportional set size: pages shared by forked
    workers counted once) over the process and all its descendants (sampled every 20 ms, so a very
    short peak can be missed); ``max_rss_mib`` is the kernel's peak RSS of the largest single
    process of the tree.
    """

    wall: float
    max_rss_mib: float
    tree_mib: float
    returncode: int
    stderr: str = ""


@dataclass(frozen=True)
class Timing:
    """The median wall time of several runs and the largest peak memory among them."""

    wall: float
    tree_mib: float
    max_rss_mib: float
    runs: int
    failed: int

    @classmethod
    def of(cls, runs: Sequence[Run]) -> Timing:
        return cls(
            statistics.median(r.wall for r in runs),
            max(r.tree_mib for r in runs),
            max(r.max_rss_mib for r in runs),
            len(runs),
            sum(1 for r in runs if r.returncode != 0),
        )


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
    return out


def _memory_bytes(pid: int) -> int:
    """The process's proportional set size (shared pages split between their users, so forked
    workers are not counted twice); its RSS where smaps_rollup is unavailable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def tree_memory(pid: int) -> int:
    """The summed PSS of ``pid`` and its descendants, in bytes (Linux /proc; 0 elsewhere)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _memory_bytes(current)
        todo.extend(_children(current))
    return total


def run_timed(cmd: Sequence[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 3600) -> Run:
    """Runs ``cmd`` once, quiet, and measures it.

    The page cache is flushed first (``os.sync``), outside the clock: otherwise the write-back of the
    data just generated, or of the previous run's output, lands on this run's disk time.
    """
    if hasattr(os, "sync"):
        os.sync()
    peak = [0]
    done = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_memory(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read() if proc.stderr else b""))
    reader.start()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.005)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = b"".join(err_chunks).decode(errors="replace")
    if proc.returncode != 0:
        print(
            f"  ! {Path(cmd[0]).name} {' '.join(cmd[1:3])} ... exited {proc.returncode}: {err.strip()[-400:]}"
        )
    return Run(wall, usage.ru_maxrss / 1024, peak[0] / 2**20, proc.returncode, err)


def repeat(
    make_cmd: Callable[[int], tuple[Sequence[str], dict[str, str]]], times: int, cwd: Path | None = None
) -> Timing:
    """``times`` runs of ``make_cmd(i)`` (a command and its environment), one after the other."""
    return Timing.of([run_timed(*make_cmd(i), cwd=cwd) for i in range(times)])


def evalport_command() -> list[str]:
    """The ``evalport`` of this checkout (``python -m`` with this interpreter, so the worktree's code)."""
    return [sys.executable, "-c", "import sys; from evalport.app.cli import main; sys.exit(main())"]


def child_env(home: Path, state_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a timed run: HOME at the launcher home, no proxies, no SDK noise."""
    # As users run it: bytecode caching on (an environment that turns it off recompiles every module
    # on every start), no SDK or evalport settings inherited.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "WANDB_", "EVALPORT_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        HOME=str(home),
        NEMO_EVALUATOR_EXEC_DB_FILE=str(exec_db_of(home)),
        EVALPORT_EXEC_DB=str(exec_db_of(home)),
        NO_PROXY="*",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        LANG="C.UTF-8",
    )
    if state_dir is not None:
        env["EVALPORT_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def exec_db_of(home: Path) -> Path:
    return home / ".nemo-evaluator" / "exec-db" / "exec.v1.jsonl"


def find_launcher(install: bool = True) -> Path | None:
    """nemo-evaluator-launcher 0.2.6: build/venv-launcher (`.ci/setup.d/30-launcher.sh`), else
    bench/.venv-ref, which is installed on first use when ``install`` (the only step that needs the
    package index)."""
    for venv in (LAUNCHER_VENV, FALLBACK_VENV):
        exe = venv / "bin" / LAUNCHER
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
    if not install:
        return None
    subprocess.run([sys.executable, "-m", "venv", str(FALLBACK_VENV)], check=True)
    subprocess.run([str(FALLBACK_VENV / "bin" / "pip"), "install", "-q", REF_VERSION], check=True)
    return FALLBACK_VENV / "bin" / LAUNCHER


@contextlib.contextmanager
def work_folder(keep: str | None, prefix: str) -> Iterator[Path]:
    """A temporary folder removed at the end, or ``keep`` (created, left in place)."""
    if keep:
        path = Path(keep).absolute()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        print(f"(kept everything under {path})")
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def realistic_home(folder: Path, invocations: int, tasks: int, seed: int = 0) -> tuple[Path, list[str], int]:
    """A realistic launcher home (written once per folder): its path, invocation ids and job count."""
    from evalport.testing.factory import write_launcher_home

    home = folder / f"home-{invocations}x{tasks}-seed{seed}"
    marker = home / ".bench-complete"
    if not marker.exists():
        shutil.rmtree(home, ignore_errors=True)
        started = time.perf_counter()
        written = write_launcher_home(home, invocations, tasks, seed=seed, profile="realistic")
        (home / "invocations.txt").write_text("".join(f"{i}\n" for i in written.invocation_ids))
        marker.write_text(f"{len(written.jobs)}\n")
        print(f"(wrote {len(written.jobs)} realistic jobs in {time.perf_counter() - started:.1f} s: {home})")
    ids = (home / "invocations.txt").read_text().split()
    return home, ids, int(marker.read_text())


def warm(home: Path) -> float:
    """Reads every file under ``home`` once (untimed), so that every timed run, evalport's and the
    launcher's alike, finds the jobs in the page cache: a 2-CPU VM gives its cache back within
    minutes, and a run that reads 20,000 jobs from disk times the disk. Returns the seconds taken."""
    started = time.perf_counter()
    for folder, _dirs, files in os.walk(home):
        for name in files:
            with contextlib.suppress(OSError), open(os.path.join(folder, name), "rb") as fh:
                while fh.read(1 << 20):
                    pass
    return time.perf_counter() - started


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def ratio(slow: float | None, fast: float | None) -> str:
    if not slow or not fast:
        return "-"
    return f"{slow / fast:.1f}x"


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "NOT met")


def written(folder: Path) -> str:
    """``N files, X MB`` under ``folder`` (what an export wrote)."""
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return f"{len(sizes)} files, {sum(sizes) / 1e6:.1f} MB written"
