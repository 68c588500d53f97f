"""Benchmark: a comparison report over 500 jobs of 20 models (HTML must stay under 5 MB).

    python bench/bench_report.py [--jobs 500] [--models 20] [--keep DIR]

Prints the time to read the results, to build the matrix, to render each format, the whole
``evalport report`` command, and the size of each report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from evalport.adapters.report import render
from evalport.app.cli import main
from evalport.app.container import build_container
from evalport.domain.comparison import build_comparison
from evalport.testing.factory import write_launcher_home

LIMIT_BYTES = 5 * 1024 * 1024
TASKS_PER_INVOCATION = 5


def timed(label: str, fn):
    start = time.perf_counter()
    value = fn()
    print(f"{label:28} {time.perf_counter() - start:7.2f} s")
    return value


def run(root: Path, jobs: int, n_models: int) -> int:
    models = [f"org{i % 4}/model-{i:02d}-{'instruct' if i % 2 else 'base'}" for i in range(n_models)]
    home = timed(
        "write launcher home",
        lambda: write_launcher_home(
            root / "launcher",
            invocations=jobs // TASKS_PER_INVOCATION,
            tasks_per_invocation=TASKS_PER_INVOCATION,
            models=models,
            log_lines=2,
            secrets=False,
        ),
    )
    ids = home.invocation_ids
    service = build_container(exec_db=str(home.exec_db), job_dirs=[]).service()
    results, problems = timed("read results", lambda: service.read_results(ids))
    assert not problems.problems, problems.problems
    comparison = timed("build comparison", lambda: build_comparison(results, baseline=models[0]))
    html = timed(
        f"render html ({len(comparison.tasks)} charts)", lambda: render(comparison, "html", title="bench")
    )
    md = timed("render markdown", lambda: render(comparison, "md", title="bench"))
    out = root / "report.html"
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        code = main(["report", *ids, "--exec-db", str(home.exec_db), "--output", str(out)])
        total = time.perf_counter() - start
    print(f"{'evalport report (in-process)':28} {total:7.2f} s  exit {code}")
    size = out.stat().st_size
    print(
        f"jobs {len(results)}, models {len(comparison.models)}, tasks {len(comparison.tasks)}; "
        f"html {size / 1024:.0f} KiB (rendered {len(html.encode()) / 1024:.0f} KiB), "
        f"markdown {len(md.encode()) / 1024:.1f} KiB"
    )
    ok = code == 0 and size < LIMIT_BYTES and len(results) == jobs
    print("OK" if ok else "FAILED: expected exit 0, every job, and an HTML report under 5 MB")
    return 0 if ok else 1


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="write the data and report here (kept)")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args.keep, args.jobs, args.models)
    with tempfile.TemporaryDirectory(prefix="evalport-bench-report-") as tmp:
        return run(Path(tmp), args.jobs, args.models)


if __name__ == "__main__":
    sys.exit(cli())
