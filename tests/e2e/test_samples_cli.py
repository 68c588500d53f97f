"""``evalport samples`` and ``evalport report --samples`` over the local sample store, on the real
lm-eval output in tests/data/harnesses and a second model made from it with some scores flipped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from evalport.app.cli import main

pytest.importorskip("duckdb")

LM_EVAL = Path(__file__).resolve().parents[1] / "data" / "harnesses" / "lm_eval" / "run-suite"
NO_DB = "/nonexistent/exec.v1.jsonl"
A, B = "acme/dummy-7b", "acme/other-7b"


@pytest.fixture(autouse=True)
def _own_state(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALPORT_STATE_DIR", str(tmp_path / "state"))


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _rewrite_jsonl(path: Path, change) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(json.dumps(change(row)) + "\n" for row in rows))


@pytest.fixture
def two_models(tmp_path) -> tuple[Path, Path]:
    """Model A is the real run; model B answers q2 right in tiny_gen (both filters, with output "4")
    and gets q1 wrong in tiny_mc; a secret sits in one of its tiny_gen inputs."""
    first = Path(shutil.copytree(LM_EVAL, tmp_path / "model-a"))
    second = Path(shutil.copytree(LM_EVAL, tmp_path / "model-b"))
    (results,) = second.glob("results_*.json")
    results.write_text(results.read_text().replace(A, B))

    def gen(row):
        if row["doc_id"] == 1:
            row["exact_match"] = 1.0
            row["filtered_resps"] = ["4"]
        if row["doc_id"] == 2:
            row["arguments"]["gen_args_0"]["arg_0"] += " --api-key sk-abcdefghijklmnop1234567890"
        return row

    def mc(row):
        if row["doc_id"] == 0:
            row["acc"] = 0.0
        return row

    _rewrite_jsonl(next(second.glob("samples_tiny_gen_*.jsonl")), gen)
    _rewrite_jsonl(next(second.glob("samples_tiny_mc_*.jsonl")), mc)
    return first, second


@pytest.fixture
def store(capsys, tmp_path, two_models) -> Path:
    out = tmp_path / "out"
    first, second = two_models
    args = ["export", "--job-dir", first, "--job-dir", second, "--dest", "local", "--output-dir", out]
    code, _, err = run(capsys, *args, "--exec-db", NO_DB)
    assert code == 0, err
    return out


def test_diff_lists_the_samples_that_flipped_between_two_models(capsys, store):
    code, out, err = run(capsys, "samples", "--output-dir", store, "--diff", A, B, "--json")
    assert code == 0, err
    by_task = {t["task"]: t for t in json.loads(out)}
    assert sorted(by_task) == ["tiny_gen", "tiny_mc", "tâche_ünï"]
    gen = by_task["tiny_gen"]
    assert (gen["shared"], gen["differ"]) == (6, 2)
    assert [
        (r["sample_id"], r["score_a"], r["score_b"], r["output_a"], r["output_b"]) for r in gen["rows"]
    ] == [
        ("1,flexible-extract", 0.0, 1.0, '["lol"]', '["4"]'),
        ("1,strict-match", 0.0, 1.0, '["lol"]', '["4"]'),
    ]
    mc = by_task["tiny_mc"]
    assert (mc["shared"], mc["differ"], [r["sample_id"] for r in mc["rows"]]) == (3, 1, ["0"])
    assert (by_task["tâche_ünï"]["shared"], by_task["tâche_ünï"]["differ"]) == (3, 0)


def test_rows_filter_by_task_and_a_where_condition_and_secrets_stay_masked(capsys, store):
    where = f"model = '{B}' AND sample_id LIKE '2,%'"
    code, out, err = run(
        capsys, "samples", "--output-dir", store, "--task", "tiny_gen", "--where", where, "--json"
    )
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(r["sample_id"] for r in rows) == ["2,flexible-extract", "2,strict-match"]
    assert all("--api-key ***" in r["input"] for r in rows), rows
    assert "sk-abcdefghijklmnop1234567890" not in out


def test_the_table_shows_a_count_and_ids_pick_the_jobs(capsys, store):
    code, out, _ = run(capsys, "samples", "--output-dir", store, "--limit", "2")
    assert code == 0 and "2 of 24 samples" in out
    code, out, _ = run(capsys, "samples", "--output-dir", store, "--json", "--limit", "100")
    job = json.loads(out)[0]["job_id"]
    code, out, _ = run(capsys, "samples", job, "--output-dir", store, "--json", "--limit", "100")
    assert code == 0 and {r["job_id"] for r in json.loads(out)} == {job}


def test_unknown_ids_a_missing_store_and_a_bad_condition_are_usage_errors(capsys, store, tmp_path):
    code, _, err = run(capsys, "samples", "ffffffff", "--output-dir", store)
    assert code == 2 and "no samples of ffffffff" in err
    code, _, err = run(capsys, "samples", "--output-dir", tmp_path / "nowhere")
    assert code == 2 and "no sample store" in err
    code, _, err = run(capsys, "samples", "--output-dir", store, "--where", "nonsense =")
    assert code == 2 and "the sample query failed" in err
    code, _, err = run(capsys, "samples", "--output-dir", store, "--diff", A, "acme/absent")
    assert code == 2 and "acme/absent" in err and A in err


def test_the_markdown_report_lists_the_disagreements_cell_by_cell(capsys, store, two_models):
    first, second = two_models
    args = ["report", "--job-dir", first, "--job-dir", second, "--format", "md", "--output", "-"]
    code, out, err = run(capsys, *args, "--samples", store, "--baseline", A, "--exec-db", NO_DB)
    assert code == 0, err
    section = out[out.index("## Where models disagree") :]
    tables = {}
    for block in section.split("### ")[1:]:
        title, _, body = block.partition("\n")
        tables[title] = [
            [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in body.splitlines()
            if line.startswith("|")
        ]
    gen = "tiny\\_gen: acme/dummy-7b vs acme/other-7b, 2 of 6 shared samples differ"
    assert tables[gen] == [
        [
            "Sample",
            "acme/dummy-7b",
            "acme/other-7b",
            "Input",
            "Target",
            "Output of acme/dummy-7b",
            "Output of acme/other-7b",
        ],
        [":---", "---:", "---:", ":---", ":---", ":---", ":---"],
        [
            "`1,flexible-extract`",
            "0.0000",
            "1.0000",
            "Question: What is 2+2? Answer:",
            "4",
            '\\["lol"\\]',
            '\\["4"\\]',
        ],
        [
            "`1,strict-match`",
            "0.0000",
            "1.0000",
            "Question: What is 2+2? Answer:",
            "4",
            '\\["lol"\\]',
            '\\["4"\\]',
        ],
    ]
    mc = "tiny\\_mc: acme/dummy-7b vs acme/other-7b, 1 of 3 shared samples differ"
    assert tables[mc][2][:5] == [
        "`0`",
        "1.0000",
        "0.0000",
        "Question: What does the dummy model say? Answer:",
        "0",
    ]
    assert tables["tâche\\_ünï: acme/dummy-7b vs acme/other-7b, 0 of 3 shared samples differ"] == []


def test_the_html_report_has_the_disagreements_section(capsys, store, two_models, tmp_path):
    pytest.importorskip("matplotlib")
    first, second = two_models
    page = tmp_path / "report.html"
    args = ["report", "--job-dir", first, "--job-dir", second, "--output", page, "--samples", store]
    code, _, err = run(capsys, *args, "--exec-db", NO_DB)
    assert code == 0, err
    html = page.read_text()
    assert '<section id="disagreements"' in html and 'href="#disagreements"' in html
    assert "<h3>tiny_gen: acme/dummy-7b vs acme/other-7b, 2 of 6 shared samples differ</h3>" in html
    assert "<td>1,strict-match</td><td>0.0000</td><td>1.0000</td>" in html
    assert "<td>[&quot;4&quot;]</td>" in html
