"""Where the MLflow sink's time goes, in-process: 50 jobs (10 x 5) into sqlite and a local server.

Prints, per backend: creating the store (sqlite's schema migrations; the server's store exists
once it answers), the export of every job with its required artifacts, the per-job time, and an
unchanged re-export. Run from the repository root: ``python bench/bench_mlflow_breakdown.py [--jobs 50]``
(``bench/bench_mlflow.py`` times the same export against the launcher, as a user runs both).
Everything goes to a temporary folder; the server binds 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.mlflow_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--no-server", action="store_true", help="only the sqlite store")
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        del os.environ[name]

    from evalport.adapters.formats.nemo_evaluator import read_task_result
    from evalport.adapters.sinks.mlflow import MlflowSink
    from evalport.adapters.sources.local import LocalSource
    from evalport.app.service import prepare_item
    from evalport.testing.factory import write_launcher_home

    started = time.perf_counter()
    import mlflow  # noqa: F401  (the import is paid once per process; shown on its own)

    t_import = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        root = Path(tmp)
        per_inv = 5
        home = write_launcher_home(
            root / "launcher", invocations=-(-args.jobs // per_inv), tasks_per_invocation=per_inv, seed=1
        )
        jobs = sorted(LocalSource(home.exec_db).list_jobs(), key=lambda j: j.job_id)[: args.jobs]
        results = [(read_task_result(j, Path(j.location.path)), Path(j.location.path)) for j in jobs]
        print(f"{len(results)} jobs; import mlflow {t_import:.3f} s (once per process, not counted below)")

        def run(label: str, uri: str, prepare: float = 0.0, **options: object) -> None:
            sink = MlflowSink({"tracking_uri": uri, **options})
            items = [prepare_item(r, d, sink) for r, d in results]
            started = time.perf_counter()
            outcomes = sink.export(items)
            t_export = time.perf_counter() - started
            bad = [o for o in outcomes if o.status.value not in ("exported", "updated")]
            assert not bad, bad[:3]
            started = time.perf_counter()
            again = MlflowSink({"tracking_uri": uri, **options}).export(items)
            t_again = time.perf_counter() - started
            assert {o.status.value for o in again} == {"unchanged"}, again[:3]
            n = len(items)
            store = f"store {prepare:5.3f} s + " if prepare else ""
            print(
                f"{label:28} {store}export {t_export:6.3f} s = {t_export / n * 1000:5.1f} ms/job "
                f"(total {prepare + t_export:6.3f} s) | unchanged re-export {t_again:6.3f} s"
            )

        def fresh_sqlite(name: str) -> tuple[str, float]:
            from mlflow import MlflowClient

            uri = f"sqlite:///{root / name / 'mlflow.db'}"
            (root / name).mkdir()
            started = time.perf_counter()
            MlflowClient(uri).search_experiments(max_results=1)  # creates the schema
            return uri, time.perf_counter() - started

        uri, t_store = fresh_sqlite("sqlite")
        run("sqlite, per_task", uri, t_store)
        uri, t_store = fresh_sqlite("sqlite-multi")
        run("sqlite, multi_task", uri, t_store, log_mode="multi_task")
        uri, t_store = fresh_sqlite("sqlite-noart")
        run("sqlite, metrics only", uri, t_store, copy_artifacts=False)
        if args.no_server:
            return
        from tests.support.mlflow_server import MlflowServer

        started = time.perf_counter()
        with MlflowServer(root / "server") as server:
            print(f"(mlflow server started in {time.perf_counter() - started:.1f} s, not counted)")
            run("server, per_task", server.url)
            run("server, multi_task", server.url, experiment_name="multi", log_mode="multi_task")
            run("server, metrics only", server.url, experiment_name="noart", copy_artifacts=False)


if __name__ == "__main__":
    main()
