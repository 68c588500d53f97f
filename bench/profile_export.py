#!/usr/bin/env python3
"""Profiles one evalport export (local JSON, realistic data) with cProfile, worker processes too.

The export runs in a fresh process (imports included, as a user pays them), with a fresh ledger
and output folder. Reading may fan out to forked worker processes
(``evalport.adapters.formats.read_pool``); every multiprocessing child started by the export is
profiled too (``multiprocessing.process.BaseProcess.run`` is wrapped before anything forks, so it
holds for any pool built on multiprocessing). Prints the top functions of the exporting process and
of the workers (summed), by cumulative and by own time, then all processes summed by own time.

    python bench/profile_export.py [--invocations 400] [--top 25] [--keep DIR] [--dest local]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import child_env, load_average, realistic_home, work_folder


def profile_in_this_process(profiles: Path, argv: list[str]) -> int:
    """Runs ``evalport <argv>`` here under cProfile; each forked child writes its own profile."""
    import cProfile
    import multiprocessing.process

    original_run = multiprocessing.process.BaseProcess.run

    def profiled_run(self: multiprocessing.process.BaseProcess) -> None:
        worker = cProfile.Profile()
        worker.enable()
        try:
            original_run(self)
        finally:
            worker.disable()
            worker.dump_stats(str(profiles / f"worker-{os.getpid()}.prof"))

    multiprocessing.process.BaseProcess.run = profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    started = time.perf_counter()
    main_profile.enable()
    from evalport.app.cli import main

    code = main(argv)
    main_profile.disable()
    wall = time.perf_counter() - started
    main_profile.dump_stats(str(profiles / "main.prof"))
    (profiles / "wall.txt").write_text(f"{wall}\n{code}\n")
    return 0


def top(files: list[Path], sort: str, count: int) -> str:
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(*[str(f) for f in files], stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(count)
    text = out.getvalue()
    start = text.find("   ncalls")
    return (text[start:] if start >= 0 else text).rstrip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--invocations", type=int, default=400)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--dest", default="local", help="destination (local JSON by default)")
    ap.add_argument("--keep", metavar="DIR", default=None, help="keep the data and the .prof files in DIR")
    ap.add_argument("--in-process", nargs=2, metavar=("PROFILES", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("ids", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    dest_args = ["--dest", args.dest] + (["--format", "json"] if args.dest == "local" else [])
    if args.in_process:
        profiles, out = (Path(p) for p in args.in_process)
        return profile_in_this_process(profiles, ["export", *args.ids, *dest_args, "--output-dir", str(out)])
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
    with work_folder(args.keep, "evalport-profile-") as folder:
        home, ids, jobs = realistic_home(folder, args.invocations, args.tasks, seed=args.seed)
        profiles = folder / f"profiles-{os.getpid()}"
        profiles.mkdir()
        env = child_env(home, folder / f"state-{os.getpid()}")
        cmd = [
            sys.executable,
            __file__,
            "--dest",
            args.dest,
            "--in-process",
            str(profiles),
            str(folder / f"out-{os.getpid()}"),
            *ids,
        ]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        wall, code = (profiles / "wall.txt").read_text().split()
        workers = sorted(profiles.glob("worker-*.prof"))
        main_prof = [profiles / "main.prof"]
        took = f"{float(wall):.3f} s under the profiler (exit {code})"
        print(f"{jobs} jobs to {args.dest}: {took}, {len(workers)} worker processes")
        sections = [("exporting process", main_prof)]
        if workers:
            sections.append((f"{len(workers)} worker processes, summed", workers))
        for title, files in sections:
            for sort, what in (("cumulative", "cumulative"), ("tottime", "own time")):
                print(f"\n=== {title}: top {args.top} by {what}\n{top(files, sort, args.top)}")
        if workers:
            summed = top(main_prof + workers, "tottime", args.top)
            print(f"\n=== all processes summed: top {args.top} by own time\n{summed}")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
