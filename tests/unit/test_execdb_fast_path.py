"""Well-formed execution-DB lines are checked without pydantic, with the same result; the DB is read
backwards so superseded lines are not parsed, and no trick of a line makes it hide another job."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalport.adapters.sources.execdb import named_job, read_exec_db
from evalport.adapters.sources.record_model import validated_record
from evalport.adapters.sources.records import well_formed_record
from tests.unit.test_execdb_records import BAD_LINES, INV, record, write_db

WELL_FORMED = {
    "as the launcher writes it": record(),
    "an integer timestamp": record(timestamp=1767225600),
    "no timestamp": record(timestamp=None),
    "executor null": record(executor=None),
    "no data, no config": {"invocation_id": INV, "job_id": f"{INV}.3"},
    "data and config null": record(data=None, config=None),
    "a remote job": record(data={"remote_rundir_path": "/lustre/r", "hostname": "login", "username": "me"}),
    "extra keys": record(status="done", extra={"a": 1}),
}


@pytest.mark.parametrize("raw", WELL_FORMED.values(), ids=WELL_FORMED.keys())
def test_a_well_formed_line_gives_the_record_the_model_gives(raw):
    fast = well_formed_record(raw)
    assert fast is not None
    assert fast == validated_record(raw)


_DATA_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["/results/gsm8k.0", "", "/r/\x00", "-oProxy", "login", "me"]),
    st.integers(0, 2),
)
_DATA_KEYS = ("output_dir", "remote_rundir_path", "hostname", "username", "container")


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(st.sampled_from(_DATA_KEYS), _DATA_VALUES, max_size=5),
    job_tail=st.sampled_from(["0", "12", "x.1", ""]),
)
def test_any_data_of_a_line_is_accepted_as_the_model_accepts_it(data, job_tail):
    raw = record(data=data, job_id=f"{INV}.{job_tail}" if job_tail else INV)
    fast = well_formed_record(raw)
    try:
        slow = validated_record(raw)
    except ValueError:
        slow = None
    assert fast == slow  # None: both refuse it (the model then names the field)


def _decoded_object(raw):
    try:
        decoded = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


BAD_OBJECTS = {k: (o, f) for k, (v, f) in BAD_LINES.items() if (o := _decoded_object(v)) is not None}


@pytest.mark.parametrize(("raw", "field"), BAD_OBJECTS.values(), ids=BAD_OBJECTS.keys())
def test_every_bad_line_is_left_to_the_model_which_names_the_field(raw, field):
    assert well_formed_record(raw) is None
    with pytest.raises(ValueError, match=field.split(".")[0]):
        validated_record(raw)


def test_a_numeric_string_timestamp_goes_through_the_model_and_is_accepted():
    raw = record(timestamp="1767225600.5")
    assert well_formed_record(raw) is None
    assert validated_record(raw).timestamp == 1767225600.5


def test_the_last_valid_line_of_a_job_wins_and_jobs_keep_their_first_order(tmp_path):
    db = write_db(
        tmp_path / "db.jsonl",
        record(job_id=f"{INV}.1", data={"output_dir": "/r/old1"}),
        record(job_id=f"{INV}.0", data={"output_dir": "/r/only0"}),
        record(job_id=f"{INV}.1", data={"output_dir": "/r/new1"}),
        b"{not json",
    )
    got = read_exec_db(db)
    assert list(got.records) == [f"{INV}.1", f"{INV}.0"]
    assert got.records[f"{INV}.1"].data["output_dir"] == "/r/new1"
    assert len(got.warnings) == 1 and f"{db}:4:" in got.warnings[0]


def test_a_corrupt_last_line_does_not_replace_the_valid_one_before_it(tmp_path):
    db = write_db(tmp_path / "db.jsonl", record(), record(data="oops"))
    got = read_exec_db(db)
    assert got.records[f"{INV}.0"].data == {"output_dir": "/results/gsm8k.0"}
    assert [w.split(": ", 1)[0] for w in got.warnings] == [f"{db}:2"]


def test_a_line_naming_its_job_twice_is_parsed_not_taken_at_its_first_word(tmp_path):
    other = f"{INV}.7"
    twice = json.dumps(record())[:-1] + f', "job_id": "{other}"}}'
    db = write_db(tmp_path / "db.jsonl", twice, record())
    assert named_job(twice.encode()) is None
    assert set(read_exec_db(db).records) == {f"{INV}.0", other}


def test_a_line_spelling_the_key_with_an_escape_is_parsed(tmp_path):
    other = f"{INV}.8"
    escaped = json.dumps(record())[:-1] + f', "job\\u005fid": "{other}"}}'
    db = write_db(tmp_path / "db.jsonl", escaped, record())
    assert named_job(escaped.encode()) is None
    assert set(read_exec_db(db).records) == {f"{INV}.0", other}


def test_a_well_formed_db_is_read_without_importing_pydantic(tmp_path):
    db = write_db(tmp_path / "db.jsonl", record(), record(job_id=f"{INV}.1"))
    code = (
        "import sys; from pathlib import Path; from evalport.adapters.sources.execdb import read_exec_db; "
        f"assert len(read_exec_db(Path({str(db)!r})).records) == 2; print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
