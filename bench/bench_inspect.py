#!/usr/bin/env python3
"""Times the commands that look without exporting, at a team's scale, each cold in a subprocess.

- ``evalport ls`` and ``evalport show <invocation>`` on 20,000 realistic jobs (4,000 x 5);
- an execution DB of 100,000 lines, append-heavy as the launcher's grows (each job written five
  times, the later lines replacing the earlier ones; the last one is the job's real record):
  ``evalport ls``, ``evalport show <prefix> ...`` resolving a few ids by unique prefix, and the
  service's ``resolve`` through the Python API (the subprocess's wall time, and the in-process
  time of building the service and resolving).

Targets (issue 16, informative): each under 1 s.

    python bench/bench_inspect.py [--invocations 4000] [--db-lines 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Timing,
    child_env,
    evalport_command,
    exec_db_of,
    load_average,
    realistic_home,
    repeat,
    verdict,
    work_folder,
)

TARGET_S = 1.0
RESOLVE_SCRIPT = r"""
import json, sys, time
started = time.perf_counter()
from evalport.app.container import build_container
service = build_container(exec_db=sys.argv[1], ledger=False).service()
jobs, errors = service.resolve(sys.argv[3:])
took = time.perf_counter() - started
open(sys.argv[2], "w").write(json.dumps({"jobs": len(jobs), "errors": [str(e) for e in errors], "s": took}))
"""


def grown_exec_db(source_db: Path, target: Path, lines: int) -> tuple[int, int]:
    """An execution DB of about ``lines`` lines from ``source_db``'s records, each job appended
    several times: a job's versions are spread over the following invocations, as a launcher's DB
    grows while jobs run; the last version of each job is its real record. (lines, jobs) written."""
    records = [json.loads(line) for line in source_db.read_text().splitlines() if line.strip()]
    versions = max(1, round(lines / max(len(records), 1)))
    by_invocation: dict[str, list[dict]] = {}
    for rec in records:
        by_invocation.setdefault(rec["invocation_id"], []).append(rec)
    waves = list(by_invocation.values())
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as fh:
        for step in range(len(waves) + versions - 1):
            for version in range(versions):
                wave = step - version
                if not 0 <= wave < len(waves):
                    continue
                for rec in waves[wave]:
                    if version == versions - 1:
                        line = rec
                    else:
                        state = ("submitted", "pending", "running", "finishing")[version % 4]
                        line = {**rec, "data": {**rec["data"], "status": state, "revision": version}}
                    fh.write(json.dumps(line) + "\n")
                    written += 1
    return written, len(records)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--invocations", type=int, default=4000, help="x --tasks jobs (default 20,000)")
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--db-lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", metavar="DIR", default=None, help="keep (and reuse) the data in DIR")
    args = ap.parse_args(argv)
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
    evalport = evalport_command()
    rows: list[tuple[str, Timing, str]] = []
    with work_folder(args.keep, "evalport-bench-inspect-") as folder:
        home, ids, jobs = realistic_home(folder, args.invocations, args.tasks, seed=args.seed)
        env = child_env(home, folder / "state")

        def cmd(*words: str, db: Path | None = None) -> tuple[list[str], dict[str, str]]:
            extra = ["--exec-db", str(db)] if db else []
            return [*evalport, *words, *extra], env

        middle = ids[len(ids) // 2]
        rows.append((f"evalport ls ({jobs} jobs)", repeat(lambda _i: cmd("ls"), args.repeat), ""))
        show = repeat(lambda _i: cmd("show", middle), args.repeat)
        rows.append((f"evalport show <invocation> ({jobs} jobs)", show, ""))

        big_db = folder / f"exec-{args.db_lines}.jsonl"
        lines, db_jobs = grown_exec_db(exec_db_of(home), big_db, args.db_lines)
        prefixes = [ids[0][:8], middle[:10], f"{ids[-1][:8]}.{args.tasks - 1}"]
        label = f"{lines}-line DB"
        rows.append((f"evalport ls ({label})", repeat(lambda _i: cmd("ls", db=big_db), args.repeat), ""))
        show_prefix = repeat(lambda _i: cmd("show", *prefixes, db=big_db), args.repeat)
        rows.append((f"evalport show <{len(prefixes)} prefixes> ({label})", show_prefix, ""))
        answer = folder / "resolve.json"
        resolve = repeat(
            lambda _i: ([sys.executable, "-c", RESOLVE_SCRIPT, str(big_db), str(answer), *prefixes], env),
            args.repeat,
        )
        got = json.loads(answer.read_text())
        inner = f"in-process {got['s']:.3f} s, {got['jobs']} jobs, {len(got['errors'])} errors"
        rows.append((f"service.resolve(<{len(prefixes)} prefixes>) ({label})", resolve, inner))
    print(f"\n{'what (cold, each in a subprocess)':52} {'median s':>9} {'tree MiB':>9}  target")
    for what, t, note in rows:
        failed = f" [{t.failed} of {t.runs} failed]" if t.failed else ""
        met = verdict(t.wall < TARGET_S)
        line = f"{what + failed:52} {t.wall:9.3f} {t.tree_mib:9.1f}  < {TARGET_S:g} s {met}"
        print(line + (f"  ({note})" if note else ""))
    print(f"(prefixes resolved: {' '.join(prefixes)}; the DB holds {db_jobs} jobs)")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
