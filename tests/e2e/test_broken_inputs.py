"""Broken and hostile inputs through the CLI: each bad job is named with its file, every good job still exports.

Bad execution-DB lines, hostile results.yml files (recursive aliases, nested anchors, huge numbers,
duplicate keys, deep nesting, oversized files), FIFOs where files belong, symlinked folders, and
``--job-dir`` paths that are no job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalport.testing.factory import LauncherHome, append_records, write_launcher_home

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> LauncherHome:
    """Nine jobs in three invocations; warnings printed on one line each (no wrapping)."""
    monkeypatch.setenv("COLUMNS", "1000")
    return write_launcher_home(tmp_path / "launcher", invocations=3, tasks_per_invocation=3, seed=3)


def summary(out_dir: Path) -> dict[str, dict]:
    return {r["job_id"]: r for r in json.loads((out_dir / "results.json").read_text())["runs"]}


def reasons(run) -> dict[str, str]:
    return {o["job_id"]: o["reason"] for o in json.loads(run.out)["outcomes"] if o["status"] == "failed"}


def assert_no_traceback(run) -> None:
    for text in (run.out, run.err):
        assert "Traceback" not in text and "RecursionError" not in text and "OverflowError" not in text


def test_ls_and_export_survive_every_kind_of_malformed_execution_db_line(cli, home, tmp_path):
    inv = home.invocation_ids[0]
    good = home.jobs[0].record
    bad_lines = [
        {**good, "data": "a string"},
        {**good, "config": "a string"},
        {**good, "config": {"evaluation": [1, 2]}, "job_id": f"{inv}.7"},
        {**good, "config": {"evaluation": {"tasks": {"name": "x"}}}, "job_id": f"{inv}.8"},
        {**good, "config": {"evaluation": {"tasks": ["x", 1]}}, "job_id": f"{inv}.9"},
        {**good, "timestamp": "yesterday"},
        {**good, "data": {"output_dir": "/tmp/x\x00y"}},
        {**good, "invocation_id": "../../escape", "job_id": "../../escape.0"},
        {**good, "job_id": 12},
    ]
    append_records(home.exec_db, bad_lines)
    with open(home.exec_db, "a") as fh:
        fh.write("{not json\n[1, 2]\n")

    listed = cli("ls", "--json")
    assert listed.code == 0, listed.err
    jobs = {j["job_id"]: j for inv_ in json.loads(listed.out) for j in inv_["jobs"]}
    assert set(jobs) >= {j.job_id for j in home.jobs}
    assert "escape" not in listed.out
    # a bad line never replaces the good record of the same job
    assert jobs[good["job_id"]]["path"] == good["data"]["output_dir"]
    # 8 lines skipped, and 3 kept whose config parts of the wrong shape are ignored, each named
    assert listed.err.count(f"{home.exec_db}:") == 8 + 3
    assert listed.err.count("that part is ignored") == 3
    timestamp_line = len(home.jobs) + 6
    assert f"{home.exec_db}:{timestamp_line}: skipped a corrupt execution-DB line: timestamp:" in listed.err
    assert_no_traceback(listed)

    out = tmp_path / "out"
    run = cli("export", *home.invocation_ids, "--output-dir", out, "--json")
    assert_no_traceback(run)
    exported = summary(out)
    assert {j.job_id for j in home.jobs} <= set(exported)
    # the odd-config jobs point at a real job dir, so they export too, with the task from the dir name
    assert exported[f"{inv}.7"]["task"] == home.jobs[0].task
    assert not (tmp_path / "escape").exists() and not any(p.name == "escape.0" for p in tmp_path.rglob("*"))


def hostile_results(kind: str) -> bytes:
    head = b"config: {type: t}\nresults:\n  tasks:\n    t:\n      metrics:\n        acc:\n          scores:\n"
    if kind == "recursive alias":
        return b"results: &r\n  tasks:\n    t: *r\n"
    if kind == "huge value":
        return head + b"            acc: {value: " + b"9" * 400 + b"}\n"
    if kind == "huge stderr":
        return head + b"            acc: {value: 0.5, stats: {stderr: " + b"7" * 400 + b"}}\n"
    if kind == "billion laughs":
        lines = [b"a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [b"a%d: &a%d [%s]" % (i, i, b", ".join([b"*a%d" % (i - 1)] * 10)) for i in range(1, 10)]
        return b"\n".join(lines) + b"\nresults: {tasks: {t: {metrics: {x: *a9}}}}\n"
    if kind == "duplicate key":
        return head + b"            acc: {value: 0.5}\n            acc: {value: 0.9}\n"
    if kind == "deep nesting":
        return b"results: " + b"[" * 200000 + b"]" * 200000 + b"\n"
    raise AssertionError(kind)


HOSTILE = {
    "recursive alias": "recursive alias",
    "huge value": "out of range",
    "huge stderr": "out of range",
    "billion laughs": "aliases are expanded",
    "duplicate key": "duplicate key 'acc'",
    "deep nesting": "nested deeper",
}


def test_hostile_results_files_fail_only_their_own_job_naming_the_file_and_line(cli, home, tmp_path):
    victims = dict(zip(HOSTILE, home.jobs, strict=False))
    for kind, job in victims.items():
        (job.directory / "artifacts" / "results.yml").write_bytes(hostile_results(kind))
    out = tmp_path / "out"
    run = cli("export", *home.invocation_ids, "--output-dir", out, "--json")
    assert run.code == 1
    assert_no_traceback(run)
    failed = reasons(run)
    for kind, job in victims.items():
        assert HOSTILE[kind] in failed[job.job_id], (kind, failed[job.job_id])
        assert str(job.directory / "artifacts" / "results.yml") in failed[job.job_id]
    assert "line" in failed[victims["duplicate key"].job_id]
    good = {j.job_id for j in home.jobs} - {j.job_id for j in victims.values()}
    assert good and set(summary(out)) == good


def test_a_results_file_over_the_size_limit_is_refused_and_the_variable_named(
    cli, home, tmp_path, monkeypatch
):
    monkeypatch.setenv("EVALPORT_YAML_MAX_BYTES", "100000")
    big = home.jobs[0].directory / "artifacts" / "results.yml"
    big.write_text(big.read_text() + "padding: '" + "x" * 200000 + "'\n")
    run = cli("export", home.invocation_ids[0], "--output-dir", tmp_path / "o", "--json")
    assert run.code == 1
    assert "EVALPORT_YAML_MAX_BYTES" in reasons(run)[home.jobs[0].job_id]
    assert len(summary(tmp_path / "o")) == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "where",
    [
        "logs/stage.exit",
        "artifacts/eval_factory_metrics.json",
        "artifacts/results.yml",
        "artifacts/run_config.yml",
        "artifacts/metadata.yaml",
    ],
)
def test_a_fifo_where_a_file_belongs_never_hangs_ls_or_export(cli, home, tmp_path, where):
    job = home.jobs[0]
    target = job.directory / where
    target.unlink()
    os.mkfifo(target)
    assert cli("ls").code == 0
    out = tmp_path / "out"
    run = cli("export", job.invocation_id, "--output-dir", out, "--json")
    assert_no_traceback(run)
    others = {j.job_id for j in home.jobs if j.invocation_id == job.invocation_id} - {job.job_id}
    assert others <= set(summary(out))
    if where in ("artifacts/results.yml", "artifacts/run_config.yml"):
        assert "is a FIFO" in reasons(run)[job.job_id]
    elif where == "logs/stage.exit":
        assert job.job_id not in summary(out)
    else:
        assert job.job_id in summary(out)
    # a job dir given directly (no execution DB) reads its config from metadata.yaml
    direct = cli(
        "export", "--job-dir", job.directory, "--output-dir", tmp_path / "direct", "--json", exec_db=False
    )
    assert_no_traceback(direct)
    assert direct.code == run.code


def test_a_logs_folder_linked_outside_the_job_is_not_followed(cli, home, tmp_path):
    job = home.jobs[0]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.log").write_text("not part of the job\n")
    logs = job.directory / "logs"
    for f in logs.iterdir():
        f.unlink()
    logs.rmdir()
    logs.symlink_to(outside, target_is_directory=True)
    out = tmp_path / "out"
    run = cli("export", f"{job.job_id}", "--output-dir", out, "--copy-logs", "--include-failed", "--json")
    assert_no_traceback(run)
    assert not [p for p in out.rglob("private.log")]


def test_an_artifacts_folder_linked_elsewhere_fails_its_job_saying_so(cli, home, tmp_path):
    job = home.jobs[0]
    moved = tmp_path / "moved-artifacts"
    (job.directory / "artifacts").rename(moved)
    (job.directory / "artifacts").symlink_to(moved, target_is_directory=True)
    run = cli("export", job.invocation_id, "--output-dir", tmp_path / "o", "--json")
    assert run.code == 1
    assert "artifacts/ is a symbolic link" in reasons(run)[job.job_id]
    assert len(summary(tmp_path / "o")) == 2


@pytest.mark.parametrize("kind", ["missing", "etc-like", "empty", "a file"])
def test_a_job_dir_that_is_no_job_is_a_usage_error_naming_the_path(cli, tmp_path, kind):
    path = tmp_path / kind
    if kind == "etc-like":
        (path / "ssl").mkdir(parents=True)
        (path / "hosts").write_text("127.0.0.1 localhost\n")
    elif kind == "empty":
        path.mkdir()
    elif kind == "a file":
        path.write_text("x")
    run = cli("export", "--job-dir", path, "--output-dir", tmp_path / "o", exec_db=False)
    assert run.code == 2, run.out + run.err
    assert str(path) in run.err and "unknown" not in run.out + run.err
    assert not (tmp_path / "o" / "results.json").exists()
    listed = cli("ls", "--json", "--job-dir", path, exec_db=False)
    assert listed.code == 2, listed.out + listed.err
    assert listed.out.strip() in ("", "[]")  # no made-up job
    assert str(path) in listed.err


def test_a_bad_job_dir_beside_a_good_one_is_reported_and_the_good_one_exports(cli, home, tmp_path):
    good = home.jobs[0].directory
    run = cli("export", "--job-dir", good, "--job-dir", tmp_path / "nope", "--output-dir", tmp_path / "o")
    assert run.code == 1
    assert str(tmp_path / "nope") in run.out + run.err
    assert list(summary(tmp_path / "o")) == [home.jobs[0].job_id]


@pytest.mark.timeout(60)
def test_a_log_that_is_a_fifo_is_named_in_a_note_as_not_sent(cli, home, tmp_path):
    job = home.jobs[0]
    os.mkfifo(job.directory / "logs" / "live.pipe")
    out = tmp_path / "out"
    run = cli("export", job.job_id, "--output-dir", out, "--copy-logs", "--json")
    assert run.code == 0, run.out + run.err
    report = json.loads(run.out)
    assert [o["status"] for o in report["outcomes"]] == ["exported"]
    assert any(job.job_id in n and "logs/live.pipe (a FIFO)" in n for n in report["notes"]), report["notes"]
    assert not list(out.rglob("live.pipe"))
