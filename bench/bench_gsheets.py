"""Requests and time for exporting 100 jobs to Google Sheets: into an empty sheet and into 2,000 rows.

Runs the real gspread against the in-memory fake Sheets server from tests/support (imported by
path; no network). Usage::

    python bench/bench_gsheets.py [--jobs 100] [--rows 2000]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from evalport.adapters.formats.nemo_evaluator import read_task_result
from evalport.adapters.sinks.gsheets import GsheetsSink
from evalport.adapters.sinks.gsheets.layout import BASE_COLUMNS
from evalport.adapters.sources.local import LocalSource
from evalport.app.service import prepare_item
from evalport.testing.factory import write_launcher_home

SERVER_FILE = Path(__file__).resolve().parents[1] / "tests" / "support" / "sheets_server.py"


def load_fake_server() -> type:
    spec = importlib.util.spec_from_file_location("evalport_bench_sheets_server", SERVER_FILE)
    assert spec and spec.loader, SERVER_FILE
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.FakeSheetsServer


def old_rows(count: int) -> list[list[object]]:
    header = [*BASE_COLUMNS, "old_metric"]
    return [header] + [
        ["m", "h", "t", "local", "", f"old{i:05d}", f"old{i:05d}.0", i / 7] for i in range(count)
    ]


def api_name(method: str, path: str) -> str:
    """``GET /v4/spreadsheets/ID/values:batchGet`` -> ``values:batchGet``."""
    tail = path.rsplit("/", 1)[-1]
    if ":" in tail:
        return tail if tail.startswith("values") else tail[tail.rindex(":") :]
    return "spreadsheets.get" if method == "GET" else f"{method} {tail}"


def run(server, key_file: Path, items, spreadsheet_id: str, label: str) -> None:
    sink = GsheetsSink(
        {"spreadsheet_id": spreadsheet_id, "service_account_file": key_file, "endpoint": server.url}
    )
    sink.api()  # credentials loaded outside the timing; the token is fetched on the first request
    server.reset_requests()
    started = time.perf_counter()
    outcomes = sink.export(items)
    seconds = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[o.status.value] = statuses.get(o.status.value, 0) + 1
    kinds = ", ".join(api_name(r.method, r.path) for r in server.requests)
    rows, cols = server.grid_size(spreadsheet_id)
    print(
        f"{label:<34} {len(server.requests):>3} requests  {seconds * 1000:7.1f} ms  {statuses}  "
        f"grid {rows}x{cols}"
    )
    print(f"{'':<34} [{kinds}]")
    sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args(argv)
    fake_server = load_fake_server()
    with tempfile.TemporaryDirectory(prefix="evalport-bench-") as tmp, fake_server() as server:
        root = Path(tmp)
        key_file = server.write_service_account_file(root / "sa.json")
        per_inv = 5
        home = write_launcher_home(
            root / "launcher", invocations=-(-args.jobs // per_inv), tasks_per_invocation=per_inv, seed=1
        )
        source = LocalSource(home.exec_db)
        jobs = sorted(source.list_jobs(), key=lambda j: j.job_id)[: args.jobs]
        probe = GsheetsSink({"spreadsheet_id": "x", "service_account_file": key_file, "endpoint": server.url})
        items = [
            prepare_item(read_task_result(j, Path(j.location.path)), Path(j.location.path), probe)
            for j in jobs
        ]
        print(f"exporting {len(items)} jobs (gspread against a fake Sheets server on {server.url})")

        empty = server.create_spreadsheet("bench-empty")
        run(server, key_file, items, empty, "empty sheet")
        run(server, key_file, items, empty, "same jobs again (unchanged)")

        full = server.create_spreadsheet(
            "bench-full", rows=args.rows + 1, cols=26, values=old_rows(args.rows)
        )
        run(server, key_file, items, full, f"sheet holding {args.rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
