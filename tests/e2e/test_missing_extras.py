"""A destination (or the HTML report) whose optional extra is not installed: one clear usage error.

Nothing is uninstalled: each CLI run happens in a subprocess whose ``sitecustomize`` marks the SDK
as absent (``sys.modules[name] = None``), so both ``import`` and ``importlib.util.find_spec`` see
it missing, as they would on a machine without the extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXTRAS = {"gsheets": "gspread", "mlflow": "mlflow", "wandb": "wandb"}


def run_without(modules: list[str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    site = tmp_path / "without-extras"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    )
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def install_line(extra: str) -> str:
    return f"destination {extra!r} needs the {extra} extra: pip install 'evalport[{extra}]'"


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_exporting_to_a_destination_without_its_extra_is_one_usage_error_before_any_job_is_read(
    home, tmp_path, extra
):
    broken = home.jobs[0]
    (broken.directory / "artifacts" / "results.yml").write_text("results: [unclosed\n")
    run = run_without(
        [EXTRAS[extra]], tmp_path, "export", *home.invocation_ids, "--dest", extra, "--exec-db", home.exec_db
    )
    assert run.returncode == 2, run.stderr
    assert install_line(extra) in run.stderr
    assert "Traceback" not in run.stderr and "ModuleNotFoundError" not in run.stderr
    assert broken.job_id not in run.stderr, "the configuration is refused before any job is read"
    assert len(run.stderr.strip().splitlines()) == 1


def test_sinks_lists_a_destination_without_its_extra_as_unavailable_with_the_install_line(tmp_path):
    run = run_without(["gspread"], tmp_path, "sinks")
    assert run.returncode == 0, run.stderr
    lines = {line.split()[0]: line for line in run.stdout.splitlines() if line.strip()}
    assert "unavailable" in lines["gsheets"] and "pip install 'evalport[gsheets]'" in lines["gsheets"]
    assert "unavailable" not in lines["local"] and "unavailable" not in lines["mlflow"]


def test_doctor_says_which_extra_a_destination_needs_and_fails(tmp_path):
    run = run_without(["gspread"], tmp_path, "doctor", "--dest", "gsheets")
    assert run.returncode != 0
    assert install_line("gsheets") in run.stderr
    assert "Traceback" not in run.stderr


def test_an_html_report_without_matplotlib_names_the_report_extra_and_markdown_still_works(home, tmp_path):
    html = run_without(
        ["matplotlib"],
        tmp_path,
        "report",
        *home.invocation_ids,
        "--output",
        tmp_path / "r.html",
        "--exec-db",
        home.exec_db,
    )
    assert html.returncode == 2, html.stderr
    assert "pip install 'evalport[report]'" in html.stderr and "Traceback" not in html.stderr
    assert not (tmp_path / "r.html").exists()
    md = run_without(
        ["matplotlib"], tmp_path, "report", *home.invocation_ids, "--format", "md", "--exec-db", home.exec_db
    )
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# ")
