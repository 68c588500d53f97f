"""One definition of "unchanged": the item, the ledger and the local summary carry the same fingerprint."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import evalport
from evalport.adapters.ledger import LEDGER_FILE
from evalport.testing.factory import write_launcher_home


def _ledger_prints() -> dict[str, str]:
    path = Path(os.environ["EVALPORT_STATE_DIR"]) / LEDGER_FILE
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT job_id, fingerprint FROM exports WHERE destination = 'local'"))


def _summary_prints(out: Path) -> dict[str, str]:
    runs = json.loads((out / "results.json").read_text())["runs"]
    return {r["job_id"]: r["fingerprint"] for r in runs}


def test_the_ledger_and_the_local_summary_store_the_same_fingerprint_and_a_touched_file_changes_it(tmp_path):
    home = write_launcher_home(tmp_path / "launcher", invocations=1, tasks_per_invocation=2, seed=5)
    out = tmp_path / "out"
    config = {"output_dir": str(out)}
    assert evalport.export(home.invocation_ids, "local", config, exec_db=home.exec_db).ok
    first = _ledger_prints()
    assert first and first == _summary_prints(out)

    touched = home.jobs[0]
    results = touched.directory / "artifacts" / "results.yml"
    st = results.stat()
    os.utime(results, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = evalport.export(home.invocation_ids, "local", config, exec_db=home.exec_db)
    by_job = {o.job_id: o.status.value for o in again.outcomes}
    assert by_job[touched.job_id] == "updated"
    assert {s for j, s in by_job.items() if j != touched.job_id} == {"unchanged"}
    second = _ledger_prints()
    assert second == _summary_prints(out)
    assert second[touched.job_id] != first[touched.job_id]
    assert all(second[j] == first[j] for j in first if j != touched.job_id)
