"""Which exported jobs a local output folder still holds, decided from the folders themselves."""

from __future__ import annotations

import os

from evalport.adapters.sinks.local_layout import held_job_folders


def _exported(root, inv, job, file="result.json"):
    folder = root / inv / job
    folder.mkdir(parents=True)
    (folder / file).write_text("{}")
    return str(folder)


def test_a_job_folder_in_place_with_its_file_is_held(tmp_path):
    root = tmp_path / "out"
    located = {"a.0": _exported(root, "a", "a.0"), "a.1": _exported(root, "a", "a.1")}
    assert held_job_folders(str(root), located, None, "result.json") == {"a.0", "a.1"}


def test_a_deleted_file_or_folder_is_not_held(tmp_path):
    root = tmp_path / "out"
    located = {"a.0": _exported(root, "a", "a.0"), "a.1": _exported(root, "a", "a.1")}
    os.unlink(os.path.join(located["a.0"], "result.json"))
    (root / "a" / "a.1" / "result.json").unlink()
    (root / "a" / "a.1").rmdir()
    assert held_job_folders(str(root), located, None, "result.json") == set()


def test_a_symbolic_link_put_in_place_of_a_job_or_invocation_folder_holds_nothing(tmp_path):
    root = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    real = _exported(elsewhere, "b", "b.0")
    (root / "a").mkdir(parents=True)
    os.symlink(real, root / "a" / "a.0")
    os.symlink(elsewhere / "b", root / "c")
    located = {"a.0": str(root / "a" / "a.0"), "b.0": str(root / "c" / "b.0")}
    assert held_job_folders(str(root), located, None, "result.json") == set()


def test_a_location_outside_the_output_folder_or_under_another_name_is_not_held(tmp_path):
    root = tmp_path / "out"
    outside = _exported(tmp_path / "other", "a", "a.0")
    renamed = _exported(root, "a", "a.9")
    climbing = str(root / "a" / ".." / ".." / "other" / "a" / "a.0")
    located = {"a.0": outside, "a.1": renamed, "a.2": climbing}
    assert held_job_folders(str(root), located, None, "result.json") == set()


def test_a_job_missing_from_the_summary_is_not_held(tmp_path):
    root = tmp_path / "out"
    located = {"a.0": _exported(root, "a", "a.0"), "a.1": _exported(root, "a", "a.1")}
    assert held_job_folders(str(root), located, {"a.1"}, "result.json") == {"a.1"}
