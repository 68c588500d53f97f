"""What the CLI prints when its output is not a terminal (pipes, files, CI logs), and its exit codes
for ids that name nothing."""

from __future__ import annotations

import re

import pytest


def test_a_failure_reason_longer_than_80_columns_is_printed_whole_on_the_job_s_line(cli, home, tmp_path):
    blocker = tmp_path / ("a-folder-name-long-enough-to-push-the-reason-past-eighty-columns-" * 2)
    blocker.write_text("a file where the output directory should be")
    out = blocker / "results"
    run = cli("export", home.invocation_ids[0], "--output-dir", out)
    assert run.code == 1
    lines = [line for line in run.err.splitlines() if home.invocation_ids[0] in line]
    assert len(lines) == 3, run.err
    assert all(str(out) in line and "failed" in line for line in lines), run.err


def test_text_from_data_that_looks_like_markup_is_printed_as_written(cli, home, tmp_path):
    (tmp_path / "[bold]x[").mkdir()
    blocker = tmp_path / "[bold]x[" / "oops]"  # the path reads "[bold]x[/oops]": a stray closing tag
    blocker.write_text("not a folder")
    run = cli("export", home.invocation_ids[0], "--output-dir", blocker / "out")
    assert run.code == 1
    assert "Traceback" not in run.err
    assert str(blocker / "out") in run.err


def test_a_usage_error_longer_than_80_columns_is_one_line(cli):
    run = cli("export", "deadbeefdeadbeef", "cafecafecafecafe")
    assert run.code == 2
    (line,) = run.err.strip().splitlines()
    assert "deadbeefdeadbeef" in line and "cafecafecafecafe" in line and "evalport ls" in line


@pytest.mark.parametrize("command", ["export", "show", "ls"])
def test_ids_that_all_name_nothing_are_a_usage_error_for_every_command(cli, tmp_path, command):
    run = cli(command, "deadbeefdeadbeef", *(["--output-dir", tmp_path / "o"] if command == "export" else []))
    assert run.code == 2, run.err
    assert "deadbeefdeadbeef" in run.err and "evalport ls" in run.err


@pytest.mark.parametrize("command", ["export", "show"])
def test_an_unknown_id_beside_a_known_one_is_an_error_and_the_known_one_is_handled(
    cli, home, tmp_path, command
):
    extra = ["--output-dir", tmp_path / "o"] if command == "export" else []
    run = cli(command, "deadbeefdeadbeef", home.jobs[0].job_id, *extra)
    assert run.code == 1
    assert "deadbeefdeadbeef" in run.err


def test_a_job_whose_results_overflow_a_float_fails_the_export_with_a_line_not_a_traceback(
    cli, home, tmp_path
):
    bad = home.jobs[0]
    results = bad.directory / "artifacts" / "results.yml"
    results.write_text(re.sub(r"value: \S+", "value: " + "9" * 400, results.read_text(), count=1))
    run = cli("export", bad.job_id, "--output-dir", tmp_path / "o")
    assert run.code == 1
    assert "Traceback" not in run.err and run.err.strip()


def test_a_run_name_template_given_with_o_is_accepted(cli, home, tmp_path):
    run = cli(
        "export",
        home.jobs[0].job_id,
        "--dest",
        "mlflow",
        "--dry-run",
        "-o",
        "export.mlflow.run_name={model_id}-{task}",
        "-o",
        f"export.mlflow.tracking_uri=sqlite:///{tmp_path / 'm.db'}",
    )
    assert run.code == 0, run.err
    assert "planned" in run.out or "would export" in run.out
