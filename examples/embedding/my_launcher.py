"""How a launcher that keeps its jobs in its own database embeds evalport.

The launcher implements evalport's ResultSource port over its own job table (here a sqlite file)
and hands it to ``evalport.export``; everything else — reading results, metric filters, sinks,
the ledger, the report — is evalport's.

    python examples/embedding/my_launcher.py JOBS.sqlite OUTPUT_DIR
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import evalport
from evalport.domain.errors import UnknownIdError
from evalport.domain.ids import resolve_ids
from evalport.domain.model import LocalLocation
from evalport.plugin import ArtifactPolicy, EvalportError, Job, JobState, ResultError, StagedJob

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs "
    "(job_id TEXT PRIMARY KEY, invocation_id TEXT, task TEXT, dir TEXT, status TEXT)"
)


class MyLauncherSource:
    """evalport's ResultSource over the launcher's own job table."""

    name = "my-launcher"

    def __init__(self, db: Path) -> None:
        self.db = db
        self.warnings: list[str] = []  # problems to put in the report (none here)

    def list_jobs(self) -> list[Job]:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT job_id, invocation_id, task, dir FROM jobs ORDER BY job_id"
            ).fetchall()
        return [
            Job(job_id=j, invocation_id=i, task_name=t, executor="my-launcher", location=LocalLocation(d))
            for j, i, t, d in rows
        ]

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        jobs = {j.job_id: j for j in self.list_jobs()}
        job_ids, errors = resolve_ids(ids, {j.invocation_id for j in jobs.values()}, jobs)
        return [jobs[j] for j in job_ids], list(errors)

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]:
        with sqlite3.connect(self.db) as conn:
            status = dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())
        return {j.job_id: JobState(status.get(j.job_id, "unknown")) for j in jobs}

    def stage(
        self, jobs: Sequence[Job], policy: ArtifactPolicy, workdir: Path
    ) -> dict[str, StagedJob | EvalportError]:
        out: dict[str, StagedJob | EvalportError] = {}
        for job in jobs:
            directory = Path(job.location.path)
            out[job.job_id] = (
                StagedJob(job, directory)
                if directory.is_dir()
                else ResultError("directory is gone", job_id=job.job_id, path=directory)
            )
        return out

    def close(self) -> None:
        return None


def record_job(db: Path, job_id: str, task: str, directory: Path, status: str = "succeeded") -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?)",
            (job_id, job_id.split(".")[0], task, str(directory), status),
        )


def main(argv: list[str]) -> int:
    db, output_dir = Path(argv[0]), argv[1]
    source = MyLauncherSource(db)
    invocations = sorted({j.invocation_id for j in source.list_jobs()})
    if not invocations:
        raise UnknownIdError("*", f"{db} holds no jobs")
    report = evalport.export(invocations, dest="local", config={"output_dir": output_dir}, source=source)
    for outcome in report.outcomes:
        print(f"{outcome.job_id}: {outcome.status.value} {outcome.reason}".rstrip())
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
