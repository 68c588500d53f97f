#!/usr/bin/env python3
"""Times reading other harnesses' output at scale (issue 17): aggregates only, per-sample files unread.

The data is made from the real example outputs in tests/data/harnesses, multiplied:

- **lm-eval**: ``--count`` output folders, each an ``--output_path`` holding one model subfolder with
  one ``results_<stamp>.json`` (the example's 4 tasks, its ``date`` changed so every folder is its
  own invocation) and a ``samples_<task>_<stamp>.jsonl`` per leaf task of ``--samples`` rows;
- **Inspect**: one log folder of ``--count`` ``.eval`` logs and one of ``--count`` ``.json`` logs,
  each with ``--samples`` samples, written by inspect_ai (see :func:`inspect_logs`).

For each it prints the in-process time of detecting and reading every folder (what ``--job-dir``
costs an export before anything is sent, interpreter start-up excluded) and the wall time of a cold
``evalport ls --json --job-dir <root>`` subprocess (the folder holding the lm-eval folders, or the
Inspect log folder). Target (issue 17): under 3 s for 1,000.

    python bench/bench_readers.py [--count 1000] [--samples 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, child_env, evalport_command, load_average, run_timed, verdict, work_folder

TARGET_S = 3.0
EXAMPLES = REPO / "tests" / "data" / "harnesses"


def lm_eval_folders(root: Path, count: int, samples: int) -> list[Path]:
    example = EXAMPLES / "lm_eval" / "run-suite"
    (results_file,) = example.glob("results_*.json")
    doc = json.loads(results_file.read_text())
    stamp = results_file.name[len("results_") : -len(".json")]
    rows = {
        p.name: [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        for p in example.glob("samples_*.jsonl")
    }
    folders = []
    for i in range(count):
        folder = root / f"run-{i:05d}"
        model_dir = folder / f"acme__model-{i % 8}"
        model_dir.mkdir(parents=True)
        doc["date"] = 1_790_000_000 + i
        doc["model_name"] = f"acme/model-{i % 8}"
        (model_dir / results_file.name).write_text(json.dumps(doc))
        for name, lines in rows.items():
            with (model_dir / name).open("w") as out:
                for n in range(samples):
                    row = dict(lines[n % len(lines)], doc_id=n)
                    out.write(json.dumps(row) + "\n")
        folders.append(folder)
    assert stamp
    return folders


def inspect_logs(root: Path, count: int, samples: int, fmt: str, distinct: int = 50) -> Path:
    """``count`` Inspect logs in one folder, written by inspect_ai itself (``write_eval_log``): the
    example log with ``samples`` samples, as ``distinct`` evals (their own ``eval_id``) each copied
    byte for byte under other file names (a copy of a log is the same eval, so the same job id)."""
    from inspect_ai.log import read_eval_log, write_eval_log

    example = next((EXAMPLES / "inspect").glob("*.eval"))
    log = read_eval_log(str(example))
    originals = list(log.samples or [])
    log.samples = [originals[n % len(originals)].model_copy(update={"id": f"s{n}"}) for n in range(samples)]
    folder = root / f"inspect-{fmt}"
    folder.mkdir(parents=True)
    written: list[Path] = []
    for i in range(count):
        name = f"2026-12-02T00-{i // 60 % 60:02d}-{i % 60:02d}-00-00_tiny-qa_bench{i:06d}.{fmt}"
        if i < distinct:
            log.eval.eval_id = f"bench-{fmt}-{i}"
            write_eval_log(log, str(folder / name), format=fmt)
            written.append(folder / name)
        else:
            (folder / name).write_bytes(written[i % distinct].read_bytes())
    return folder


def read_in_process(folders: list[Path]) -> tuple[float, int]:
    from evalport.adapters.formats.detect import detect, reader

    start = time.perf_counter()
    results = 0
    for folder in folders:
        results += len(reader(detect(folder)).read(folder))
    return time.perf_counter() - start, results


def cold_ls(folders: list[Path], home: Path) -> float:
    """``evalport ls --job-dir <the folders' parent>``: a root of many runs, as a user gives it."""
    (root,) = {folder.parent for folder in folders} if len(folders) > 1 else {folders[0]}
    cmd = [*evalport_command(), "ls", "--json", "--exec-db", str(home / "none.jsonl"), "--job-dir", str(root)]
    run = run_timed(cmd, child_env(home))
    return run.wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--keep", help="write the data here and keep it")
    args = parser.parse_args()
    print(f"load average before: {load_average()}")
    summary: dict[str, dict[str, float]] = {}
    with work_folder(args.keep, "evalport-bench-readers-") as root:
        home = root / "home"
        home.mkdir(exist_ok=True)
        cases = {
            "lm-eval folders": lm_eval_folders(root / "lm-eval", args.count, args.samples),
            "Inspect .eval logs": [inspect_logs(root, args.count, args.samples, "eval")],
            "Inspect .json logs": [inspect_logs(root, args.count, args.samples, "json")],
        }
        print(f"{'case':<22} {'results':>8} {'read (in-process)':>18} {'evalport ls (cold)':>19}  target")
        for case, folders in cases.items():
            seconds, results = read_in_process(folders)
            wall = cold_ls(folders, home)
            met = max(seconds, wall) < TARGET_S
            print(
                f"{case:<22} {results:>8} {seconds:>17.2f}s {wall:>18.2f}s  <{TARGET_S:g} s: {verdict(met)}"
            )
            summary[case] = {"results": results, "read_s": round(seconds, 3), "ls_s": round(wall, 3)}
    print(f"load average after: {load_average()}")
    print(json.dumps({"count": args.count, "samples": args.samples, **summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
