"""`evalport report` and the local sink's html/md formats, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from evalport.adapters.report.formatting import fmt_value
from evalport.domain.results import flatten_results


def headline_values(home, task: str, metric: str) -> dict[str, float]:
    """model -> the value the factory wrote for ``metric`` of ``task`` (each model ran it once here)."""
    out = {}
    for job in home.jobs:
        if job.task == task:
            out[job.model_id] = next(m.value for m in flatten_results(job.results) if m.name == metric)
    return out


def md_rows(text: str) -> dict[str, list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return {r.split(" | ")[0][2:]: r.strip("| ").split(" | ")[1:] for r in rows[1:]}


def test_the_html_report_of_two_invocations_holds_every_model_task_and_value(cli, home, tmp_path):
    out = tmp_path / "cmp.html"
    run = cli("report", *home.invocation_ids, "--output", out)
    assert run.code == 0, run.err
    assert "6 jobs, 2 models" in run.out and str(out) in run.out
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", page)  # nothing to fetch
    for job in home.jobs:
        assert f'data-job="{job.job_id}"' in page and f'data-model="{job.model_id}"' in page
    for model, value in headline_values(home, "gsm8k", "gsm8k_exact_match_strict-match").items():
        row = re.search(rf'<tr data-model="{re.escape(model)}">.*?</tr>', page).group(0)
        assert f">{fmt_value(value)}</a>" in row
    assert page.count("<svg ") == len({j.task for j in home.jobs})


def test_markdown_goes_to_stdout_with_the_baseline_deltas(cli, home):
    base = home.jobs[0].model_id
    run = cli("report", *home.invocation_ids, "--format", "md", "--baseline", base)
    assert run.code == 0, run.err
    rows = md_rows(run.out)
    assert set(rows) == {f"{base} (baseline)", *({j.model_id for j in home.jobs} - {base})}
    for model, cells in rows.items():
        for cell in cells:
            has_delta = re.search(r"\([+-]\d", cell) is not None
            if model.endswith("(baseline)") or cell == "—":
                assert not has_delta, (model, cell)
    other = next(m for m in rows if not m.endswith("(baseline)"))
    pairs = [
        (b, c) for b, c in zip(rows[f"{base} (baseline)"], rows[other], strict=True) if "—" not in (b, c)
    ]
    assert pairs and all(re.search(r"\([+-]\d", c) for _, c in pairs)


def test_a_headline_option_changes_the_metric_a_task_is_compared_on(cli, home, tmp_path):
    out = tmp_path / "r.md"
    run = cli(
        "report", *home.invocation_ids, "--output", out, "--headline", "gsm8k=exact_match_flexible-extract"
    )
    assert run.code == 0, run.err
    text = out.read_text()
    assert "gsm8k `exact_match_flexible-extract`" in text
    flexible = headline_values(home, "gsm8k", "gsm8k_exact_match_flexible-extract")
    gsm_col = [h.strip() for h in text.splitlines()[4].strip("|").split("|")].index(
        "gsm8k `exact_match_flexible-extract`"
    )
    for model, value in flexible.items():
        assert fmt_value(value) in md_rows(text)[model][gsm_col - 1]


def test_log_metrics_limits_the_metrics_in_the_report(cli, home, tmp_path):
    out = tmp_path / "r.html"
    names = {m.name for j in home.jobs for m in flatten_results(j.results)}
    stem = {n for n in names if "stem" in n}
    assert stem and cli("report", *home.invocation_ids, "--output", out, "--log-metrics", "!stem").code == 0
    page = out.read_text()
    assert not any(n in page for n in stem) and all(n in page for n in names - stem)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--baseline", "nobody/model"], "baseline model 'nobody/model'"),
        (["--headline", "gsm8k"], "TASK=METRIC"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(cli, home, tmp_path, args, message):
    run = cli("report", *home.invocation_ids, "--output", tmp_path / "r.html", *args)
    assert run.code == 2 and message in run.err
    assert not (tmp_path / "r.html").exists()


def test_an_unknown_id_alone_is_a_usage_error(cli, tmp_path):
    run = cli("report", "ffffffffffff", "--output", tmp_path / "r.html")
    assert run.code == 2 and "ffffffffffff" in run.err


def test_a_job_that_cannot_be_read_exits_1_but_the_others_are_reported(cli, home, tmp_path):
    broken = home.jobs[0]
    (broken.directory / "artifacts" / "results.yml").write_text("results: [not, a, mapping")
    out = tmp_path / "r.html"
    run = cli("report", *home.invocation_ids, "--output", out)
    assert run.code == 1 and broken.job_id in run.err
    page = out.read_text()
    assert f'data-job="{broken.job_id}"' not in page and f'data-job="{home.jobs[1].job_id}"' in page


def test_the_local_sink_keeps_one_report_over_every_job_exported_to_the_folder(cli, home, tmp_path):
    out = tmp_path / "out"
    first, second = home.invocation_ids
    opts = ["--dest", "local", "--output-dir", out, "-o", "export.local.format=html"]
    assert cli("export", first, *opts).code == 0
    assert cli("export", second, *opts).code == 0
    page = (out / "report.html").read_text()
    assert all(f'data-job="{j.job_id}"' in page for j in home.jobs)
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert sorted(r["job_id"] for r in runs) == sorted(j.job_id for j in home.jobs)
    assert not list(out.glob("*/*/result.json"))  # no per-job summaries in report formats
    job = home.jobs[0]
    assert f'href="{job.invocation_id}/{job.job_id}/artifacts/results.yml"' in page
    # re-exporting a changed job upserts it: still one entry per job, the new value in the report
    import yaml

    results_yml = job.directory / "artifacts" / "results.yml"
    doc = yaml.safe_load(results_yml.read_text())
    for section in doc["results"].values():
        for entry in section.values():
            for metric in entry["metrics"].values():
                for score in metric["scores"].values():
                    score["value"] = 0.123456
    results_yml.write_text(yaml.safe_dump(doc))
    run = cli("export", first, *opts)
    assert run.code == 0 and "1 updated" in run.out, run.out + run.err
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == len(home.jobs)
    page = (out / "report.html").read_text()
    row = re.search(rf'<tr data-model="{re.escape(job.model_id)}">.*?</tr>', page).group(0)
    assert f'href="#job-{job.job_id}">0.1235</a>' in row


def test_the_local_sink_writes_markdown_under_the_chosen_name(cli, home, tmp_path):
    out = tmp_path / "out"
    run = cli(
        "export",
        *home.invocation_ids,
        "--dest",
        "local",
        "--output-dir",
        out,
        "-o",
        "export.local.format=md",
        "-o",
        "export.local.output_filename=COMPARISON.md",
        "-o",
        f"export.local.baseline={home.jobs[0].model_id}",
    )
    assert run.code == 0, run.err
    assert "COMPARISON.md" in run.out
    text = (out / "COMPARISON.md").read_text()
    assert f"| {home.jobs[0].model_id} (baseline) |" in text
    assert (out / "results.json").is_file()


def test_json_and_csv_formats_still_write_per_job_summaries_and_no_report(cli, home, tmp_path):
    for fmt in ("json", "csv"):
        out = tmp_path / fmt
        assert (
            cli("export", *home.invocation_ids, "--dest", "local", "--output-dir", out, "--format", fmt).code
            == 0
        )
        assert (out / f"results.{fmt}").is_file() and not list(out.glob("report.*"))
        assert len(list(out.glob(f"*/*/result.{fmt}"))) == len(home.jobs)


def test_help_does_not_import_the_report_module_or_matplotlib():
    code = (
        "import sys; from evalport.app.cli import main; main(['--help']); "
        "print([m for m in ('evalport.app.report_cli', 'matplotlib', 'evalport.adapters.report') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "report" in out


def test_a_markdown_report_does_not_import_matplotlib(home, tmp_path):
    code = (
        "import sys; from evalport.app.cli import main; "
        f"rc = main(['report', *{home.invocation_ids!r}, '--exec-db', {str(home.exec_db)!r}, '--format', 'md']); "
        "print(rc, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 False"


def test_a_dash_as_output_writes_the_markdown_to_stdout(tmp_path, capsys):
    from evalport.app.cli import main
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "h", 1, 2)
    assert (
        main(
            [
                "report",
                *home.invocation_ids,
                "--format",
                "md",
                "--output",
                "-",
                "--exec-db",
                str(home.exec_db),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("# ")
