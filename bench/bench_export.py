#!/usr/bin/env python3
"""Times `evalport export ... --dest local --format json` on realistic launcher data, against the
launcher and against the libyaml floor, all in the same run.

Data: ``write_launcher_home(..., profile="realistic")`` (N invocations x 5 tasks; 5 artifacts per
job, 200-line logs, 1 to 10 metrics, results.yml with command/config/target/metadata blocks).
Per size it prints one table:

- evalport export: cold (a fresh process, a fresh ledger, a fresh output folder), quiet (no
  terminal), median of --repeat runs;
- the unchanged re-export: again into the first run's folder with its ledger (median of --repeat);
- nemo-evaluator-launcher 0.2.6 (--reference), the same command line, HOME at the data;
- the libyaml floor: one process parsing every results.yml and run_config.yml of the same jobs with
  ``yaml.load(..., Loader=yaml.CSafeLoader)``, each file read once (read + parse timed in-process);
- the targets of issue 16 with "met" / "NOT met" (informative; nothing fails).

Every file of the generated jobs is read once before a size's timed runs, so that each run finds
them in the page cache (see ``benchlib.warm``).

    python bench/bench_export.py                          # 400 x 5 = 2,000 jobs
    python bench/bench_export.py --reference              # ... and the launcher, as a ratio
    python bench/bench_export.py --sizes 400 4000         # ... and 20,000 jobs (ratio and memory)
    python bench/bench_export.py --keep /tmp/bench-data   # keep (and reuse) the generated data
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Timing,
    child_env,
    evalport_command,
    find_launcher,
    load_average,
    ratio,
    realistic_home,
    repeat,
    verdict,
    warm,
    work_folder,
    written,
)

BASELINE_INVOCATIONS = 400  # the 2,000-job size the 20,000-job run is compared with
FLOOR_SCRIPT = r"""
import json, sys, time
import yaml
paths = open(sys.argv[1]).read().split("\n")
started = time.perf_counter()
parse = 0.0
for p in paths:
    with open(p, "rb") as fh:
        data = fh.read()
    t = time.perf_counter()
    yaml.load(data, Loader=yaml.CSafeLoader)
    parse += time.perf_counter() - t
total = time.perf_counter() - started
open(sys.argv[2], "w").write(json.dumps({"files": len(paths), "total": total, "parse": parse}))
"""


@dataclass
class SizeResult:
    invocations: int
    jobs: int
    export: Timing | None = None
    #: ``--no-copy-artifacts``: summaries only, the files the launcher's local export writes.
    summaries: Timing | None = None
    unchanged: Timing | None = None
    launcher: Timing | None = None
    floor_total: float | None = None
    floor_parse: float | None = None
    floor_mib: float | None = None
    evalport_wrote: str = ""
    launcher_wrote: str = ""


def local_json(ids: list[str], out: Path) -> list[str]:
    """The same arguments for both tools: local JSON into ``out``."""
    return ["export", *ids, "--dest", "local", "--format", "json", "--output-dir", str(out)]


def libyaml_floor(home: Path) -> tuple[float, float, float]:
    """(read + parse seconds, parse-only seconds, peak MiB) of one process parsing the YAML of every job."""
    from benchlib import run_timed

    paths = sorted(home.glob("nel-results/*/*/artifacts/results.yml"))
    paths += sorted(home.glob("nel-results/*/*/artifacts/run_config.yml"))
    listing, answer = home.parent / f"{home.name}.floor-paths", home.parent / f"{home.name}.floor.json"
    listing.write_text("\n".join(str(p) for p in paths))
    run = run_timed([sys.executable, "-c", FLOOR_SCRIPT, str(listing), str(answer)], dict(os.environ))
    got = json.loads(answer.read_text())
    memory = run.tree_mib
    return got["total"], got["parse"], memory


def measure(
    folder: Path,
    invocations: int,
    args: argparse.Namespace,
    launcher: Path | None,
    *,
    only_evalport: bool = False,
) -> SizeResult:
    home, ids, jobs = realistic_home(folder, invocations, args.tasks, seed=args.seed)
    print(f"(read the {jobs} jobs' files once in {warm(home):.1f} s: every timed run finds them cached)")
    # A fresh folder per bench run, never an old one removed first: ext4 skips the inodes freed in
    # the last minutes when it allocates new ones, so deleting 40,000 files right before the timed
    # runs slows every file they create (by half on the 2-CPU test machine). Old runs stay under
    # --keep (the user asked to keep them) and go with the temporary folder otherwise.
    runs = folder / f"runs-{invocations}-{os.getpid()}"
    runs.mkdir()
    evalport = evalport_command()
    result = SizeResult(invocations, jobs)

    def cold(i: int) -> tuple[list[str], dict[str, str]]:
        return [*evalport, *local_json(ids, runs / f"out-{i}")], child_env(home, runs / f"state-{i}")

    result.export = repeat(cold, args.repeat)
    result.evalport_wrote = written(runs / "out-0")
    if only_evalport:
        return result

    def unchanged(_i: int) -> tuple[list[str], dict[str, str]]:
        return [*evalport, *local_json(ids, runs / "out-0")], child_env(home, runs / "state-0")

    result.unchanged = repeat(unchanged, args.repeat)

    def summaries(i: int) -> tuple[list[str], dict[str, str]]:
        out = [*local_json(ids, runs / f"sum-{i}"), "--no-copy-artifacts"]
        return [*evalport, *out], child_env(home, runs / f"sum-state-{i}")

    result.summaries = repeat(summaries, args.repeat)
    if launcher is not None:

        def reference(i: int) -> tuple[list[str], dict[str, str]]:
            return [str(launcher), *local_json(ids, runs / f"ref-{i}")], child_env(home)

        result.launcher = repeat(reference, max(1, args.repeat - 2))
        result.launcher_wrote = written(runs / "ref-0")
    result.floor_total, result.floor_parse, result.floor_mib = libyaml_floor(home)
    return result


MIB_300MB = 300e6 / 2**20  # the target is 300 MB; the tables are in MiB


def table(res: SizeResult, baseline: SizeResult | None) -> str:
    """One size's lines: what, median seconds, peak memory, the target and whether it is met."""
    per = res.jobs // max(res.invocations, 1)
    rows = [
        f"\n== {res.jobs} jobs ({res.invocations} invocations x {per})",
        f"{'what':44} {'median s':>9} {'tree MiB':>9} {'max RSS':>8}  {'target':28}",
    ]

    def add(what: str, numbers: str, target: str = "", met: bool | None = None) -> None:
        rows.append(f"{what:44} {numbers:28}  {target:28} {'' if met is None else verdict(met)}".rstrip())

    def timing(what: str, t: Timing | None, target: str = "", met: bool | None = None) -> None:
        if t is not None:
            label = (
                what
                + (f" (median of {t.runs})" if t.runs > 1 else "")
                + (f" [{t.failed} failed]" * bool(t.failed))
            )
            add(label, f"{t.wall:9.3f} {t.tree_mib:9.1f} {t.max_rss_mib:8.1f}", target, met)

    exp = res.export
    assert exp is not None
    big = baseline is not None and baseline is not res
    timing("evalport export, cold", exp)
    if big and baseline is not None and baseline.export is not None:
        grow = exp.wall / baseline.export.wall
        vs = f"  ... / the {baseline.jobs}-job export ({baseline.export.wall:.3f} s)"
        add(vs, f"{grow:8.1f}x", "<= 11x", grow <= 11)
        add(
            "  ... peak memory (process tree)",
            f"{exp.tree_mib:8.1f} MiB",
            "< 300 MB",
            exp.tree_mib < MIB_300MB,
        )
    unchanged = res.unchanged
    timing(
        "evalport re-export, unchanged",
        unchanged,
        "" if big else "< 0.5 s",
        None if big or unchanged is None else unchanged.wall < 0.5,
    )
    timing("evalport export --no-copy-artifacts, cold", res.summaries)
    timing("nemo-evaluator-launcher 0.2.6 export", res.launcher)
    for tool, wrote in (("evalport", res.evalport_wrote), ("launcher", res.launcher_wrote)):
        if wrote:
            add(f"  ({tool}: {wrote})", "")
    if res.floor_total is not None:
        floor = f"{res.floor_total:9.3f} {res.floor_mib or 0:9.1f}"
        add("libyaml floor (1 process, read + parse)", floor, f"(parse only {res.floor_parse or 0:.3f} s)")
    if res.launcher:
        add(
            "launcher / evalport",
            ratio(res.launcher.wall, exp.wall).rjust(9),
            ">= 10x",
            res.launcher.wall >= 10 * exp.wall,
        )
    if res.launcher and res.summaries:
        add(
            "  ... / evalport, summaries only (as it)",
            ratio(res.launcher.wall, res.summaries.wall).rjust(9),
        )
    if res.floor_total:
        slower = exp.wall / res.floor_total
        add("evalport / libyaml floor", f"{slower:8.2f}x", "<= 2x", slower <= 2)
    return "\n".join(rows)


def summary(res: SizeResult) -> dict[str, object]:
    def t(x: Timing | None) -> dict[str, float] | None:
        return (
            None if x is None else {"median_s": x.wall, "tree_mib": x.tree_mib, "max_rss_mib": x.max_rss_mib}
        )

    return {
        "jobs": res.jobs,
        "export": t(res.export),
        "unchanged": t(res.unchanged),
        "summaries_only": t(res.summaries),
        "launcher": t(res.launcher),
        "libyaml_floor_s": res.floor_total,
        "libyaml_parse_s": res.floor_parse,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[BASELINE_INVOCATIONS], help="invocations (x --tasks)"
    )
    ap.add_argument("--tasks", type=int, default=5, help="tasks per invocation")
    ap.add_argument("--repeat", type=int, default=3, help="runs per evalport line (the launcher: repeat - 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", action="store_true", help="also time nemo-evaluator-launcher 0.2.6")
    ap.add_argument(
        "--keep", nargs="?", const="", default=None, metavar="DIR", help="keep the data and outputs (in DIR)"
    )
    args = ap.parse_args(argv)
    launcher = find_launcher() if args.reference else None
    import evalport

    print(
        f"evalport from {Path(evalport.__file__).parent}; launcher: {launcher or '(not timed: --reference)'}"
    )
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
    keep = args.keep if args.keep else None
    if args.keep == "":
        import tempfile

        keep = tempfile.mkdtemp(prefix="evalport-bench-kept-")
    results: list[SizeResult] = []
    with work_folder(keep, "evalport-bench-") as folder:
        help_run = repeat(lambda _i: ([*evalport_command(), "--help"], dict(os.environ)), 5)
        baseline: SizeResult | None = None
        for n in args.sizes:
            if n > BASELINE_INVOCATIONS and baseline is None:
                baseline = measure(folder, BASELINE_INVOCATIONS, args, None, only_evalport=True)
            res = measure(folder, n, args, launcher)
            if n == BASELINE_INVOCATIONS:
                baseline = res
            results.append(res)
            print(table(res, baseline))
    print(f"\nevalport --help: {help_run.wall:.3f} s median, {help_run.max_rss_mib:.1f} MiB")
    print(f"load average after: {load_average()}")
    print(
        json.dumps(
            {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "sizes": [summary(r) for r in results],
                "baseline": summary(baseline) if baseline is not None else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
