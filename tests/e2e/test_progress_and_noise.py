"""What a person at a terminal sees while exporting: a bar with its total, and no SDK chatter."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from evalport.testing.factory import LauncherHome, write_launcher_home

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WORKTREE = Path(__file__).resolve().parents[2]
MLFLOW_NOISE = ("Creating initial MLflow database tables", "Updating database tables")


@pytest.fixture
def home(tmp_path: Path) -> LauncherHome:
    return write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=5)


def quiet_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with no SDK settings of their own (and no network)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env.update(
        WANDB_MODE="offline",
        WANDB_BASE_URL="http://127.0.0.1:9",
        WANDB_ERROR_REPORTING="false",
        NETRC=str(tmp_path / "no-netrc"),
        COLUMNS="120",
        TERM="xterm-256color",
    )
    env.pop("NO_COLOR", None)
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        (tmp_path / name.lower()).mkdir(exist_ok=True)
        env[name] = str(tmp_path / name.lower())
    return env


def evalport(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "evalport.app.cli", *args]
    return subprocess.run(
        command, cwd=tmp_path, env=quiet_env(tmp_path), capture_output=True, text=True, timeout=300
    )


def evalport_on_a_terminal(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Runs the CLI with a pseudo-terminal as stdout and stderr; the exit code and all it drew."""
    master, slave = pty.openpty()
    command = [sys.executable, "-m", "evalport.app.cli", *args]
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=quiet_env(tmp_path), stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=300), drawn.decode(errors="replace")


def test_the_first_progress_frame_already_shows_the_total_and_each_destination(home, tmp_path):
    code, drawn = evalport_on_a_terminal(
        tmp_path,
        "export",
        *home.invocation_ids,
        "--dest",
        "local",
        "--dest",
        "mlflow",
        "-o",
        f"export.local.output_dir={tmp_path / 'out'}",
        "-o",
        f"export.mlflow.tracking_uri=sqlite:///{tmp_path / 'store.db'}",
        "--exec-db",
        str(home.exec_db),
    )
    assert code == 0, drawn
    frames = [ANSI.sub("", f) for f in re.split(r"\r|\x1b\[2K|\x1b\[\d*A", drawn) if "exporting" in f]
    assert frames, drawn
    jobs = len(home.jobs)
    first = frames[0]
    assert f"/{2 * jobs}" in first and "/?" not in first, first
    assert f"local 0/{jobs}" in first and f"mlflow 0/{jobs}" in first, first
    assert not any("/?" in f for f in frames)


def test_a_first_export_to_a_new_mlflow_store_says_it_is_creating_it_and_nothing_more(home, tmp_path):
    store = tmp_path / "new.db"
    done = evalport(
        tmp_path,
        "export",
        *home.invocation_ids,
        "--dest",
        "mlflow",
        "-o",
        f"export.mlflow.tracking_uri=sqlite:///{store}",
        "--exec-db",
        str(home.exec_db),
    )
    assert done.returncode == 0, done.stderr
    for noise in MLFLOW_NOISE:
        assert noise not in done.stderr
    assert "alembic" not in done.stderr
    assert f"creating the MLflow store {store} (first use, takes a few seconds)" in done.stderr


def test_a_second_export_to_the_same_store_does_not_announce_creating_it(home, tmp_path):
    store = tmp_path / "again.db"
    args = ["--dest", "mlflow", "-o", f"export.mlflow.tracking_uri=sqlite:///{store}"]
    evalport(tmp_path, "export", home.invocation_ids[0], *args, "--exec-db", str(home.exec_db))
    done = evalport(tmp_path, "export", home.invocation_ids[1], *args, "--exec-db", str(home.exec_db))
    assert done.returncode == 0, done.stderr
    assert "creating the MLflow store" not in done.stderr


def test_verbose_shows_what_mlflow_says_while_creating_its_store(home, tmp_path):
    done = evalport(
        tmp_path,
        "-v",
        "export",
        home.invocation_ids[0],
        "--dest",
        "mlflow",
        "-o",
        f"export.mlflow.tracking_uri=sqlite:///{tmp_path / 'loud.db'}",
        "--exec-db",
        str(home.exec_db),
    )
    assert done.returncode == 0, done.stderr
    assert MLFLOW_NOISE[0] in done.stderr


def test_a_wandb_offline_export_prints_no_sdk_lines(home, tmp_path):
    done = evalport(
        tmp_path,
        "export",
        *home.invocation_ids,
        "--dest",
        "wandb",
        "-o",
        f"export.wandb.dir={tmp_path / 'wb'}",
        "--exec-db",
        str(home.exec_db),
    )
    assert done.returncode == 0, done.stderr
    assert "Adding directory to artifact" not in done.stderr
    assert "wandb:" not in done.stderr


# ---- summaries a person reads: dates, and no column that repeats another --------------------------


def iso_of(epoch: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_json_summary_carries_an_iso_utc_date_beside_the_epoch_timestamp(cli, home, tmp_path):
    import json

    out = tmp_path / "out"
    run = cli("export", *home.invocation_ids, "--output-dir", out)
    assert run.code == 0, run.err
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == len(home.jobs)
    for entry in runs:
        assert isinstance(entry["timestamp"], float)
        assert entry["timestamp_iso"] == iso_of(entry["timestamp"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["timestamp_iso"])


def test_the_csv_summary_carries_the_iso_date_and_no_mean_column_equal_to_its_value(cli, home, tmp_path):
    out = tmp_path / "out"
    run = cli("export", *home.invocation_ids, "--output-dir", out, "--format", "csv")
    assert run.code == 0, run.err
    rows = csv_rows(out / "results.csv")
    assert len(rows) == len(home.jobs)
    header = list(rows[0])
    assert header.index("timestamp_iso") == header.index("timestamp") + 1
    for row in rows:
        assert row["timestamp_iso"] == iso_of(float(row["timestamp"]))
    assert not [c for c in header if c.endswith("_mean")], header
    assert any(c.endswith("_stderr") for c in header)


def test_a_mean_that_differs_from_its_value_keeps_its_csv_column(cli, home, tmp_path):
    import yaml

    job = home.jobs[0]
    results_yml = job.directory / "artifacts" / "results.yml"
    doc = yaml.safe_load(results_yml.read_text())
    task = doc["results"]["tasks"][job.task]
    metric, block = next(iter(task["metrics"].items()))
    score, entry = next(iter(block["scores"].items()))
    moved = entry["value"] + 0.125
    for section in doc["results"].values():  # the task may be listed under groups too
        if job.task in section:
            section[job.task]["metrics"][metric]["scores"][score]["stats"]["mean"] = moved
    results_yml.write_text(yaml.safe_dump(doc))

    out = tmp_path / "out"
    run = cli("export", job.job_id, "--output-dir", out, "--format", "csv")
    assert run.code == 0, run.err
    (row,) = csv_rows(out / "results.csv")
    name = f"{job.task}_{metric}" if score == metric else f"{job.task}_{metric}_{score}"
    assert float(row[f"{name}_mean"]) == moved


def test_the_top_level_help_mentions_verbose():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and "--verbose" in run.stdout
