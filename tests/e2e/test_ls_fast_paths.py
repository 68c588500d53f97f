"""``evalport ls`` of every job takes shorter paths than ``ls <ids>``: the source alone (no service,
reader or planner), no rich when stdout is no terminal, the jobs freed when it returns. Each lists
exactly what the long path lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from evalport.testing.factory import write_launcher_home

EXPORT_PATH = (
    "evalport.app.service",
    "evalport.app.plan",
    "evalport.adapters.formats.dispatch",
    "evalport.adapters.formats.nemo_evaluator",
)


def _run_ls(code: str, exec_db: object, before: str = "") -> list[str]:
    """The stderr lines of ``code`` run after ``evalport ls`` (``before`` run before it) in a
    process of its own, stdout a pipe."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    script = (
        "import sys\n"
        f"{before}\n"
        "from evalport.app.cli import main\n"
        f"code = main(['ls', '--exec-db', {str(exec_db)!r}])\n"
        "sys.stdout.flush()\n" + code
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    return run.stderr.splitlines()


def test_listing_every_job_into_a_pipe_imports_neither_the_export_path_nor_rich(tmp_path):
    home = write_launcher_home(tmp_path / "home", invocations=2, tasks_per_invocation=2)
    report = (
        "print([m for m in " + repr((*EXPORT_PATH, "rich", "pydantic", "yaml")) + " if m in sys.modules], "
    )
    report += "file=sys.stderr)\n"
    assert _run_ls(report, home.exec_db) == ["[]"]


def test_the_jobs_listed_are_freed_when_ls_returns_not_left_to_the_collector_at_exit(tmp_path):
    home = write_launcher_home(tmp_path / "home", invocations=3, tasks_per_invocation=2)
    count = (
        "import gc\n"
        "from evalport.domain.model import Job\n"
        "print(sum(type(o) is Job for o in gc.get_objects()), file=sys.stderr)\n"
    )
    assert _run_ls(count, home.exec_db, before="import gc; gc.disable()") == ["0"]


def test_listing_every_job_lists_what_naming_every_invocation_lists(cli, home):
    everything = cli("ls", "--json")
    named = cli("ls", "--json", *home.invocation_ids)
    assert (everything.code, named.code) == (0, 0)
    listed = json.loads(everything.out)
    assert listed == json.loads(named.out)
    assert sorted(inv["invocation_id"] for inv in listed) == sorted(home.invocation_ids)
    assert everything.err == named.err


def test_the_table_of_every_job_is_the_table_of_every_invocation_named(cli, home):
    everything = cli("ls")
    named = cli("ls", *home.invocation_ids)
    assert everything.out == named.out and everything.out.count("\n") > len(home.invocation_ids)


def test_the_cycle_collector_does_not_run_during_ls_and_is_left_as_it_was(cli, home, monkeypatch):
    import gc

    from evalport.app import cli_inspect

    runs: list[int] = []
    listing = cli_inspect._list_jobs

    def counted(*args, **kwargs):
        gc.callbacks.append(collected)
        try:
            return listing(*args, **kwargs)
        finally:
            gc.callbacks.remove(collected)

    def collected(phase, info):
        if phase == "start":
            runs.append(info["generation"])

    monkeypatch.setattr(cli_inspect, "_list_jobs", counted)
    monkeypatch.setattr(cli_inspect, "_list_jobs_of", _allocating(cli_inspect._list_jobs_of))
    assert gc.isenabled()
    assert cli("ls").code == 0 and gc.isenabled()
    gc.disable()
    try:
        assert cli("ls").code == 0 and not gc.isenabled()
    finally:
        gc.enable()
    assert runs == []


def _allocating(list_jobs_of):
    """``list_jobs_of`` after making more containers than any collector threshold lets pass."""

    def run(*args, **kwargs):
        kept = [[] for _ in range(200_000)]
        del kept
        return list_jobs_of(*args, **kwargs)

    return run


def test_the_console_script_freezes_what_it_built_before_exiting_and_a_caller_with_argv_is_left_alone(
    tmp_path,
):
    home = write_launcher_home(tmp_path / "home", invocations=1, tasks_per_invocation=2)
    script = (
        "import gc, sys\n"
        "from evalport.app.cli import main\n"
        f"main(['ls', '--exec-db', {str(home.exec_db)!r}])\n"
        "print('with argv', gc.get_freeze_count(), file=sys.stderr)\n"
        f"sys.argv = ['evalport', 'ls', '--exec-db', {str(home.exec_db)!r}]\n"
        "code = main()\n"
        "print('console script', gc.get_freeze_count(), code, file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    lines = [line.split() for line in run.stderr.splitlines() if line.startswith(("with argv", "console"))]
    assert lines[0] == ["with", "argv", "0"]
    assert lines[1][:2] == ["console", "script"] and int(lines[1][2]) > 0 and lines[1][3] == "0"
