"""Execution-DB lines are validated before they become jobs; a bad line is a warning naming file, line and field."""

from __future__ import annotations

import json

import pytest

from evalport.adapters.sources.execdb import read_exec_db
from evalport.adapters.sources.local import LocalSource

INV = "0123456789abcdef"


def record(**changes):
    rec = {
        "invocation_id": INV,
        "job_id": f"{INV}.0",
        "timestamp": 1767225600.5,
        "executor": "local",
        "data": {"output_dir": "/results/gsm8k.0"},
        "config": {"evaluation": {"tasks": [{"name": "gsm8k"}]}},
    }
    rec.update(changes)
    return rec


def write_db(path, *records):
    def line(r):
        return r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode()

    path.write_bytes(b"".join(line(r) + b"\n" for r in records))
    return path


BAD_LINES = {
    "data is a string": (record(data="oops"), "data"),
    "config is a list": (record(config=[1, 2]), "config"),
    "job_id is a number": (record(job_id=5), "job_id"),
    "invocation_id is a mapping": (record(invocation_id={"a": 1}), "invocation_id"),
    "timestamp is words": (record(timestamp="yesterday"), "timestamp"),
    "timestamp is a bool": (record(timestamp=True), "timestamp"),
    "timestamp is not finite": (
        f'{{"invocation_id": "{INV}", "job_id": "{INV}.0", "timestamp": NaN}}',
        "timestamp",
    ),
    "a NUL in the output dir": (record(data={"output_dir": "/results/x\x00y"}), "data.output_dir"),
    "a NUL in the remote run dir": (
        record(data={"remote_rundir_path": "/r/\x00"}),
        "data.remote_rundir_path",
    ),
    "the output dir is a number": (record(data={"output_dir": 7}), "data.output_dir"),
    "a host that is an ssh option": (record(data={"hostname": "-oProxyCommand=sh"}), "data.hostname"),
    "a traversing invocation id": (record(invocation_id="../../etc", job_id="../../etc.0"), "invocation_id"),
    "an absolute job id": (record(job_id=f"/{INV}.0"), "job_id"),
    "a backslash": (record(invocation_id="a\\b", job_id="a\\b.0"), "invocation_id"),
    "a dot-dot invocation": (record(invocation_id="..", job_id="...0"), "invocation_id"),
    "a NUL in the job id": (record(job_id=f"{INV}.\x00"), "job_id"),
    "an id over 255 characters": (record(invocation_id="a" * 300, job_id="a" * 300 + ".0"), "invocation_id"),
    "a job id of another invocation": (record(job_id="fedcba9876543210.0"), "job_id"),
    "a job id without an index": (record(job_id=f"{INV}."), "job_id"),
    "a JSON list": ("[1, 2, 3]", "not an object"),
    "not JSON": ("{oops", "not valid JSON"),
    "not UTF-8": (b'{"job_id": "\xff"}', "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_malformed_line_is_skipped_with_a_warning_naming_the_file_the_line_and_the_field(tmp_path, case):
    bad, field = BAD_LINES[case]
    good = record(job_id=f"{INV}.1")
    db = write_db(tmp_path / "exec.v1.jsonl", good, bad)
    got = read_exec_db(db)
    assert list(got.records) == [f"{INV}.1"]
    (warning,) = got.warnings
    assert warning.startswith(f"{db}:2: ") and field in warning


def test_a_later_bad_line_never_replaces_the_earlier_good_one(tmp_path):
    db = write_db(tmp_path / "db.jsonl", record(), record(data="broken"), record(timestamp="soon"))
    got = read_exec_db(db)
    assert got.records[f"{INV}.0"].data == {"output_dir": "/results/gsm8k.0"}
    assert len(got.warnings) == 2


def test_a_numeric_string_timestamp_and_missing_parts_are_accepted(tmp_path):
    db = write_db(
        tmp_path / "db.jsonl",
        record(timestamp="1767225600.25"),
        {"invocation_id": INV, "job_id": f"{INV}.1", "data": None, "config": None, "executor": None},
    )
    got = read_exec_db(db)
    assert got.records[f"{INV}.0"].timestamp == 1767225600.25
    lean = got.records[f"{INV}.1"]
    assert (lean.data, lean.config, lean.executor, lean.timestamp) == ({}, {}, "local", None)


@pytest.mark.parametrize(
    "config",
    [
        {"evaluation": [1, 2]},
        {"evaluation": {"tasks": {"name": "gsm8k"}}},
        {"evaluation": {"tasks": ["gsm8k", 3]}},
        {"evaluation": {"tasks": [{"name": {"nested": 1}}]}},
        {"evaluation": "gsm8k", "target": "a model"},
        {"target": {"api_endpoint": ["x"]}},
        {"target": {"api_endpoint": {"model_id": 42}}},
    ],
    ids=repr,
)
def test_config_parts_of_the_wrong_shape_are_ignored_and_the_task_falls_back_to_the_job_dir(tmp_path, config):
    db = write_db(tmp_path / "db.jsonl", record(config=config))
    (job,) = LocalSource(db).list_jobs()
    assert job.task_name == "gsm8k"  # from /results/gsm8k.0
    assert job.model_id is None


@pytest.mark.timeout(20)
def test_an_unreadable_or_special_execution_db_is_a_warning_not_a_crash(tmp_path):
    import os

    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    got = read_exec_db(fifo)
    assert got.records == {} and "not a regular file" in got.warnings[0]


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"evaluation": [{"name": "gsm8k"}]}, "config.evaluation is a list"),
        ({"evaluation": {"tasks": {"name": "gsm8k"}}}, "config.evaluation.tasks is a dict"),
        ({"evaluation": {"tasks": ["gsm8k"]}}, "entries that are not mappings"),
        ({"target": {"api_endpoint": "http://x"}}, "config.target.api_endpoint"),
    ],
)
def test_a_config_part_of_the_wrong_shape_is_a_warning_naming_the_line_and_the_job_is_kept(
    tmp_path, config, named
):
    from evalport.adapters.sources.execdb import read_exec_db

    db = tmp_path / "exec.v1.jsonl"
    record = {"invocation_id": "abcd1234abcd1234", "job_id": "abcd1234abcd1234.0", "config": config}
    db.write_text(json.dumps(record) + "\n")
    got = read_exec_db(db)
    assert list(got.records) == ["abcd1234abcd1234.0"]
    assert any(f"{db}:1:" in w and named in w and "abcd1234abcd1234.0" in w for w in got.warnings), (
        got.warnings
    )
