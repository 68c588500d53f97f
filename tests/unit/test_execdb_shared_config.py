"""An invocation's config, written on each of its jobs' lines, is decoded once: the records read are
exactly those of decoding every line whole, whatever a line holds."""

from __future__ import annotations

import json

import pytest

from evalport.adapters.sources.execdb import read_exec_db
from evalport.testing.factory import write_launcher_home

INV = "0123456789abcdef"
CONFIG = '{"evaluation": {"tasks": [{"name": "gsm8k"}, {"name": "mmlu"}]}, "target": {"model": "m"}}'


def line(job: int, middle: str = "", config: str = CONFIG, tail: str = "") -> str:
    return (
        f'{{"invocation_id": "{INV}", "job_id": "{INV}.{job}", "timestamp": 1767225600.5, '
        f'"executor": "local", "data": {{"output_dir": "/r/t.{job}"}}{middle}, "config": {config}{tail}}}'
    )


def read(tmp_path, *lines: str):
    db = tmp_path / "exec.v1.jsonl"
    db.write_text("".join(f"{text}\n" for text in lines))
    return read_exec_db(db)


def whole(text: str) -> dict:
    return json.loads(text)


ODD_LINES = {
    "a nested config key in data": line(0, middle=', "more": {"config": {"x": 1}}'),
    "a nested config key inside the config": line(0, config='{"nemo": {"config": {"params": {"p": 1}}}}'),
    "the config not the last key": line(0, tail=', "extra": {"a": 1}'),
    "a second config key after it": line(0, tail=', "config": {"second": true}'),
    "a config key spelled with an escape first": line(0, middle=', "con\\u0066ig": {"first": 1}'),
    "a key ending in an escaped quote and config": line(0, middle=', "x\\"config": {"not": "it"}'),
    "an empty config": line(0, config="{}"),
    "a string holding the key's text": line(0, middle=', "note": "say \\"config\\": {\\"a\\": 1}"'),
}


ODD_LINES["an escaped config key first, a key ending in an escaped quote last"] = (
    f'{{"invocation_id": "{INV}", "job_id": "{INV}.0", "data": {{}}, "con\\u0066ig": {{}}, '
    '"x\\"config": {"evaluation": {"tasks": [{"name": "wrong"}]}}}'
)
ODD_LINES["an empty config first, a key ending in an escaped quote last"] = (
    f'{{"invocation_id": "{INV}", "job_id": "{INV}.0", "data": {{}}, "config":{{}}, '
    '"x\\"config": {"evaluation": {"tasks": [{"name": "wrong"}]}}}'
)


@pytest.mark.parametrize("text", ODD_LINES.values(), ids=ODD_LINES.keys())
def test_an_odd_line_reads_as_the_whole_line_decodes(tmp_path, text):
    db = read(tmp_path, text)
    expected = whole(text)
    [rec] = db.records.values()
    assert rec.config == expected["config"]
    assert rec.data == expected["data"]


def test_a_config_key_given_twice_keeps_the_last_as_a_whole_decode_does(tmp_path):
    text = line(0, middle=', "config": {"first": 1}')
    [rec] = read(tmp_path, text).records.values()
    assert rec.config == whole(text)["config"] == json.loads(CONFIG)


def test_a_corrupt_config_is_the_same_warning_as_before(tmp_path):
    text = line(0, config='{"evaluation": {"tasks": [}')
    db = read(tmp_path, text)
    assert db.records == {}
    [warning] = db.warnings
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        assert f"at column {exc.colno}" in warning


def test_the_jobs_of_an_invocation_read_their_configs_equal_and_every_field_as_written(tmp_path):
    texts = [line(job) for job in range(3)]
    db = read(tmp_path, *texts)
    assert [r.config for r in db.records.values()] == [whole(t)["config"] for t in texts]
    assert [r.job_id for r in db.records.values()] == [f"{INV}.{job}" for job in range(3)]


def test_a_realistic_db_reads_as_decoding_each_line_whole(tmp_path):
    home = write_launcher_home(tmp_path / "home", invocations=3, tasks_per_invocation=4, profile="realistic")
    db_path = home.exec_db
    records = read_exec_db(db_path).records
    expected = [json.loads(t) for t in db_path.read_text().splitlines() if t.strip()]
    assert len(records) == len(expected) == 12
    for raw in expected:
        rec = records[raw["job_id"]]
        assert (rec.config, rec.data, rec.timestamp) == (raw["config"], raw["data"], raw["timestamp"])
