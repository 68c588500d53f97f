"""A stop signal during an export (``timeout``, CI cancellation, systemd, Ctrl-C) leaves no temp files.

The export runs in a subprocess with ``TMPDIR`` set to an empty folder; the signal is sent once the
export has staged its jobs (its ``evalport-stage-*`` folder exists) and is sending them to MLflow,
and afterwards that folder must be empty again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from evalport.testing.factory import write_launcher_home
from tests.support.waiting import wait_for

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def many_jobs(tmp_path_factory):
    """Enough jobs that an export to MLflow on sqlite takes seconds (about 40 ms a run here)."""
    return write_launcher_home(
        tmp_path_factory.mktemp("signals") / "home", invocations=10, tasks_per_invocation=8
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_during_an_export_leaves_no_temp_files_and_exits_128_plus_its_number(
    many_jobs, tmp_path, signum, code
):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalport.app.cli",
            "export",
            *many_jobs.invocation_ids,
            "--dest",
            "local",
            "--dest",
            "mlflow",
            "--copy-logs",
            "--output-dir",
            str(tmp_path / "out"),
            "-o",
            f"export.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "--exec-db",
            str(many_jobs.exec_db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(
            lambda: proc.poll() is not None or list(tmpdir.glob("evalport-mlflow-*")),
            timeout=120,
            what="the export to reach MLflow",
            every=0.02,
        )
        assert proc.poll() is None, "the export finished before it could be stopped; give it more jobs"
        assert list(tmpdir.glob("evalport-stage-*")), "the staged copies are there while it runs"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert signal.Signals(signum).name in err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmpdir.iterdir()) == []
