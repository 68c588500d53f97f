"""The local sink's own defences: ids that are no folder names, cells a spreadsheet would run,
metric names that equal a CSV column, an empty output_dir, and confirming what a folder still holds.

Results are built directly (not read from an execution DB), so these ids reach the sink even
if a source in front of it would have refused them.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from evalport.adapters.sinks.local import LocalSink
from evalport.domain.model import Metric, TaskResult
from evalport.domain.ports import ExportItem
from evalport.domain.report import Status


def result(job_id: str = "inv1.0", invocation_id: str = "inv1", **fields) -> TaskResult:
    base = {
        "task": "gsm8k",
        "harness": "lm-evaluation-harness",
        "model_id": "meta/llama-3.1-8b-instruct",
        "executor": "local",
        "container": "client-gsm8k-0",
        "timestamp": 1712345678.5,
        "metrics": (Metric("gsm8k_exact_match", 0.75, {"stderr": 0.01}), Metric("gsm8k_delta", -0.5)),
    }
    base.update(fields)
    return TaskResult(job_id=job_id, invocation_id=invocation_id, **base)


def export(sink: LocalSink, *results: TaskResult):
    return sink.export([ExportItem(r) for r in results])


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# ---- ids that are no folder names (issue 11, item 2) ---------------------------------------------


@pytest.fixture
def parent(tmp_path: Path) -> Path:
    """``parent/out`` is the output folder; ``parent/sentinel`` must stay empty."""
    (tmp_path / "parent" / "sentinel").mkdir(parents=True)
    return tmp_path / "parent"


HOSTILE = [
    pytest.param("inv1", "../../sentinel/escape", id="job-dotdot"),
    pytest.param("../sentinel", "inv1.0", id="invocation-dotdot"),
    pytest.param("inv1", "a/../../b", id="job-inner-dotdot"),
    pytest.param("inv1", "ABSOLUTE", id="job-absolute"),
    pytest.param("ABSOLUTE", "inv1.0", id="invocation-absolute"),
    pytest.param("inv1", "..", id="job-is-dotdot"),
    pytest.param("inv1", ".", id="job-is-dot"),
    pytest.param("", "inv1.0", id="invocation-empty"),
    pytest.param("inv1", "a\x00b", id="job-nul"),
    pytest.param("inv1", "a\nb", id="job-newline"),
    pytest.param("inv1", "x" * 300, id="job-too-long"),
    pytest.param("inv1", "a\\..\\..\\b", id="job-backslash"),
    pytest.param("inv1", "\udcff", id="job-lone-surrogate"),
]


@pytest.mark.parametrize("fmt", ["json", "csv", "none", "html"])
@pytest.mark.parametrize(("invocation_id", "job_id"), HOSTILE)
def test_an_id_that_is_no_folder_name_fails_alone_and_nothing_lands_outside(
    parent, fmt, invocation_id, job_id
):
    absolute = str(parent / "sentinel" / "abs")
    invocation_id = invocation_id.replace("ABSOLUTE", absolute)
    job_id = job_id.replace("ABSOLUTE", absolute)
    sink = LocalSink({"output_dir": parent / "out", "format": fmt})
    bad, good = result(job_id, invocation_id), result("good.0", "good")

    outcomes = export(sink, bad, good)

    assert [o.job_id for o in outcomes] == [job_id, "good.0"]
    assert outcomes[0].status is Status.FAILED
    assert "nothing was written" in outcomes[0].reason and "id" in outcomes[0].reason
    assert outcomes[1].status is Status.EXPORTED, outcomes[1]
    assert tree(parent / "sentinel") == set()
    assert {p.name for p in parent.iterdir()} == {"out", "sentinel"}
    assert all(p.startswith(("good", "results", "report")) for p in tree(parent / "out")), tree(
        parent / "out"
    )


def test_the_reason_names_the_offending_id_and_why(parent):
    sink = LocalSink({"output_dir": parent / "out"})
    outcome = export(sink, result("../../sentinel/escape"))[0]
    assert "'../../sentinel/escape'" in outcome.reason
    assert "path separator" in outcome.reason


def test_a_very_long_id_is_named_shortened_in_the_reason(parent):
    outcome = export(LocalSink({"output_dir": parent / "out"}), result("y" * 9000))[0]
    assert outcome.status is Status.FAILED
    assert "9000" in outcome.reason and len(outcome.reason) < 400


@pytest.mark.parametrize("link", ["inv1", "inv1/inv1.0"])
def test_a_symlink_inside_the_output_folder_cannot_lead_a_job_outside(parent, link):
    out = parent / "out"
    (out / "inv1").mkdir(parents=True)
    if link == "inv1":
        (out / "inv1").rmdir()
    (out / link).symlink_to(parent / "sentinel", target_is_directory=True)
    outcome = export(LocalSink({"output_dir": out}), result("inv1.0", "inv1"))[0]
    assert outcome.status is Status.FAILED
    assert "outside" in outcome.reason and "symbolic link" in outcome.reason
    assert tree(parent / "sentinel") == set()


def test_a_symlink_that_stays_inside_the_output_folder_is_followed(tmp_path):
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "inv1").symlink_to(out / "real", target_is_directory=True)
    assert export(LocalSink({"output_dir": out}), result("inv1.0", "inv1"))[0].status is Status.EXPORTED
    assert (out / "real" / "inv1.0" / "result.json").is_file()


def test_an_ordinary_id_with_dots_and_spaces_is_placed_as_is(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out"})
    outcome = export(sink, result("my run..v2 .0", "my run..v2 "))[0]
    assert outcome.status is Status.EXPORTED, outcome
    assert (tmp_path / "out" / "my run..v2 " / "my run..v2 .0" / "result.json").is_file()


# ---- cells a spreadsheet would evaluate (item 4) -------------------------------------------------

FORMULAS = {
    "model_id": '=HYPERLINK("http://evil.invalid","x")',
    "task": "+cmd|' /C calc'!A0",
    "harness": "-2+3",
    "container": "\r@SUM(1,2)",
    "executor": "\t=1+1",
}


@pytest.mark.parametrize("summary_name", ["results.csv", "result.csv"])
def test_text_cells_a_spreadsheet_would_evaluate_get_a_leading_apostrophe(tmp_path, summary_name):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": "csv"})
    job = result("=1+1.0", "@evil", **FORMULAS)
    assert export(sink, job)[0].status is Status.EXPORTED
    path = tmp_path / "out" / summary_name
    if summary_name == "result.csv":
        path = tmp_path / "out" / "@evil" / "=1+1.0" / summary_name
    (row,) = csv_rows(path)
    for column, value in FORMULAS.items():
        assert row[column] == "'" + value, column
    assert row["job_id"] == "'=1+1.0" and row["invocation_id"] == "'@evil"
    assert row["gsm8k_delta"] == "-0.5" and row["gsm8k_exact_match_stderr"] == "0.01"


def test_a_metric_name_a_spreadsheet_would_evaluate_is_neutralised_in_the_header(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": "csv"})
    export(sink, result(metrics=(Metric("=cmd()", 0.5),)))
    header = (tmp_path / "out" / "results.csv").read_text().splitlines()[0].split(",")
    assert "'=cmd()" in header and "=cmd()" not in header


def test_a_neutralised_job_id_is_matched_on_re_export_and_its_row_not_duplicated(tmp_path):
    out = tmp_path / "out"
    job = result("=1+1.0", "-inv", **FORMULAS, metrics=(Metric("@m", -0.25),))
    first = export(LocalSink({"output_dir": out, "format": "csv"}), job)[0]
    other = export(LocalSink({"output_dir": out, "format": "csv"}), result("plain.0", "plain"))[0]
    again = export(LocalSink({"output_dir": out, "format": "csv"}), job)[0]
    assert (first.status, other.status, again.status) == (Status.EXPORTED, Status.EXPORTED, Status.UNCHANGED)
    rows = csv_rows(out / "results.csv")
    assert sorted(r["job_id"] for r in rows) == ["'=1+1.0", "plain.0"]
    assert [r["'@m"] for r in rows if r["job_id"] == "'=1+1.0"] == ["-0.25"]


def test_an_id_that_already_starts_with_an_apostrophe_survives_re_export_unchanged(tmp_path):
    out = tmp_path / "out"
    jobs = [result("'=x.0", "inv"), result("=x.0", "inv"), result("'plain.0", "inv")]
    export(LocalSink({"output_dir": out, "format": "csv"}), *jobs)
    export(LocalSink({"output_dir": out, "format": "csv"}), result("more.0", "inv"))
    again = export(LocalSink({"output_dir": out, "format": "csv"}), *jobs)
    assert {o.status for o in again} == {Status.UNCHANGED}
    assert sorted(r["job_id"] for r in csv_rows(out / "results.csv")) == sorted(
        ["''=x.0", "'=x.0", "'plain.0", "more.0"]
    )


def test_numbers_and_non_finite_spellings_are_never_quoted(tmp_path):
    metrics = (Metric("neg", -0.5), Metric("plus", 1e-5), Metric("low", float("-inf")), Metric("big", -3e20))
    sink = LocalSink({"output_dir": tmp_path / "out", "format": "csv"})
    export(sink, result(metrics=metrics))
    export(LocalSink({"output_dir": tmp_path / "out", "format": "csv"}), result("b.0", "b"))
    row = next(r for r in csv_rows(tmp_path / "out" / "results.csv") if r["job_id"] == "inv1.0")
    assert (row["neg"], row["plus"], row["low"], row["big"]) == ("-0.5", "1e-05", "-inf", "-3e+20")


def test_the_json_summary_keeps_text_exactly(tmp_path):
    export(LocalSink({"output_dir": tmp_path / "out"}), result(**FORMULAS))
    (run,) = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert run["model_id"] == FORMULAS["model_id"]


# ---- metric names equal to CSV columns (item 20) ------------------------------------------------

COLLIDING = (
    Metric("job_id", 0.25),
    Metric("model", 0.5, {"id": 0.125}),
    Metric("fingerprint", 1.0),
    Metric("timestamp", 2.0),
)


def test_a_metric_named_like_a_csv_column_gets_its_own_column_and_spares_the_job_cells(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": "csv"})
    export(sink, result(metrics=COLLIDING))
    (row,) = csv_rows(tmp_path / "out" / "results.csv")
    assert row["job_id"] == "inv1.0" and row["model_id"] == "meta/llama-3.1-8b-instruct"
    assert row["timestamp"] == "1712345678.5" and int(row["fingerprint"], 16) >= 0  # a hex digest
    assert row["job_id (metric)"] == "0.25" and row["model_id (metric)"] == "0.125"
    assert row["fingerprint (metric)"] == "1.0" and row["timestamp (metric)"] == "2.0"


def test_a_metric_named_like_a_csv_column_does_not_duplicate_the_row_on_re_export(tmp_path):
    out = tmp_path / "out"
    job = result(metrics=COLLIDING)
    export(LocalSink({"output_dir": out, "format": "csv"}), job)
    again = export(LocalSink({"output_dir": out, "format": "csv"}), job)[0]
    assert again.status is Status.UNCHANGED
    assert [r["job_id"] for r in csv_rows(out / "results.csv")] == ["inv1.0"]


def test_a_metric_already_named_with_the_suffix_stays_apart_from_a_renamed_one(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": "csv"})
    export(sink, result(metrics=(Metric("job_id", 0.25), Metric("job_id (metric)", 0.75))))
    (row,) = csv_rows(tmp_path / "out" / "results.csv")
    assert row["job_id (metric)"] == "0.25" and row["job_id (metric) (metric)"] == "0.75"


def test_a_metric_named_metrics_does_not_confuse_the_csv_summary(tmp_path):
    out = tmp_path / "out"
    export(LocalSink({"output_dir": out, "format": "csv"}), result(metrics=(Metric("metrics", 0.5),)))
    outcome = export(LocalSink({"output_dir": out, "format": "csv"}), result("b.0", "b"))[0]
    assert outcome.status is Status.EXPORTED, outcome
    assert len(csv_rows(out / "results.csv")) == 2


# ---- an empty output_dir (item 23) -------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_output_dir_is_a_configuration_error(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="output_dir"):
        LocalSink({"output_dir": value})
    assert list(tmp_path.iterdir()) == []


def test_the_current_folder_can_still_be_chosen_explicitly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert export(LocalSink({"output_dir": "."}), result())[0].status is Status.EXPORTED
    assert (tmp_path / "results.json").is_file()


# ---- the destination confirms a ledger skip (item 12) ---------------------------------------------


def exported(sink: LocalSink, *results: TaskResult) -> dict[str, str]:
    outcomes = export(sink, *results)
    assert all(o.status is Status.EXPORTED for o in outcomes), outcomes
    return {o.job_id: o.location for o in outcomes}


JOBS = (result("inv1.0"), result("inv1.1"), result("inv2.0", "inv2"))


@pytest.mark.parametrize("fmt", ["json", "csv", "none", "html", "md"])
def test_a_folder_that_holds_every_job_confirms_them_all(tmp_path, fmt):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": fmt})
    located = exported(sink, *JOBS)
    assert sink.still_holds(located) == set(located)
    assert sink.still_holds({}) == set()


@pytest.mark.parametrize("fmt", ["json", "csv", "none", "html"])
def test_a_deleted_output_folder_holds_nothing(tmp_path, fmt):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": fmt})
    located = exported(sink, *JOBS)
    shutil.rmtree(tmp_path / "out")
    assert LocalSink({"output_dir": tmp_path / "out", "format": fmt}).still_holds(located) == set()


@pytest.mark.parametrize("fmt", ["json", "csv", "none"])
def test_a_deleted_job_folder_is_no_longer_held(tmp_path, fmt):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": fmt})
    located = exported(sink, *JOBS)
    shutil.rmtree(tmp_path / "out" / "inv1" / "inv1.1")
    assert sink.still_holds(located) == {"inv1.0", "inv2.0"}


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_deleted_per_job_summary_is_no_longer_held(tmp_path, fmt):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": fmt})
    located = exported(sink, *JOBS)
    (tmp_path / "out" / "inv2" / "inv2.0" / f"result.{fmt}").unlink()
    assert sink.still_holds(located) == {"inv1.0", "inv1.1"}


def test_a_job_removed_from_the_json_summary_is_no_longer_held(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out"})
    located = exported(sink, *JOBS)
    path = tmp_path / "out" / "results.json"
    doc = json.loads(path.read_text())
    doc["runs"] = [r for r in doc["runs"] if r["job_id"] != "inv1.0"]
    path.write_text(json.dumps(doc))
    assert sink.still_holds(located) == {"inv1.1", "inv2.0"}


def test_a_job_removed_from_the_csv_summary_is_no_longer_held(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": "csv"})
    located = exported(sink, *JOBS)
    path = tmp_path / "out" / "results.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if ",inv2.0," not in line))
    assert sink.still_holds(located) == {"inv1.0", "inv1.1"}


@pytest.mark.parametrize("damage", ["deleted", "corrupt"])
def test_a_deleted_or_corrupt_summary_holds_nothing(tmp_path, damage):
    sink = LocalSink({"output_dir": tmp_path / "out"})
    located = exported(sink, *JOBS)
    if damage == "deleted":
        (tmp_path / "out" / "results.json").unlink()
    else:
        (tmp_path / "out" / "results.json").write_text("{not json")
    assert sink.still_holds(located) == set()


def test_a_deleted_report_holds_nothing_so_the_report_is_rendered_again(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out", "format": "html"})
    located = exported(sink, *JOBS)
    (tmp_path / "out" / "report.html").unlink()
    assert sink.still_holds(located) == set()


def test_a_location_outside_the_output_folder_is_not_trusted(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out"})
    located = exported(sink, *JOBS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located["inv1.0"] = str(elsewhere)
    located["inv1.1"] = ""
    assert sink.still_holds(located) == {"inv2.0"}


def test_an_id_never_exported_here_is_not_held(tmp_path):
    sink = LocalSink({"output_dir": tmp_path / "out"})
    located = exported(sink, *JOBS[:1])
    located["inv9.0"] = str(tmp_path / "out" / "inv9" / "inv9.0")
    assert sink.still_holds(located) == {"inv1.0"}


# ---- files that turn unsendable between listing and staging ----------------------------------------


@pytest.mark.timeout(30)
def test_a_listed_file_that_became_a_fifo_is_named_in_the_outcome_and_the_rest_is_staged(tmp_path: Path):
    import os

    job_dir = tmp_path / "job"
    (job_dir / "artifacts").mkdir(parents=True)
    (job_dir / "artifacts" / "results.yml").write_text("results: {}\n")
    os.mkfifo(job_dir / "artifacts" / "progress")
    sink = LocalSink({"output_dir": str(tmp_path / "out")})
    item = ExportItem(result(), job_dir, artifacts=("progress", "results.yml"))
    (outcome,) = sink.export([item])
    assert outcome.status is Status.EXPORTED
    assert "not sent: artifacts/progress" in outcome.reason and "FIFO" in outcome.reason
    staged = tmp_path / "out" / "inv1" / "inv1.0" / "artifacts"
    assert (staged / "results.yml").is_file() and not (staged / "progress").exists()
