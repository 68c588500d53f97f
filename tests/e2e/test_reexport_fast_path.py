"""An export the ledger answers entirely (every job unchanged) reads nothing, and into a pipe it
loads none of what reading and drawing need: no YAML reader, no rich, no scan of the installed
distributions for evalport's entry points. A first export does read, and says what it exported."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from evalport.testing.factory import write_launcher_home

READING_AND_DRAWING = (
    "yaml",
    "evalport.adapters.formats.nemo_evaluator",
    "evalport.adapters.formats.safe_yaml",
    "rich",
)


def _settled(root) -> None:
    """Every file and folder under ``root`` dated an hour back: none is racy, so each job signs."""
    then = time.time() - 3600
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (then, then))
        os.utime(folder, (then, then))


def _export(home, out, state) -> tuple[str, list[str]]:
    """stdout of ``evalport export <every invocation>`` in a process of its own (stdout and stderr
    pipes), and which of :data:`READING_AND_DRAWING` it imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env["EVALPORT_STATE_DIR"] = str(state)
    argv = ["export", *home.invocation_ids, "--exec-db", str(home.exec_db), "--output-dir", str(out)]
    script = (
        "import sys\n"
        "from evalport.app.cli import main\n"
        f"code = main({argv!r})\n"
        "sys.stdout.flush()\n"
        "from evalport.app.registry import sink_registry\n"
        f"imported = [m for m in {READING_AND_DRAWING!r} if m in sys.modules]\n"
        "scanned = sink_registry()._scanned is not None\n"
        "print(imported + (['the entry points'] if scanned else []), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    return run.stdout, run.stderr.splitlines()[-1:]


def test_an_unchanged_export_into_a_pipe_imports_no_reader_no_rich_and_scans_no_entry_points(tmp_path):
    home = write_launcher_home(tmp_path / "home", invocations=2, tasks_per_invocation=2)
    _settled(tmp_path / "home")
    out, state = tmp_path / "out", tmp_path / "state"
    first, first_imports = _export(home, out, state)
    assert "4 exported" in first
    assert "evalport.adapters.formats.nemo_evaluator" in first_imports[0]
    again, again_imports = _export(home, out, state)
    assert f"local: 4 unchanged -> {out}" in again
    assert again_imports == ["[]"]
