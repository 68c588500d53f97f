"""The local source: the launcher's execution DB and job directories given directly."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalport.adapters.formats.nemo_evaluator import read_stage_exit
from evalport.adapters.sources.execdb import ExecDbRecords, default_exec_db_path, read_exec_db
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError, ResultError, UnknownIdError
from evalport.domain.ids import resolve_ids
from evalport.domain.model import Job, JobState, LocalLocation, RemoteLocation
from evalport.domain.ports import StagedJob

log = logging.getLogger("evalport.sources.local")

_INVOCATION_DIR = re.compile(r"^(?:\d{8}_\d{6}-)?(?P<inv>[0-9a-f]{8,32})$")
_JOB_DIR = re.compile(r"^(?P<task>.+)\.(?P<idx>\d+)$")


def job_from_record(rec: dict[str, Any]) -> Job:
    data = rec.get("data") or {}
    config = rec.get("config") or {}
    executor = str(rec.get("executor") or "local")
    job_id = rec["job_id"]
    if data.get("output_dir"):
        location: LocalLocation | RemoteLocation = LocalLocation(str(data["output_dir"]))
    elif data.get("remote_rundir_path"):
        remote = str(data["remote_rundir_path"])
        # On the cluster itself (a login node, an auto-export step) the run dir is readable directly.
        if Path(remote).is_dir():
            location = LocalLocation(remote)
        else:
            location = RemoteLocation(str(data.get("hostname") or ""), remote, data.get("username"))
    else:
        location = LocalLocation("")
    task_name = _task_name(job_id, config, location)
    return Job(
        job_id=job_id,
        invocation_id=str(rec["invocation_id"]),
        task_name=task_name,
        executor=executor,
        location=location,
        config=config,
        timestamp=rec.get("timestamp"),
        data=data,
    )


def _task_name(job_id: str, config: dict[str, Any], location: LocalLocation | RemoteLocation) -> str:
    tail = job_id.rsplit(".", 1)[-1]
    tasks = (config.get("evaluation") or {}).get("tasks") or []
    if tail.isdigit() and int(tail) < len(tasks) and isinstance(tasks[int(tail)], dict):
        name = tasks[int(tail)].get("name")
        if name:
            return str(name)
    m = _JOB_DIR.match(Path(location.path).name) if location.path else None
    return m["task"] if m else ""


def job_from_dir(path: Path) -> Job:
    """A Job for a directory given directly (``--job-dir``): ids come from the launcher's layout."""
    path = path.expanduser().resolve()
    m_job = _JOB_DIR.match(path.name)
    m_inv = _INVOCATION_DIR.match(path.parent.name)
    if m_inv and m_job:
        inv, idx, task = m_inv["inv"], m_job["idx"], m_job["task"]
    else:
        import hashlib

        inv = hashlib.sha256(str(path.parent).encode()).hexdigest()[:16]
        idx = m_job["idx"] if m_job else "0"
        task = m_job["task"] if m_job else path.name
    return Job(
        job_id=f"{inv}.{idx}",
        invocation_id=inv,
        task_name=task,
        executor="local",
        location=LocalLocation(str(path)),
    )


def _is_job_dir(path: Path) -> bool:
    return (path / "artifacts").is_dir() or (path / "logs").is_dir()


def expand_job_dirs(paths: Sequence[Path]) -> list[Path]:
    """Job directories from what the user gave: a job dir, an invocation dir, or a results root.

    A results root (the launcher's ``execution.output_dir``) holds invocation dirs, which hold job
    dirs; anything else is kept as given, so that reading it reports what is wrong with it.
    """
    out: list[Path] = []
    for path in paths:
        path = Path(path).expanduser()
        if _is_job_dir(path) or not path.is_dir():
            out.append(path)
            continue
        found: list[Path] = []
        for child in sorted(p for p in path.iterdir() if p.is_dir()):
            if _is_job_dir(child):
                found.append(child)
            else:
                found.extend(sorted(g for g in child.iterdir() if g.is_dir() and _is_job_dir(g)))
        out.extend(found or [path])
    return out


class LocalSource:
    """Jobs from the execution DB (by default the launcher's) plus job directories given directly."""

    name = "local"

    def __init__(
        self,
        exec_db: Path | str | None = None,
        job_dirs: Sequence[Path | str] = (),
        *,
        use_exec_db: bool = True,
    ) -> None:
        self.exec_db = Path(exec_db).expanduser() if exec_db else default_exec_db_path()
        self.use_exec_db = use_exec_db
        self.job_dirs = expand_job_dirs([Path(p) for p in job_dirs])
        self.warnings: list[str] = []
        self._jobs: dict[str, Job] | None = None

    def _load(self) -> dict[str, Job]:
        if self._jobs is None:
            db = read_exec_db(self.exec_db) if self.use_exec_db else ExecDbRecords()
            self.warnings.extend(db.warnings)
            jobs = {job_id: job_from_record(rec) for job_id, rec in db.records.items()}
            known_dirs = {j.location.path for j in jobs.values() if isinstance(j.location, LocalLocation)}
            for directory in self.job_dirs:
                job = job_from_dir(directory)
                if job.location.path not in known_dirs:
                    jobs[job.job_id] = job
            self._jobs = jobs
        return self._jobs

    def list_jobs(self) -> list[Job]:
        return list(self._load().values())

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        jobs = self._load()
        if not ids and self.job_dirs:
            ids = [job_from_dir(d).job_id for d in self.job_dirs]
        invocations = {j.invocation_id for j in jobs.values()}
        job_ids, errors = resolve_ids(ids, invocations, jobs)
        if not jobs:
            hint = f"the execution DB {self.exec_db} holds no jobs; pass --exec-db or --job-dir"
            errors = [UnknownIdError(e.ident, hint) if isinstance(e, UnknownIdError) else e for e in errors]
        return [jobs[j] for j in job_ids], errors

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]:
        out = {}
        for job in jobs:
            if isinstance(job.location, LocalLocation) and job.location.path:
                out[job.job_id] = read_stage_exit(Path(job.location.path))
            else:
                out[job.job_id] = JobState.UNKNOWN
        return out

    def stage(
        self, jobs: Sequence[Job], policy: ArtifactPolicy, workdir: Path
    ) -> dict[str, StagedJob | EvalportError]:
        """Local jobs need no copy: the staged view is the job directory itself."""
        out: dict[str, StagedJob | EvalportError] = {}
        for job in jobs:
            loc = job.location
            if isinstance(loc, RemoteLocation):
                out[job.job_id] = ResultError(
                    f"runs on {loc.user + '@' if loc.user else ''}{loc.host}:{loc.path}, "
                    "which is not readable "
                    "here; export it with the slurm source (or from the cluster itself)",
                    job_id=job.job_id,
                )
            elif not loc.path or not Path(loc.path).is_dir():
                out[job.job_id] = ResultError(
                    "job directory does not exist; was it moved or deleted?",
                    job_id=job.job_id,
                    path=loc.path or None,
                )
            elif not (Path(loc.path) / "artifacts").is_dir():
                out[job.job_id] = ResultError(
                    "has no artifacts/ folder; is this a job directory (<invocation dir>/<task>.<index>)?",
                    job_id=job.job_id,
                    path=loc.path,
                )
            else:
                out[job.job_id] = StagedJob(job, Path(loc.path))
        return out

    def close(self) -> None:
        return None
