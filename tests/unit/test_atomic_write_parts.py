"""A file written part by part appears whole or not at all: the old content stays until the last
part is written, and a failure on the way leaves neither a partial file nor a temp file."""

from __future__ import annotations

import os

import pytest

from evalport.adapters.files import atomic_write_text_parts


def test_the_parts_make_the_file_one_after_the_other(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_text_parts(path, (f"line {i} é\n" for i in range(1000)))
    assert path.read_text(encoding="utf-8") == "".join(f"line {i} é\n" for i in range(1000))


def test_a_failure_half_way_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("the old summary\n")
    os.chmod(path, 0o640)

    def parts():
        yield "a new head\n"
        raise RuntimeError("the disk went away")

    with pytest.raises(RuntimeError):
        atomic_write_text_parts(path, parts())
    assert path.read_text() == "the old summary\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_rewritten_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    atomic_write_text_parts(path, ["new\n"])
    assert path.read_text() == "new\n" and (path.stat().st_mode & 0o777) == 0o640
