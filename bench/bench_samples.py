#!/usr/bin/env python3
"""Times the local sample store: N jobs x M samples through ``LocalSink.export`` (issue 18's target:
100 x 1,000 in under 5 s with peak memory under 300 MB, on this 2-core machine).

Each job is a TaskResult whose ``samples`` accessor streams generated lm-eval-like Sample objects
(a ~300-character prompt, a list of responses, a target, a ``doc`` mapping of metadata, two scores;
one sample in 50 carries a secret to mask), so nothing is held in memory before the sink streams it.
The run is a fresh process per measurement (``--child``), so the peak RSS is the export's own.

    python bench/bench_samples.py                    # 100 jobs x 1,000 samples, median of 3
    python bench/bench_samples.py --jobs 10 --samples 100000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TARGET_SECONDS = 5.0
TARGET_MB = 300.0


def _samples(job: int, count: int) -> Iterator:
    from evalport.domain.samples import Sample

    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "while",
        "a",
        "model",
        "answers",
        "questions",
    ]
    questions = [" ".join(words[(k + n) % len(words)] for n in range(50)) for k in range(len(words))]
    for i in range(count):
        question = questions[i % len(questions)]
        prompt = f"Question {i} of job {job}: {question}?\nAnswer:"
        if i % 50 == 0:
            prompt += " (run with --api-key nvapi-abcdefghijklmnopqrstuvwxyz)"
        answer = str((i * 7 + job) % 10)
        yield Sample(
            id=str(i),
            input=prompt,
            target=answer,
            output=[[answer if i % 3 else "lol"]],
            scores={"exact_match": float(i % 3 != 0), "acc": float(i % 2)},
            metadata={
                "doc": {"id": f"q{i}", "question": question, "choices": ["1", "2", "3"]},
                "filter": "none",
            },
        )


def _results(jobs: int, samples: int) -> list:
    from functools import partial

    from evalport.domain.model import Metric, TaskResult

    out = []
    for j in range(jobs):
        inv = f"{j // 5:016x}"
        out.append(
            TaskResult(
                job_id=f"{inv}.{j % 5}",
                invocation_id=inv,
                task=f"task_{j % 5}",
                harness="lm-evaluation-harness",
                model_id=f"acme/model-{j // 5 % 4}",
                executor="local",
                metrics=(Metric(f"task_{j % 5}_acc", 0.5, {"stderr": 0.01}),),
                samples=partial(_samples, j, samples),
            )
        )
    return out


def child(jobs: int, samples: int, out_dir: Path) -> dict:
    from evalport.adapters.sinks.local import LocalSink
    from evalport.app.service import prepare_item

    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sink = LocalSink({"output_dir": out_dir})
    items = [prepare_item(r, None, sink) for r in _results(jobs, samples)]
    start, cpu = time.perf_counter(), time.process_time()
    outcomes = sink.export(items)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    failed = [o for o in outcomes if not o.status.ok]
    files = list((out_dir / "samples").rglob("*.parquet"))
    return {
        "seconds": seconds,
        "cpu": cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "base_mb": base_mb,
        "failed": len(failed),
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.jobs, args.samples, args.child)))
        return
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--jobs", str(args.jobs), "--samples", str(args.samples)]
            done = subprocess.run(
                [*cmd, "--child", tmp], capture_output=True, text=True, env=os.environ, check=True
            )
            runs.append(json.loads(done.stdout))
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    last = runs[-1]
    total = args.jobs * args.samples
    print(f"local sample store: {args.jobs} jobs x {args.samples:,} samples = {total:,} rows")
    cpu = statistics.median(r["cpu"] for r in runs)
    print(f"  export: {seconds:.2f} s median of {len(runs)} ({total / seconds:,.0f} rows/s), CPU {cpu:.2f} s")
    print(
        f"  load average when done: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work slows it)"
    )
    print(f"  peak RSS: {peak:.0f} MB (interpreter and imports before the export: {last['base_mb']:.0f} MB)")
    print(f"  store: {last['files']} files, {last['bytes'] / 1e6:.1f} MB; failed jobs: {last['failed']}")
    if args.jobs == 100 and args.samples == 1000:
        met = seconds < TARGET_SECONDS and peak < TARGET_MB
        verdict = "met" if met else "NOT met"
        print(f"  target (< {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB): {verdict}")


if __name__ == "__main__":
    main()
