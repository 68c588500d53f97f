#!/usr/bin/env python3
"""Times 200 realistic jobs to MLflow (a sqlite store): evalport against the launcher, same run.

Both tools run as a user runs them, `export <ids> --dest mlflow`, each cold in its own process,
with ``MLFLOW_TRACKING_URI=sqlite:///...``; each into its own fresh store (the schema created
beforehand, not timed, so both time the export and not MLflow's migrations). Then:

- evalport's unchanged re-export into its store;
- the launcher into a store evalport has already written (the same jobs: what a team switching
  tools, or running both, gets);

and the launcher / evalport ratio (target, issue 16: at least 5x; informative).
``bench/bench_mlflow_breakdown.py`` shows where evalport's MLflow time goes, in-process.

    python bench/bench_mlflow.py [--jobs 200] [--repeat 1] [--no-reference] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
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
    work_folder,
)

TASKS = 5
SCHEMA = (
    "import sys; from mlflow import MlflowClient; MlflowClient(sys.argv[1]).search_experiments(max_results=1)"
)
COUNT = (
    "import sys; from mlflow import MlflowClient; c = MlflowClient(sys.argv[1]); "
    "print(sum(len(c.search_runs([e.experiment_id], max_results=50000)) for e in c.search_experiments()))"
)


#: Both tools write the same experiment (``nemo-evaluator-launcher``) and run layout, so the times
#: compare like for like and the launcher's export into evalport's store finds evalport's runs.
SAME_SHAPES = ("--compat", "launcher")


def fresh_store(folder: Path, name: str, python: str) -> str:
    """``sqlite:///<folder>/<name>/mlflow.db`` with MLflow's schema in place (made by ``python``)."""
    (folder / name).mkdir(parents=True)
    uri = f"sqlite:///{folder / name / 'mlflow.db'}"
    subprocess.run([python, "-c", SCHEMA, uri], check=True, capture_output=True, env=child_env(folder))
    return uri


def runs_in(uri: str, folder: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-c", COUNT, uri], check=True, capture_output=True, text=True, env=child_env(folder)
    )
    return int(out.stdout.strip() or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200, help=f"jobs ({TASKS} per invocation)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per line, each into a fresh store")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reference", action="store_true", help="do not time the launcher")
    ap.add_argument("--keep", metavar="DIR", default=None, help="keep the data and the stores in DIR")
    args = ap.parse_args(argv)
    launcher = None if args.no_reference else find_launcher()
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
    evalport = evalport_command()
    rows: list[tuple[str, Timing, str]] = []
    with work_folder(args.keep, "evalport-bench-mlflow-") as folder:
        home, ids, jobs = realistic_home(folder, -(-args.jobs // TASKS), TASKS, seed=args.seed)
        stores = folder / "stores"
        state = folder / "state"
        ours: list[str] = []

        def evalport_cold(i: int) -> tuple[list[str], dict[str, str]]:
            uri = fresh_store(stores, f"evalport-{i}", sys.executable)
            ours.append(uri)
            env = child_env(home, state / str(i), MLFLOW_TRACKING_URI=uri)
            return [*evalport, "export", *ids, "--dest", "mlflow", *SAME_SHAPES], env

        mine = repeat(evalport_cold, args.repeat)
        rows.append((f"evalport -> fresh sqlite ({jobs} jobs)", mine, f"{runs_in(ours[0], folder)} runs"))
        again = repeat(
            lambda _i: (
                [*evalport, "export", *ids, "--dest", "mlflow", *SAME_SHAPES],
                child_env(home, state / "0", MLFLOW_TRACKING_URI=ours[0]),
            ),
            args.repeat,
        )
        rows.append(("evalport re-export, unchanged", again, ""))
        if launcher is not None:
            python = str(launcher.parent / "python")
            theirs: list[str] = []

            def launcher_cold(i: int) -> tuple[list[str], dict[str, str]]:
                uri = fresh_store(stores, f"launcher-{i}", python)
                theirs.append(uri)
                return [str(launcher), "export", *ids, "--dest", "mlflow"], child_env(
                    home, MLFLOW_TRACKING_URI=uri
                )

            # its own folder: the launcher puts a run's artifacts in ./mlruns
            ref = repeat(launcher_cold, args.repeat, cwd=folder)
            rows.append(
                ("nemo-evaluator-launcher 0.2.6 -> fresh sqlite", ref, f"{runs_in(theirs[0], folder)} runs")
            )
            shared = repeat(
                lambda _i: (
                    [str(launcher), "export", *ids, "--dest", "mlflow"],
                    child_env(home, MLFLOW_TRACKING_URI=ours[0]),
                ),
                1,
                cwd=folder,
            )
            rows.append(
                ("launcher -> evalport's store (both write)", shared, f"{runs_in(ours[0], folder)} runs now")
            )
    print(f"\n{'what (cold, each in a subprocess)':48} {'median s':>9} {'tree MiB':>9}")
    for what, t, note in rows:
        failed = f" [{t.failed} of {t.runs} failed]" if t.failed else ""
        print(f"{what + failed:48} {t.wall:9.3f} {t.tree_mib:9.1f}  {note}")
    if launcher is not None:
        met = verdict(ref.wall >= 5 * mine.wall)
        print(f"{'launcher / evalport (fresh stores)':48} {ratio(ref.wall, mine.wall):>9}  >= 5x {met}")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
