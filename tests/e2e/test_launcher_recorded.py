"""`--compat launcher` against a recorded copy of the real launcher's local json and csv exports.

tests/data/launcher_reference/record.py made the copy from a generated home; this test makes the
same home again (same generator arguments, in another folder) and compares evalport's files with
the recorded ones. Paths are mapped from the recording's home to this one and timestamps are
compared by type, so it runs anywhere, with or without the launcher installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalport.app.cli import main
from evalport.testing.factory import write_launcher_home
from tests.e2e.launcher_files import assert_same_tree

RECORDED = Path(__file__).resolve().parents[1] / "data" / "launcher_reference"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_compat_launcher_writes_what_the_recorded_launcher_wrote(tmp_path, fmt):
    inputs = json.loads((RECORDED / "inputs.json").read_text())
    home = write_launcher_home(tmp_path / "home", **inputs["generator"])
    assert home.invocation_ids == inputs["invocation_ids"], "the factory no longer makes the recorded home"
    out = tmp_path / "out"
    args = ["export", *home.invocation_ids, "--dest", "local", "--format", fmt, "--output-dir", str(out)]
    assert main([*args, "-o", "compat=launcher", "--exec-db", str(home.exec_db)]) == 0
    assert_same_tree(RECORDED / fmt, out, fmt, root=(inputs["home_root"], str(home.root)))
