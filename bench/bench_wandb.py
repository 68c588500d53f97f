"""Benchmark: 50 jobs into offline W&B runs in one process (per_task: one run each).

Prints the first run (wandb import + service start), the per-run time after it, with and without
artifacts, and a re-export of the unchanged jobs. Run: ``python bench/bench_wandb.py [--jobs 50]``.
Everything (launcher data, W&B folders) goes to a temporary folder; nothing touches the network.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _offline_env(root: Path) -> None:
    os.environ.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_ERROR_REPORTING="false",
        WANDB_BASE_URL="http://127.0.0.1:9",
    )
    os.environ.pop("WANDB_API_KEY", None)
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        folder = root / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()

    from evalport.adapters.formats.nemo_evaluator import read_task_result
    from evalport.adapters.sinks.wandb import WandbSink
    from evalport.adapters.sources.local import LocalSource
    from evalport.app.service import prepare_item
    from evalport.testing.factory import write_launcher_home

    with tempfile.TemporaryDirectory(prefix="bench-wandb-") as tmp:
        root = Path(tmp)
        _offline_env(root)
        per_inv = 5
        home = write_launcher_home(
            root / "launcher", invocations=-(-args.jobs // per_inv), tasks_per_invocation=per_inv, seed=1
        )
        source = LocalSource(home.exec_db)
        jobs = sorted(source.list_jobs(), key=lambda j: j.job_id)[: args.jobs]
        results = [(read_task_result(j, Path(j.location.path)), Path(j.location.path)) for j in jobs]

        def run(label: str, **options: object) -> None:
            sink = WandbSink({"dir": root / label, **options})
            items = [prepare_item(r, d, sink) for r, d in results]
            started = time.perf_counter()
            first = sink.export(items[:1])
            t_first = time.perf_counter() - started
            started = time.perf_counter()
            rest = sink.export(items[1:])
            t_rest = time.perf_counter() - started
            started = time.perf_counter()
            again = sink.export(items)
            t_again = time.perf_counter() - started
            # multi_task: a later task of an invocation whose run exists appends to it ("updated").
            failed = [o for o in first + rest if o.status.value not in ("exported", "updated")]
            assert not failed, failed[:3]
            assert {o.status.value for o in again} == {"unchanged"}
            n = len(items) - 1
            print(
                f"{label:22} first run {t_first:6.3f} s | next {n} jobs {t_rest:6.3f} s = "
                f"{t_rest / max(n, 1) * 1000:6.1f} ms/job | total {t_first + t_rest:6.3f} s | "
                f"unchanged re-export of {len(items)}: {t_again:6.3f} s"
            )

        print(f"{len(results)} jobs, wandb offline, one process")
        run("with-artifacts", copy_artifacts=True)
        run("metrics-only", copy_artifacts=False)
        run("multi_task", log_mode="multi_task")


if __name__ == "__main__":
    main()
