#!/usr/bin/env python3
"""Times `evalport --help` and `evalport export ... --dest local --format json` on launcher data.

Generates deterministic launcher-format data (N invocations x 5 tasks) with evalport.testing's
factory, then runs the installed `evalport` command as a user would, each export into a fresh
output folder, and prints a table (median wall time over --repeat runs, peak RSS of the process).

    python bench/bench_export.py                  # 10x5, 100x5, 400x5
    python bench/bench_export.py --sizes 400 --reference   # also time nemo-evaluator-launcher 0.2.6

--reference installs the reference launcher into bench/.venv-ref (once) and times its
`export --dest local --format json` on the same data, with HOME pointing at the data so that it
reads the same execution DB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REF_VENV = HERE / ".venv-ref"
REF_VERSION = "nemo-evaluator-launcher==0.2.6"
LOCAL_JSON = ["--dest", "local", "--format", "json", "--output-dir"]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one run of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0,):
        print(f"  ! {' '.join(cmd[:3])} ... exited {proc.returncode}: {err.strip()[-300:]}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def median_run(cmd_for, env, repeat: int) -> tuple[float, float]:
    walls, rss = [], []
    for i in range(repeat):
        wall, peak, _ = timed(cmd_for(i), env)
        walls.append(wall)
        rss.append(peak)
    return statistics.median(walls), max(rss)


def ensure_reference() -> Path:
    exe = REF_VENV / "bin" / "nemo-evaluator-launcher"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(REF_VENV)], check=True)
        subprocess.run([str(REF_VENV / "bin" / "pip"), "install", "-q", REF_VERSION], check=True)
    return exe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 400], help="invocations (x5 tasks)")
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also time nemo-evaluator-launcher 0.2.6")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    args = ap.parse_args()

    from evalport.testing.factory import write_launcher_home

    evalport = shutil.which("evalport") or "evalport"
    work = Path(tempfile.mkdtemp(prefix="evalport-bench-"))
    rows = []
    try:
        help_wall, help_rss = median_run(
            lambda _i: [evalport, "--help"], dict(os.environ), max(args.repeat, 5)
        )
        rows.append(("evalport --help", "-", help_wall, help_rss))
        ref_exe = ensure_reference() if args.reference else None
        if ref_exe:
            wall, rss = median_run(lambda _i: [str(ref_exe), "--help"], dict(os.environ), 3)
            rows.append(("reference --help", "-", wall, rss))
        for n in args.sizes:
            home = write_launcher_home(
                work / f"home-{n}", n, args.tasks, seed=0, log_lines=200, secrets=False
            )
            ids = home.invocation_ids
            jobs = len(home.jobs)
            env = {**os.environ, "EVALPORT_EXEC_DB": str(home.exec_db)}
            time.sleep(1.0)  # let the file system settle after writing the data

            def export_cmd(out: Path, exe: str = evalport, ids=ids) -> list[str]:
                """The same command line for both tools: local JSON into ``out``."""
                return [exe, "export", *ids, *LOCAL_JSON, str(out)]

            wall, rss = median_run(lambda i, n=n: export_cmd(work / f"out-{n}-{i}"), env, args.repeat)
            rows.append((f"evalport export ({n}x{args.tasks})", jobs, wall, rss))
            # a second export into the same folder: everything unchanged
            again = work / f"out-{n}-0"
            wall, rss = median_run(lambda _i, again=again: export_cmd(again), env, args.repeat)
            rows.append((f"  re-export, unchanged ({n}x{args.tasks})", jobs, wall, rss))
            if ref_exe:
                ref_env = {**os.environ, "HOME": str(home.root)}

                def ref(i: int, n=n) -> list[str]:
                    return export_cmd(work / f"ref-{n}-{i}", str(ref_exe))

                wall, rss = median_run(ref, ref_env, max(1, args.repeat - 2))
                rows.append((f"reference export ({n}x{args.tasks})", jobs, wall, rss))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'what':42} {'jobs':>6} {'median s':>9} {'peak MiB':>9}")
    for what, jobs, wall, rss in rows:
        print(f"{what:42} {jobs!s:>6} {wall:9.3f} {rss:9.1f}")
    print(json.dumps({"cpus": os.cpu_count(), "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
