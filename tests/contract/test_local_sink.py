import json
import math
from pathlib import Path

import pytest

from evalport.adapters.sinks.local import LocalSink
from evalport.domain.model import TaskResult
from evalport.domain.report import Status
from evalport.testing import SinkContract
from evalport.testing.sink_contract import StoredRun
from tests.support.sample_store import stored_samples


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

    @pytest.fixture
    def read_samples(self, out_dir):
        pytest.importorskip("duckdb")
        return lambda sink, result: stored_samples(out_dir, result.job_id)

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


# ---- compat: launcher (nemo-evaluator-launcher 0.2.6's processed_results files) -------------------

LAUNCHER_BASE = [
    "Model Name",
    "Harness",
    "Task Name",
    "Executor",
    "Container",
    "Invocation ID",
    "Job ID",
    "Results Dir",
]


def launcher_entries(path: Path) -> dict[str, tuple[str, str, dict]]:
    """job id -> (task, model, entry) of a launcher JSON summary; a job found twice fails."""
    out: dict[str, tuple[str, str, dict]] = {}
    for task, block in json.loads(path.read_text())["benchmarks"].items():
        for model, entries in block["models"].items():
            for entry in entries:
                assert entry["job_id"] not in out, f"{entry['job_id']} is in {path} twice"
                out[entry["job_id"]] = (task, model, entry)
    return out


def launcher_rows(path: Path) -> dict[str, dict[str, str]]:
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [r["Job ID"] for r in rows]
    assert len(ids) == len(set(ids)), f"a job is in {path} twice: {ids}"
    return {r["Job ID"]: r for r in rows}


class TestLocalSinkLauncherJson(TestLocalSinkJson):
    """The whole sink contract holds for the launcher's files too."""

    fmt = "json"

    @pytest.fixture
    def make_sink(self, out_dir):
        return lambda **options: LocalSink(
            {"output_dir": out_dir, "format": self.fmt, "compat": "launcher", **options}
        )

    @pytest.fixture
    def read_back(self):
        def read(sink: LocalSink, result) -> list[StoredRun]:
            job_dir = sink.output_dir / result.invocation_id / result.job_id
            own = job_dir / f"processed_results.{self.fmt}"
            if not own.is_file():
                return []
            runs = self.launcher_runs(own, result.job_id)
            files = {p.relative_to(job_dir).as_posix() for p in job_dir.rglob("*") if p.is_file()}
            text = "".join(p.read_text(errors="replace") for p in sink.output_dir.rglob("*") if p.is_file())
            return [StoredRun(result.job_id, metrics, files, text) for metrics in runs]

        return read

    def launcher_runs(self, path: Path, job_id: str) -> list[dict[str, float]]:
        found = launcher_entries(path)
        return [found[job_id][2]["scores"]] if job_id in found else []


class TestLocalSinkLauncherCsv(TestLocalSinkLauncherJson):
    fmt = "csv"

    def launcher_runs(self, path: Path, job_id: str) -> list[dict[str, float]]:
        row = launcher_rows(path).get(job_id)
        if row is None:
            return []
        return [{k: float(v) for k, v in row.items() if k not in LAUNCHER_BASE and v != ""}]


def a_result(job_id: str = "inv1.0", *, value: float = 0.75, **fields) -> TaskResult:
    from evalport.domain.model import Metric

    base = {
        "invocation_id": job_id.split(".")[0],
        "task": "gsm8k",
        "harness": "lm-evaluation-harness",
        "model_id": "meta/llama-3.1-8b-instruct",
        "executor": "local",
        "container": "client-gsm8k-0",
        "timestamp": 1712345678.5,
        "metrics": (Metric("gsm8k_exact_match", value, {"stderr": 0.01}), Metric("gsm8k_delta", -0.5)),
    }
    base.update(fields)
    return TaskResult(job_id=job_id, **base)


def launcher_sink(out: Path, fmt: str = "json", **options) -> LocalSink:
    return LocalSink({"output_dir": out, "format": fmt, "compat": "launcher", **options})


def export_to(sink: LocalSink, *results: TaskResult, directory: Path | None = None):
    from evalport.domain.ports import ExportItem

    return sink.export([ExportItem(r, directory) for r in results])


def test_launcher_json_files_hold_the_launchers_entries_per_job_and_combined(tmp_path):
    out = tmp_path / "out"
    results = [a_result("inv1.0"), a_result("inv1.1", task="mmlu"), a_result("inv2.0", model_id="m2")]
    outcomes = export_to(launcher_sink(out), *results, directory=tmp_path / "job")
    assert [o.status for o in outcomes] == [Status.EXPORTED] * 3
    combined = json.loads((out / "processed_results.json").read_text())
    assert list(combined) == ["benchmarks", "export_timestamp"]
    assert sorted(combined["benchmarks"]) == ["gsm8k", "mmlu"]
    assert sorted(combined["benchmarks"]["gsm8k"]["models"]) == ["m2", "meta/llama-3.1-8b-instruct"]
    entries = launcher_entries(out / "processed_results.json")
    for result in results:
        task, model, entry = entries[result.job_id]
        assert (task, model) == (result.task, result.model_id)
        assert list(entry) == [
            "invocation_id",
            "job_id",
            "harness",
            "container",
            "scores",
            "timestamp",
            "executor",
            "results_dir",
        ]
        assert entry["scores"] == result.flat_metrics()
        assert entry["results_dir"] == str(tmp_path / "job")
        own = launcher_entries(out / result.invocation_id / result.job_id / "processed_results.json")
        assert own == {result.job_id: entries[result.job_id]}
    assert not (out / "results.json").exists() and not (out / "inv1" / "inv1.0" / "result.json").exists()


def test_a_single_job_export_writes_no_combined_file_as_the_launcher_does(tmp_path):
    out = tmp_path / "out"
    export_to(launcher_sink(out), a_result("inv1.0"))
    assert (out / "inv1" / "inv1.0" / "processed_results.json").is_file()
    assert not (out / "processed_results.json").exists()


def test_once_the_combined_file_exists_a_single_job_export_keeps_it_current(tmp_path):
    out = tmp_path / "out"
    export_to(launcher_sink(out), a_result("inv1.0"), a_result("inv1.1"))
    export_to(launcher_sink(out), a_result("inv2.0"))
    assert sorted(launcher_entries(out / "processed_results.json")) == ["inv1.0", "inv1.1", "inv2.0"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_re_evaluated_job_replaces_its_entry_where_the_launcher_keeps_the_stale_one(tmp_path, fmt):
    out = tmp_path / "out"
    export_to(launcher_sink(out, fmt), a_result("inv1.0"), a_result("inv1.1"))
    outcome = export_to(launcher_sink(out, fmt), a_result("inv1.0", value=0.5))[0]
    assert outcome.status is Status.UPDATED
    for path in (out / f"processed_results.{fmt}", out / "inv1" / "inv1.0" / f"processed_results.{fmt}"):
        if fmt == "json":
            found = {k: v[2]["scores"]["gsm8k_exact_match"] for k, v in launcher_entries(path).items()}
        else:
            found = {k: float(r["gsm8k_exact_match"]) for k, r in launcher_rows(path).items()}
        assert found["inv1.0"] == 0.5
        if path.parent == out:
            assert found == {"inv1.0": 0.5, "inv1.1": 0.75}


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_an_unchanged_re_export_rewrites_nothing_and_says_unchanged(tmp_path, fmt):
    out = tmp_path / "out"
    results = [a_result("inv1.0"), a_result("inv1.1")]
    export_to(launcher_sink(out, fmt), *results)
    files = [out / f"processed_results.{fmt}", out / "inv1" / "inv1.0" / f"processed_results.{fmt}"]
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in files]
    outcomes = export_to(launcher_sink(out, fmt), *results)
    assert [o.status for o in outcomes] == [Status.UNCHANGED] * 2
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in files] == before


def test_a_job_that_moved_to_another_task_and_model_is_in_the_file_once(tmp_path):
    out = tmp_path / "out"
    export_to(launcher_sink(out), a_result("inv1.0"), a_result("inv1.1"))
    export_to(launcher_sink(out), a_result("inv1.0", task="mmlu", model_id="m2"))
    entries = launcher_entries(out / "processed_results.json")
    assert entries["inv1.0"][:2] == ("mmlu", "m2") and entries["inv1.1"][:2] == (
        "gsm8k",
        entries["inv1.1"][1],
    )
    doc = json.loads((out / "processed_results.json").read_text())
    assert "m2" not in doc["benchmarks"]["gsm8k"]["models"]


def test_what_the_launcher_wrote_for_other_jobs_is_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    theirs = {
        "invocation_id": "old",
        "job_id": "old.0",
        "harness": "h",
        "container": None,
        "scores": {"gsm8k_exact_match": 0.1},
        "timestamp": 1.0,
        "executor": "slurm",
        "results_dir": "host:/x",
    }
    doc = {
        "benchmarks": {"gsm8k": {"models": {"meta/llama-3.1-8b-instruct": [theirs]}}},
        "export_timestamp": "t",
    }
    (out / "processed_results.json").write_text(json.dumps(doc, indent=2))
    (out / "processed_results.csv").write_text(
        ",".join([*LAUNCHER_BASE, "gsm8k_exact_match", "zz_extra"])
        + "\r\nm,h,gsm8k,slurm,,old,old.0,host:/x,0.1,7\r\n"
    )
    export_to(launcher_sink(out), a_result("inv1.0"))
    entries = launcher_entries(out / "processed_results.json")
    assert entries["old.0"][2] == theirs and "inv1.0" in entries
    assert json.loads((out / "processed_results.json").read_text())["export_timestamp"] != "t"
    export_to(launcher_sink(out, "csv"), a_result("inv1.0"))
    rows = launcher_rows(out / "processed_results.csv")
    assert rows["old.0"]["zz_extra"] == "7" and rows["inv1.0"]["zz_extra"] == ""
    header = (out / "processed_results.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == LAUNCHER_BASE and header[8:] == sorted(header[8:])


def test_a_combined_file_that_is_not_json_fails_its_jobs_and_is_left_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "processed_results.json").write_text("{not json")
    outcomes = export_to(launcher_sink(out), a_result("inv1.0"), a_result("inv1.1"))
    assert {o.status for o in outcomes} == {Status.FAILED}
    assert "processed_results.json" in outcomes[0].reason and "move it aside" in outcomes[0].reason
    assert (out / "processed_results.json").read_text() == "{not json"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_the_launcher_csv_header_is_its_base_columns_then_every_score_sorted(tmp_path):
    out = tmp_path / "out"
    export_to(launcher_sink(out, "csv"), a_result("inv1.0"), a_result("inv1.1", task="zeta"))
    raw = (out / "processed_results.csv").read_bytes()
    assert b"\r\n" in raw, "the launcher's csv dialect ends lines with CRLF"
    header = raw.decode().splitlines()[0].split(",")
    assert header == [*LAUNCHER_BASE, "gsm8k_delta", "gsm8k_exact_match", "gsm8k_exact_match_stderr"]
    row = launcher_rows(out / "processed_results.csv")["inv1.1"]
    assert row["Task Name"] == "zeta" and row["Model Name"] == "meta/llama-3.1-8b-instruct"


def test_a_model_id_a_spreadsheet_would_run_is_text_and_the_re_export_finds_its_row(tmp_path):
    out = tmp_path / "out"
    formula = "=HYPERLINK(1)"
    for _ in range(2):
        export_to(launcher_sink(out, "csv"), a_result("inv1.0", model_id=formula), a_result("inv1.1"))
    rows = launcher_rows(out / "processed_results.csv")
    assert sorted(rows) == ["inv1.0", "inv1.1"] and rows["inv1.0"]["Model Name"] == "'" + formula


def test_output_filename_names_the_per_job_and_the_combined_file_as_the_launchers_does(tmp_path):
    out = tmp_path / "out"
    export_to(launcher_sink(out, output_filename="mine.json"), a_result("inv1.0"), a_result("inv1.1"))
    assert (out / "mine.json").is_file() and (out / "inv1" / "inv1.0" / "mine.json").is_file()


def test_html_and_md_reports_keep_evalports_files_with_compat_launcher(tmp_path):
    out = tmp_path / "out"
    export_to(launcher_sink(out, "md"), a_result("inv1.0"), a_result("inv1.1"))
    assert (out / "report.md").is_file() and (out / "results.json").is_file()
    assert not list(out.rglob("processed_results.*"))


def test_a_job_staged_from_another_host_has_no_results_dir_rather_than_a_temp_path(tmp_path):
    out = tmp_path / "out"
    staged = tmp_path / "evalport-stage-abc" / "staged" / "inv1.0"
    export_to(launcher_sink(out), a_result("inv1.0"), directory=staged)
    (_, _, entry) = launcher_entries(out / "inv1" / "inv1.0" / "processed_results.json")["inv1.0"]
    assert entry["results_dir"] is None


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_still_holds_confirms_the_launcher_files(tmp_path, fmt):
    out = tmp_path / "out"
    sink = launcher_sink(out, fmt)
    outcomes = export_to(sink, a_result("inv1.0"), a_result("inv1.1"))
    located = {o.job_id: o.location for o in outcomes}
    assert sink.still_holds(located) == {"inv1.0", "inv1.1"}
    (out / "inv1" / "inv1.0" / f"processed_results.{fmt}").unlink()
    assert sink.still_holds(located) == {"inv1.1"}
    combined = out / f"processed_results.{fmt}"
    if fmt == "json":
        doc = json.loads(combined.read_text())
        doc["benchmarks"]["gsm8k"]["models"]["meta/llama-3.1-8b-instruct"] = []
        combined.write_text(json.dumps(doc))
    else:
        combined.write_text(",".join(LAUNCHER_BASE) + "\r\n")
    assert sink.still_holds(located) == set()
    combined.write_text("{broken" if fmt == "json" else "")
    assert sink.still_holds(located) == set()


def test_still_holds_a_job_exported_alone_without_a_combined_file(tmp_path):
    sink = launcher_sink(tmp_path / "out")
    outcome = export_to(sink, a_result("inv1.0"))[0]
    assert sink.still_holds({outcome.job_id: outcome.location}) == {"inv1.0"}
