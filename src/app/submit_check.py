"""``evalport auto-export --check``: did the export job that ``--submit`` recorded run, and how did it end?

It reads ``<job dir>/logs/evalport-export.json`` and asks ``sacct`` for both jobs. An export job
Slurm cancelled before it started, after its evaluation ended other than COMPLETED, *never ran*:
the check names the evaluation job and its state, and exits 1, so a nightly script notices.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evalport.app.submit import SACCT_ENV, Submission, SubmitError, read_record

WAITING = {"PENDING", "REQUEUED", "RESIZING", "SUSPENDED", "CONFIGURING", "RUNNING", "COMPLETING"}
NOT_STARTED = {"", "None", "Unknown"}


@dataclass(frozen=True)
class CheckReport:
    """``status``: exported, failed, never_ran, waiting or unknown."""

    job_dir: str
    eval_job: str
    export_job: str
    status: str
    eval_state: str
    export_state: str
    message: str
    log: str

    @property
    def exit_code(self) -> int:
        return 0 if self.status in ("exported", "waiting") else 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.exit_code == 0}


def sacct(ids: list[str]) -> dict[str, dict[str, str]]:
    """JobID -> {State, ExitCode, Start, End} from Slurm's accounting."""
    binary = os.environ.get(SACCT_ENV) or "sacct"
    argv = [binary, "-X", "-n", "-P", "-o", "JobID,State,ExitCode,Start,End", "-j", ",".join(ids)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise SubmitError(f"{binary} not found: --check runs where Slurm's sacct is on PATH") from None
    except subprocess.TimeoutExpired:
        raise SubmitError(f"{binary} did not answer within 60 s") from None
    if proc.returncode != 0:
        raise SubmitError(f"sacct failed: {' '.join(proc.stderr.split()) or proc.returncode}")
    rows: dict[str, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        parts = line.split("|")
        if len(parts) >= 5:
            rows[parts[0]] = {
                "State": parts[1].split(" ")[0],
                "ExitCode": parts[2],
                "Start": parts[3],
                "End": parts[4],
            }
    return rows


def _started(row: dict[str, str]) -> bool:
    """Whether the job ever ran. A pending job cancelled for an unsatisfiable dependency has no
    start time, or (Slurm 22.05) one equal to its end time: the moment it was cancelled."""
    start = row.get("Start", "")
    return start not in NOT_STARTED and start != row.get("End")


def export_log(record: Submission, directory: Path) -> str:
    """Where the export job writes its output (``--output``, its ``%j`` filled in)."""
    given = [a.split("=", 1)[1] for a in record.sbatch if a.startswith("--output=")]
    pattern = given[-1] if given else str(directory / "logs" / "evalport-export-%j.log")
    return pattern.replace("%j", record.export_job).replace("%A", record.export_job)


def check(job_dir: str | Path) -> CheckReport:
    """The export job's fate, from its record and Slurm's accounting."""
    directory = Path(job_dir).expanduser().resolve()
    record = read_record(directory)
    rows = sacct([record.eval_job, record.export_job])
    ev = rows.get(record.eval_job, {})
    ex = rows.get(record.export_job, {})
    eval_state, export_state = ev.get("State", ""), ex.get("State", "")
    log = export_log(record, directory)
    name = directory.name
    evaluation = f"the evaluation (Slurm job {record.eval_job})"
    if export_state == "COMPLETED":
        status, message = "exported", f"{name}: export job {record.export_job} ran and exported"
    elif export_state in WAITING:
        status = "waiting"
        message = f"{name}: export job {record.export_job} is {export_state.lower()}; {evaluation} is "
        message += (eval_state or "unknown").lower()
    elif export_state == "CANCELLED" and not _started(ex) and eval_state != "COMPLETED":
        status = "never_ran"
        message = (
            f"{name}: export job {record.export_job} never ran: {evaluation} ended "
            f"{eval_state or 'in an unknown state'}, so Slurm cancelled the export "
            "(afterok never satisfied); "
            f"once the job is fixed, export it with `evalport export` or `evalport auto-export --job-dir`"
        )
    elif not export_state:
        status = "unknown"
        message = (
            f"{name}: Slurm's accounting has no export job {record.export_job} (purged, or another cluster)"
        )
    else:
        status = "failed"
        message = (
            f"{name}: export job {record.export_job} ended {export_state} "
            f"(exit {ex.get('ExitCode', '?')}); see {log}"
        )
    return CheckReport(
        str(directory), record.eval_job, record.export_job, status, eval_state, export_state, message, log
    )
