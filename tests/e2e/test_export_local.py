"""The CLI as a user runs it, exporting to local files, including every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalport.domain.results import flatten_results


def summary(out_dir: Path) -> dict[str, dict]:
    return {r["job_id"]: r for r in json.loads((out_dir / "results.json").read_text())["runs"]}


def written_metrics(job) -> dict[str, float]:
    return {m.name: m.value for m in flatten_results(job.results)}


def rewrite_values(results_yml: Path, change) -> None:
    import yaml

    doc = yaml.safe_load(results_yml.read_text())
    for section in doc["results"].values():
        for entry in section.values():
            for metric in entry["metrics"].values():
                for score in metric["scores"].values():
                    score["value"] = change(score["value"])
    results_yml.write_text(yaml.safe_dump(doc))


def bump_first_value(results_yml: Path, by: float = 0.01) -> None:
    rewrite_values(results_yml, lambda v: v + by)


def test_exporting_two_invocations_writes_every_job_with_its_metrics(cli, home, tmp_path):
    out = tmp_path / "out"
    run = cli("export", *home.invocation_ids, "--output-dir", out)
    assert run.code == 0, run.err
    runs = summary(out)
    assert sorted(runs) == sorted(j.job_id for j in home.jobs)
    for job in home.jobs:
        assert runs[job.job_id]["metrics"] == written_metrics(job)
        assert runs[job.job_id]["model_id"] == job.model_id and runs[job.job_id]["harness"] == job.harness
        staged = out / job.invocation_id / job.job_id
        assert (staged / "artifacts" / "results.yml").read_bytes() == (
            job.directory / "artifacts/results.yml"
        ).read_bytes()
        assert (staged / "result.json").is_file()
        assert not (staged / ".secrets.env").exists() and not (staged / "artifacts" / "cache").exists()
    assert "6 exported" in run.out


def test_a_prefix_exports_its_invocation_and_a_job_id_exports_one_job(cli, home, tmp_path):
    inv = home.invocation_ids[0]
    run = cli("export", inv[:6], f"{home.invocation_ids[1]}.2", "--output-dir", tmp_path / "o")
    assert run.code == 0
    assert sorted(summary(tmp_path / "o")) == sorted(
        [f"{inv}.0", f"{inv}.1", f"{inv}.2", f"{home.invocation_ids[1]}.2"]
    )


def test_re_export_reports_unchanged_then_updated_and_never_duplicates(cli, home, tmp_path):
    out = tmp_path / "o"
    inv = home.invocation_ids[0]
    assert cli("export", inv, "--output-dir", out).code == 0
    again = cli("export", inv, "--output-dir", out, "--json")
    assert json.loads(again.out)["counts"] == {"unchanged": 3}
    bump_first_value(home.jobs[0].directory / "artifacts" / "results.yml")
    changed = json.loads(cli("export", inv, "--output-dir", out, "--json").out)
    assert changed["counts"] == {"updated": 1, "unchanged": 2}
    assert len(summary(out)) == 3


def test_csv_format_and_output_filename(cli, home, tmp_path):
    out = tmp_path / "o"
    assert (
        cli(
            "export",
            home.invocation_ids[0],
            "--output-dir",
            out,
            "--format",
            "csv",
            "--output-filename",
            "all.csv",
        ).code
        == 0
    )
    import csv

    rows = list(csv.DictReader((out / "all.csv").open()))
    assert len(rows) == 3
    job = home.jobs[0]
    row = next(r for r in rows if r["job_id"] == job.job_id)
    for name, value in written_metrics(job).items():
        assert float(row[name]) == pytest.approx(value)


def test_log_metrics_is_applied_to_what_is_written(cli, home, tmp_path):
    out = tmp_path / "o"
    assert (
        cli(
            "export",
            *home.invocation_ids,
            "--output-dir",
            out,
            "--log-metrics",
            "score",
            "--log-metrics",
            "!macro",
        ).code
        == 0
    )
    for run in summary(out).values():
        assert all("score" in k and "macro" not in k for k in run["metrics"]), run["metrics"]


def test_copy_logs_and_all_artifacts(cli, home, tmp_path):
    out = tmp_path / "o"
    job = home.jobs[0]
    (job.directory / "artifacts" / "samples.jsonl").write_text("{}\n")
    assert cli("export", job.job_id, "--output-dir", out, "--copy-logs", "--all-artifacts").code == 0
    staged = out / job.invocation_id / job.job_id
    assert (staged / "logs" / "client_stdout.log").is_file()
    assert (staged / "artifacts" / "samples.jsonl").is_file()
    assert not list(staged.rglob("*.db")) and not list(staged.rglob(".secrets.env"))


def test_secrets_in_configs_never_reach_the_output(cli, home, tmp_path):
    out = tmp_path / "o"
    assert cli("export", *home.invocation_ids, "--output-dir", out, "--copy-logs").code == 0
    for path in out.rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):
            text = path.read_text(errors="replace")
            assert "nvapi-very-secret" not in text and "hf_secret_token_value" not in text, path


def test_dry_run_says_what_would_go_where_and_writes_nothing(cli, home, tmp_path):
    out = tmp_path / "o"
    run = cli("export", home.invocation_ids[0], "--output-dir", out, "--dry-run")
    assert run.code == 0
    assert (
        "planned" in run.out and str(out) in run.out.replace("\n", "").replace(" ", "")
    ) or "would export" in run.out
    assert not out.exists()


def test_config_as_inline_json_and_overrides(cli, home, tmp_path):
    out = tmp_path / "o"
    run = cli(
        "export",
        home.invocation_ids[0],
        "--config",
        json.dumps({"output_dir": str(out), "format": "json"}),
        "-o",
        "export.local.output_filename=inline.json",
    )
    assert run.code == 0, run.err
    assert (out / "inline.json").is_file()


def test_config_file_in_the_launcher_format(cli, home, tmp_path):
    out = tmp_path / "o"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"execution:\n  auto_export:\n    destinations: [local]\n    configs:\n      local:\n"
        f"        output_dir: {out}\n        format: csv\n"
    )
    assert cli("export", home.invocation_ids[0], "--config", cfg).code == 0
    assert (out / "results.csv").is_file()


# ---- bad input -----------------------------------------------------------------------------------
def test_a_corrupt_exec_db_line_is_skipped_with_a_warning(cli, home, tmp_path):
    with open(home.exec_db, "a") as fh:
        fh.write("{this is not json\n")
    run = cli("export", *home.invocation_ids, "--output-dir", tmp_path / "o")
    assert run.code == 0
    assert "corrupt" in run.err and "exec.v1.jsonl:7" in run.err
    assert len(summary(tmp_path / "o")) == 6


def test_an_unknown_id_alone_is_a_usage_error(cli, tmp_path):
    run = cli("export", "deadbeefdeadbeef", "--output-dir", tmp_path / "o")
    assert run.code == 2
    assert "deadbeefdeadbeef" in run.err and "evalport ls" in run.err


def test_an_unknown_id_beside_good_ones_fails_but_the_rest_is_exported(cli, home, tmp_path):
    run = cli("export", "deadbeefdeadbeef", home.invocation_ids[0], "--output-dir", tmp_path / "o")
    assert run.code == 1
    assert "deadbeefdeadbeef" in run.err
    assert len(summary(tmp_path / "o")) == 3


def test_an_ambiguous_prefix_lists_the_candidates(cli, home, tmp_path):
    from evalport.testing.factory import write_launcher_home

    for seed in range(50):
        extra = write_launcher_home(tmp_path / f"x{seed}", 1, 1, seed=seed + 100)
        if extra.invocation_ids[0][0] == home.invocation_ids[0][0]:
            break
    with open(home.exec_db, "a") as fh:
        fh.write(extra.exec_db.read_text())
    prefix = home.invocation_ids[0][0]
    run = cli("export", prefix, "--output-dir", tmp_path / "o")
    assert run.code == 2
    assert "ambiguous" in run.err and home.invocation_ids[0] in run.err and extra.invocation_ids[0] in run.err


def _break(job, how: str) -> str:
    art = job.directory / "artifacts"
    if how == "no artifacts dir":
        import shutil

        shutil.rmtree(art)
        return "artifacts/"
    if how == "not yaml":
        (art / "results.yml").write_text("results: [unclosed\n  - : :\n")
        return "not valid YAML"
    if how == "no results section":
        (art / "results.yml").write_text("config: {}\n")
        return "no 'results' section"
    if how == "value not a number":
        text = (art / "results.yml").read_text()
        (art / "results.yml").write_text(text.replace("value: ", "value: high # ", 1))
        return "is not a number"
    if how == "conflicting keys":
        (art / "results.yml").write_text(
            "results:\n  tasks:\n    t:\n      metrics:\n        s:\n          scores:\n            micro: {value: 0.1}\n"
            "  groups:\n    t:\n      metrics:\n        s:\n          scores:\n            micro: {value: 0.2}\n"
        )
        return "0.1"
    if how == "run_config missing":
        (art / "run_config.yml").unlink()
        return "run_config.yml is missing"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "no artifacts dir",
        "not yaml",
        "no results section",
        "value not a number",
        "conflicting keys",
        "run_config missing",
    ],
)
def test_a_broken_job_fails_alone_with_a_message_naming_job_and_file(cli, home, tmp_path, how):
    bad = home.jobs[1]
    expected = _break(bad, how)
    out = tmp_path / "o"
    run = cli("export", *home.invocation_ids, "--output-dir", out)
    assert run.code == 1
    assert bad.job_id in run.err and expected in run.err.replace("\n", " ").replace("│", "")
    exported = summary(out)
    assert bad.job_id not in exported and len(exported) == 5
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.partial"))


def test_nan_and_inf_values_are_exported_as_strict_json(cli, home, tmp_path):
    job = home.jobs[0]
    rewrite_values(
        job.directory / "artifacts" / "results.yml", lambda v: float("nan") if v < 0.5 else float("inf")
    )
    out = tmp_path / "o"
    assert cli("export", job.job_id, "--output-dir", out).code == 0
    text = (out / "results.json").read_text()
    assert "NaN" not in text
    assert set(summary(out)[job.job_id]["metrics"].values()) <= {"nan", "inf"}


def test_an_unwritable_output_directory_fails_every_job_and_leaves_nothing(cli, home, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = cli("export", home.invocation_ids[0], "--output-dir", blocker / "out")
    assert run.code == 1
    assert (
        str(blocker / "out") in run.err.replace("\n", "").replace("│", "").replace(" ", "")
        or "cannot" in run.err
    )
    assert blocker.read_text() == "x"


def test_an_unknown_config_key_is_a_usage_error_naming_it(cli, home, tmp_path):
    run = cli("export", home.invocation_ids[0], "-o", "export.local.output_dri=/x")
    assert run.code == 2
    assert "output_dri" in run.err and "output_dir" in run.err


def test_an_unknown_destination_names_the_known_ones(cli, home):
    run = cli("export", home.invocation_ids[0], "--dest", "lcoal")
    assert run.code == 2 and "local" in run.err


def test_a_running_job_is_skipped_with_a_reason_and_the_rest_exported(cli, home, tmp_path):
    running = home.jobs[2]
    (running.directory / "logs" / "stage.exit").unlink()
    run = cli("export", home.invocation_ids[0], "--output-dir", tmp_path / "o", "--json")
    report = json.loads(run.out)
    assert run.code == 0
    skipped = [o for o in report["outcomes"] if o["status"] == "skipped"]
    assert [o["job_id"] for o in skipped] == [running.job_id] and "running" in skipped[0]["reason"]
    assert len(summary(tmp_path / "o")) == 2


def test_a_failed_job_is_exported_only_with_include_failed(cli, home, tmp_path):
    failed = home.jobs[0]
    (failed.directory / "logs" / "stage.exit").write_text("2026-01-01T00:00:00Z 3\n")
    assert failed.job_id not in summary_after(cli, home, tmp_path / "a")
    assert failed.job_id in summary_after(cli, home, tmp_path / "b", "--include-failed")


def summary_after(cli, home, out, *extra):
    cli("export", home.invocation_ids[0], "--output-dir", out, *extra)
    return summary(out)


# ---- other commands ------------------------------------------------------------------------------
def test_ls_lists_jobs_with_their_state(cli, home):
    (home.jobs[0].directory / "logs" / "stage.exit").write_text("x 1\n")
    run = cli("ls", "--json")
    listed = {j["job_id"]: j["state"] for inv in json.loads(run.out) for j in inv["jobs"]}
    assert listed[home.jobs[0].job_id] == "failed" and listed[home.jobs[1].job_id] == "succeeded"
    assert len(listed) == 6


def test_show_prints_the_metrics_of_a_job(cli, home):
    job = home.jobs[0]
    run = cli("show", job.job_id, "--json")
    (shown,) = json.loads(run.out)
    assert shown["metrics"] == written_metrics(job)


def test_job_dirs_export_without_an_execution_db(cli, home, tmp_path):
    inv_dir = home.jobs[0].directory.parent
    run = cli(
        "export",
        "--job-dir",
        inv_dir,
        "--output-dir",
        tmp_path / "o",
        "--exec-db",
        tmp_path / "none.jsonl",
        exec_db=False,
    )
    assert run.code == 0, run.err
    assert sorted(summary(tmp_path / "o")) == [j.job_id for j in home.jobs[:3]]


def test_the_installed_command_runs_and_its_exit_code_says_so(home, tmp_path):
    env = {**os.environ, "EVALPORT_EXEC_DB": str(home.exec_db)}
    ok = subprocess.run(
        ["evalport", "export", home.invocation_ids[0], "--output-dir", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        ["evalport", "export", "0000000000000000"], capture_output=True, text=True, env=env, timeout=120
    )
    assert bad.returncode == 2


def test_concurrent_exports_into_one_summary_lose_nothing(home, tmp_path):
    env = {**os.environ, "EVALPORT_EXEC_DB": str(home.exec_db)}
    out = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "evalport.app.cli", "export", job.job_id, "--output-dir", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for job in home.jobs
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert sorted(summary(out)) == sorted(j.job_id for j in home.jobs)


def test_summaries_are_readable_by_others_like_any_new_file(cli, home, tmp_path):
    out = tmp_path / "o"
    assert cli("export", home.invocation_ids[0], "--output-dir", out).code == 0
    mode = (out / "results.json").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044, oct(mode)


@pytest.mark.parametrize("flag", [("--output-dir", ""), ("-o", "export.local.output_dir=''")])
def test_an_empty_output_dir_is_a_configuration_error_and_writes_nothing(
    cli, home, tmp_path, monkeypatch, flag
):
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    run = cli("export", home.invocation_ids[0], *flag)
    assert run.code == 2, run.err
    assert "output_dir" in run.err and "empty" in run.err
    assert list(here.iterdir()) == []


def test_a_model_id_a_spreadsheet_would_evaluate_is_text_in_results_csv(tmp_path):
    from evalport.app.cli import main
    from evalport.testing.factory import write_launcher_home

    formula = '=HYPERLINK("http://evil.invalid","click")'
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=2, models=[formula])
    out = tmp_path / "o"
    args = ["export", home.invocation_ids[0], "--output-dir", str(out), "--format", "csv"]
    assert main([*args, "--exec-db", str(home.exec_db)]) == 0
    assert main([*args, "--exec-db", str(home.exec_db)]) == 0
    import csv

    rows = list(csv.DictReader((out / "results.csv").open(newline="")))
    assert sorted(r["job_id"] for r in rows) == sorted(j.job_id for j in home.jobs)
    assert {r["model_id"] for r in rows} == {"'" + formula}
