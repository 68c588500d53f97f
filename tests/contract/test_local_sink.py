import json
import math
from pathlib import Path

import pytest

from evalport.adapters.sinks.local import LocalSink
from evalport.domain.model import TaskResult
from evalport.testing import SinkContract
from evalport.testing.sink_contract import StoredRun


def _as_float(value):
    return float(value) if isinstance(value, str) else value


class TestLocalSinkJson(SinkContract):
    fmt = "json"

    @pytest.fixture
    def out_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "exports"

    @pytest.fixture
    def make_sink(self, out_dir):
        return lambda **options: LocalSink({"output_dir": out_dir, "format": self.fmt, **options})

    @pytest.fixture
    def read_back(self):
        def read(sink: LocalSink, result) -> list[StoredRun]:
            summary = sink.summary_path
            rows = self.summary_rows(summary)
            runs = []
            for row in rows:
                if row["job_id"] != result.job_id:
                    continue
                job_dir = sink.output_dir / result.invocation_id / result.job_id
                files = {p.relative_to(job_dir).as_posix() for p in job_dir.rglob("*") if p.is_file()}
                text = "".join(p.read_text(errors="replace") for p in job_dir.rglob("*") if p.is_file())
                runs.append(StoredRun(result.job_id, self.metrics_of(row), files, text + summary.read_text()))
            return runs

        return read

    def summary_rows(self, path: Path) -> list[dict]:
        return json.loads(path.read_text())["runs"]

    def metrics_of(self, row: dict) -> dict[str, float]:
        flat = {k: _as_float(v) for k, v in row["metrics"].items()}
        for name, stats in row["stats"].items():
            flat.update({f"{name}_{s}": _as_float(v) for s, v in stats.items()})
        return flat

    @pytest.fixture
    def refusing_sink(self, tmp_path: Path):
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        return LocalSink({"output_dir": blocker / "exports"})


class TestLocalSinkCsv(TestLocalSinkJson):
    fmt = "csv"

    def summary_rows(self, path: Path) -> list[dict]:
        import csv

        return list(csv.DictReader(path.open()))

    def metrics_of(self, row: dict) -> dict[str, float]:
        skip = {
            "model_id",
            "harness",
            "task",
            "executor",
            "container",
            "invocation_id",
            "job_id",
            "timestamp",
            "timestamp_iso",
            "fingerprint",
        }
        return {k: float(v) for k, v in row.items() if k not in skip and v != ""}

    @staticmethod
    def repeated_means(result: TaskResult) -> set[str]:
        """The ``<name>_mean`` statistics equal to their metric's value, which CSV leaves out."""
        return {f"{m.name}_mean" for m in result.metrics if m.stats.get("mean") == m.value}

    def test_the_metric_filter_is_applied(self, make_sink, read_back, results):
        sink = make_sink(log_metrics=["score_micro", "!stderr"])
        self.export(sink, results)
        for result, _ in results:
            stored = self.only(read_back(sink, result))
            names = [n for n in result.flat_metrics() if n not in self.repeated_means(result)]
            sent = [n for n in names if "score_micro" in n.lower() and "stderr" not in n.lower()]
            assert sorted(n for n in names if n in stored.metrics) == sorted(sent)

    def assert_metrics(self, stored: StoredRun, result: TaskResult) -> None:
        """Every metric and statistic, except a ``mean`` equal to its value: CSV leaves that copy out."""
        copies = self.repeated_means(result)
        assert copies, "the factory writes a mean equal to each value; this check would be empty"
        for name in copies:
            assert name not in stored.metrics, f"{name} repeats its value column"
        kept = {k: v for k, v in result.flat_metrics().items() if k not in copies}
        for name, value in kept.items():
            assert name in stored.metrics, f"metric {name!r} missing"
            if math.isfinite(value):
                assert stored.metrics[name] == pytest.approx(value), name
