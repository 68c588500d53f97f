"""Resolving ids reads only the execution-DB lines that could name them, and no spelling of a line
hides a wanted job from that read."""

from __future__ import annotations

import json

import pytest

from evalport.adapters.sources.execdb import read_exec_db, wanted_prefixes
from evalport.adapters.sources.local import LocalSource
from tests.unit.test_execdb_records import BAD_LINES, INV, record, write_db

WANTED = "aaaa1111"
OTHER = "bbbb2222"


def _job(inv: str, idx: int, **changes):
    return record(
        invocation_id=inv, job_id=f"{inv}.{idx}", data={"output_dir": f"/r/{inv}/t.{idx}"}, **changes
    )


def _looking(db):
    source = LocalSource(exec_db=db)
    source.only_wanted_lines = True  # as show and ls <ids> set it
    return source


def _same_as_a_full_read(db, ids):
    full = read_exec_db(db)
    prefixes = wanted_prefixes(ids)
    expected = {k: v for k, v in full.records.items() if k.startswith(prefixes)}
    got = read_exec_db(db, prefixes)
    assert list(got.records) == list(expected) and got.records == expected
    return got


def test_a_wanted_read_gives_exactly_the_wanted_records_of_a_full_read_in_order(tmp_path):
    lines = [_job(OTHER, 0), _job(WANTED, 1), _job(WANTED, 0), _job(OTHER, 1), _job(WANTED, 1, executor="x")]
    got = _same_as_a_full_read(write_db(tmp_path / "db.jsonl", *lines), [WANTED[:4]])
    assert got.records[f"{WANTED}.1"].executor == "x" and got.unread


def test_a_wanted_job_spelled_with_unicode_escapes_is_still_found(tmp_path):
    escaped = json.dumps(_job(WANTED, 0)).replace(f'"{WANTED}.0"', '"\\u0061aaa1111.0"')
    got = _same_as_a_full_read(write_db(tmp_path / "db.jsonl", _job(OTHER, 0), escaped), [WANTED])
    assert list(got.records) == [f"{WANTED}.0"]


def test_a_wanted_job_whose_key_is_spaced_unusually_is_still_found(tmp_path):
    spaced = json.dumps(_job(WANTED, 0), separators=(",", " :  "))
    got = _same_as_a_full_read(write_db(tmp_path / "db.jsonl", _job(OTHER, 0), spaced), [WANTED])
    assert list(got.records) == [f"{WANTED}.0"]


def test_an_id_holding_a_quote_is_found_as_json_spells_it(tmp_path):
    inv = 'q"uote'
    got = _same_as_a_full_read(write_db(tmp_path / "db.jsonl", _job(OTHER, 0), _job(inv, 0)), ['q"u'])
    assert list(got.records) == [f"{inv}.0"]


@pytest.mark.parametrize(("raw", "field"), BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_later_bad_line_of_a_wanted_job_never_replaces_its_good_one(tmp_path, raw, field):
    text = raw if isinstance(raw, (str, bytes)) else json.dumps(raw)
    bad = (
        text.replace(INV.encode(), WANTED.encode()) if isinstance(text, bytes) else text.replace(INV, WANTED)
    )
    db = write_db(tmp_path / "db.jsonl", _job(WANTED, 0), _job(OTHER, 0), bad)
    got = _same_as_a_full_read(db, [WANTED])
    assert got.records[f"{WANTED}.0"].data == {"output_dir": f"/r/{WANTED}/t.0"}


def test_only_corrupt_lines_that_could_name_a_wanted_job_are_reported_by_a_resolve_with_their_line(tmp_path):
    db = write_db(
        tmp_path / "db.jsonl",
        _job(WANTED, 0),
        json.dumps(_job(OTHER, 1))[:-5],
        "{broken",
        json.dumps(_job(WANTED, 2))[:-5],
    )
    source = _looking(db)
    jobs, errors = source.resolve([WANTED])
    assert [j.job_id for j in jobs] == [f"{WANTED}.0"] and not errors
    assert [w.split(": ", 1)[0] for w in source.warnings] == [f"{db}:4"]
    everything = LocalSource(exec_db=db).warnings
    assert [w.split(": ", 1)[0] for w in everything] == [f"{db}:2", f"{db}:3", f"{db}:4"]


def test_an_id_no_line_names_gets_the_same_error_as_before(tmp_path):
    db = write_db(tmp_path / "db.jsonl", _job(OTHER, 0))
    jobs, errors = _looking(db).resolve(["cccc"])
    assert not jobs and [type(e).__name__ for e in errors] == ["UnknownIdError"]
    assert "holds no jobs" not in str(errors[0])


def test_an_id_with_nothing_before_its_dot_reads_every_line():
    assert wanted_prefixes([".3"]) is None and wanted_prefixes([" "]) is None
    assert wanted_prefixes([f"{WANTED}.2", WANTED, "bb"]) == (WANTED, "bb")


def test_many_wanted_ids_read_every_line_and_give_the_same_records(tmp_path):
    invs = [f"{n:04d}cafe" for n in range(40)]
    db = write_db(tmp_path / "db.jsonl", *(_job(inv, 0) for inv in invs), _job(OTHER, 0))
    got = _same_as_a_full_read(db, invs[:30])
    assert len(got.records) == 30 and not got.unread


def test_by_default_a_resolve_still_reports_every_corrupt_line_of_the_db(tmp_path):
    db = write_db(tmp_path / "db.jsonl", _job(WANTED, 0), json.dumps(_job(OTHER, 1))[:-5], "garbage")
    source = LocalSource(exec_db=db)
    jobs, _ = source.resolve([WANTED])
    assert [j.job_id for j in jobs] == [f"{WANTED}.0"]
    assert [w.split(": ", 1)[0] for w in source.warnings] == [f"{db}:2", f"{db}:3"]


def test_show_and_ls_with_ids_turn_the_wanted_read_on_only_for_sources_that_have_it():
    from evalport.app.cli_inspect import _read_only_wanted_lines

    local, plugin = LocalSource(exec_db="/nonexistent"), object()
    _read_only_wanted_lines(local)
    _read_only_wanted_lines(plugin)
    assert local.only_wanted_lines and not LocalSource.only_wanted_lines
    assert not hasattr(plugin, "only_wanted_lines")


def test_a_lookup_through_the_service_reads_only_the_lines_that_can_name_its_ids(tmp_path):
    from evalport.app.container import build_container

    db = write_db(tmp_path / "db.jsonl", _job(WANTED, 0), json.dumps(_job(OTHER, 1))[:-5], "garbage")
    service = build_container(exec_db=db, ledger=False).service()
    jobs, errors = service.resolve([WANTED])
    assert [j.job_id for j in jobs] == [f"{WANTED}.0"] and errors == []
    assert service.source.warnings == [] and service.source.only_wanted_lines is False
    _, unknown = service.resolve(["deadbeef"])
    assert [type(e).__name__ for e in unknown] == ["UnknownIdError"]


def test_an_export_after_a_lookup_still_reports_every_corrupt_line(tmp_path):
    from evalport.app.container import build_container

    db = write_db(tmp_path / "db.jsonl", _job(WANTED, 0), json.dumps(_job(OTHER, 1))[:-5], "garbage")
    service = build_container(exec_db=db, ledger=False).service()
    service.resolve([WANTED])
    report = service.export([WANTED], "local", {"local": {"output_dir": str(tmp_path / "out")}})
    assert [n.split(": ", 1)[0] for n in report.notes if "corrupt" in n] == [f"{db}:2", f"{db}:3"]
