#!/usr/bin/env python3
"""What per-sample export costs on MLflow (``samples: table`` and ``traces``) and W&B (``table``).

In-process, on launcher jobs (``write_launcher_home``) each given ``--samples`` synthetic samples
(a 300-character prompt, a 100-character answer, two scores, small metadata): per destination and
mode, the time of a first export of ``--jobs`` jobs, the same without samples (``none``), and the
difference per 1,000 samples; then the re-export of the same jobs with changed samples (the
replacement: table file overwritten, traces deleted and written again). MLflow on a fresh sqlite
store, or with ``--server`` on a local ``mlflow server`` (sqlite behind it, HTTP in between, as a
team server); W&B offline.

    python bench/bench_samples_remote.py [--jobs 10] [--samples 1000] [--server] [--no-wandb]
    python bench/bench_samples_remote.py --jobs 100 --modes table     # issue 18's 100 x 1,000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.mlflow_server

from evalport.app.service import prepare_item
from evalport.domain.samples import Sample
from evalport.testing.factory import write_launcher_home
from evalport.testing.sink_contract import _load as load_results

PROMPT = "Question: " + "lorem ipsum dolor sit amet " * 11
ANSWER = "The answer is " + "x" * 86


def synthetic(count: int, variant: int) -> Callable[[], Iterator[Sample]]:
    def stream() -> Iterator[Sample]:
        for i in range(count):
            yield Sample(
                id=str(i),
                input=f"{PROMPT} #{i}",
                target=str(i % 7),
                output=f"{ANSWER} {(i + variant) % 7}",
                scores={"acc": float((i + variant) % 2), "exact_match": float(i % 3 == 0)},
                metadata={"doc_id": i, "variant": variant},
            )

    return stream


def jobs(folder: Path, count: int, samples: int, variant: int) -> list:
    home = write_launcher_home(
        folder, invocations=max(1, count // 5), tasks_per_invocation=min(5, count), seed=3
    )
    return [(replace(r, samples=synthetic(samples, variant)), d) for r, d in load_results(home)[:count]]


def timed(sink, pairs) -> float:
    items = [prepare_item(r, d, sink) for r, d in pairs]
    started = time.perf_counter()
    outcomes = sink.export(items)
    elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if o.status.value == "failed"]
    if failed:
        raise SystemExit(f"export failed: {failed[0].reason}")
    return elapsed


def line(label: str, seconds: float, base: float | None, samples: int) -> str:
    extra = ""
    if base is not None and samples:
        extra = f"   +{(seconds - base) / samples * 1000:.2f} s per 1,000 samples"
    return f"  {label:<34} {seconds:7.2f} s{extra}"


def bench_mlflow(
    uri_of: Callable[[str], str], pairs_first, pairs_changed, samples: int, modes: list[str]
) -> None:
    from mlflow import MlflowClient

    from evalport.adapters.sinks.mlflow import MlflowSink

    print("MLflow:")
    base = None
    for mode in ["none", *modes]:
        uri = uri_of(mode)
        MlflowClient(uri).search_experiments(max_results=1)  # the store's schema, not timed
        sink = MlflowSink({"tracking_uri": uri, "experiment_name": f"bench-{mode}", "samples": mode})
        first = timed(sink, pairs_first)
        base = first if mode == "none" else base
        print(line(f"{mode}: first export", first, None if mode == "none" else base, samples))
        if mode != "none":
            again = timed(sink, pairs_changed)
            print(line(f"{mode}: re-export, samples changed", again, base, samples))


def bench_wandb(root: Path, pairs_first, pairs_changed, samples: int) -> None:
    from evalport.adapters.sinks.wandb_sink import WandbSink

    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_BASE_URL="http://127.0.0.1:9")
    print("W&B (offline):")
    base = None
    for mode in ("none", "table"):
        sink = WandbSink({"dir": root / mode, "samples": mode})
        first = timed(sink, pairs_first)
        base = first if mode == "none" else base
        print(line(f"{mode}: first export", first, None if mode == "none" else base, samples))
        if mode != "none":
            print(line(f"{mode}: re-export, samples changed", timed(sink, pairs_changed), base, samples))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument("--samples", type=int, default=1000, help="samples per job")
    ap.add_argument("--server", action="store_true", help="MLflow through a local mlflow server")
    ap.add_argument("--no-wandb", action="store_true")
    ap.add_argument("--modes", nargs="+", default=["table", "traces"], choices=["table", "traces"])
    args = ap.parse_args(argv)
    total = args.jobs * args.samples
    print(f"{args.jobs} jobs x {args.samples:,} samples = {total:,} samples; load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-samples-") as tmp:
        root = Path(tmp)
        first = jobs(root / "home", args.jobs, args.samples, 0)
        changed = [(replace(r, samples=synthetic(args.samples, 1)), d) for r, d in first]
        if args.server:
            from tests.support.mlflow_server import MlflowServer

            with MlflowServer(root / "server") as server:
                bench_mlflow(lambda mode: server.url, first, changed, total, args.modes)
        else:

            def sqlite(mode: str) -> str:
                (root / mode).mkdir()
                return f"sqlite:///{root / mode / 'mlflow.db'}"

            bench_mlflow(sqlite, first, changed, total, args.modes)
        if not args.no_wandb:
            bench_wandb(root / "wandb", first, changed, total)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
