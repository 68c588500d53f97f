"""The local source: the launcher's execution DB, job directories given directly, and results roots
searched for the invocations the DB does not know (the launcher's ``job_dirs``)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalport.adapters.formats.stage_exit import read_stage_exit
from evalport.adapters.sources import harness_dirs
from evalport.adapters.sources.execdb import (
    ExecDbRecords,
    default_exec_db_path,
    read_exec_db,
    wanted_prefixes,
)
from evalport.adapters.sources.job_dir_paths import find_job_dirs, split_job_dirs
from evalport.adapters.sources.records import ExecDbRecord
from evalport.adapters.sources.signatures import directory_signature, racy_after_ns
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import (
    AmbiguousIdError,
    EvalportError,
    ResultError,
    UnknownIdError,
    UsageError,
)
from evalport.domain.ids import resolve_ids
from evalport.domain.model import Job, JobState, LocalLocation, RemoteLocation
from evalport.domain.ports import StagedJob

log = logging.getLogger("evalport.sources.local")


_INVOCATION_DIR = re.compile(r"^(?:\d{8}_\d{6}-)?(?P<inv>[0-9a-f]{8,32})$")
_JOB_DIR = re.compile(r"^(?P<task>.+)\.(?P<idx>\d+)$")


def job_from_record(rec: ExecDbRecord) -> Job:
    """A Job from a validated execution-DB record; ``config`` parts of the wrong shape are ignored."""
    data, config = rec.data, rec.config
    location = _location(data)
    return Job(
        job_id=rec.job_id,
        invocation_id=rec.invocation_id,
        task_name=_task_name(rec.job_id, config, location),
        executor=rec.executor or "local",
        location=location,
        config=config,
        timestamp=rec.timestamp,
        data=data,
    )


def jobs_from_records(records: Mapping[str, ExecDbRecord]) -> dict[str, Job]:
    """``{job_id: job_from_record(rec)}``, sooner on a team's DB: the jobs of an invocation share
    its config (:mod:`execdb` decodes each config text once), so its task names are looked up once
    per config, and a job's ``output_dir`` (the launcher's local jobs) makes its location directly."""
    names_by_config: dict[int, list[str | None]] = {}
    jobs: dict[str, Job] = {}
    for job_id, rec in records.items():
        data, config = rec.data, rec.config
        output_dir = data.get("output_dir")
        location = LocalLocation(output_dir) if output_dir and type(output_dir) is str else _location(data)
        names = names_by_config.get(id(config))  # each config stays alive in ``records``
        if names is None:
            names = names_by_config[id(config)] = _task_names(config)
        tail = job_id.rsplit(".", 1)[-1]
        name = names[int(tail)] if tail.isdigit() and int(tail) < len(names) else None
        jobs[job_id] = Job(
            job_id,
            rec.invocation_id,
            name if name is not None else _task_from_folder(location),
            rec.executor or "local",
            location,
            config,
            rec.timestamp,
            data,
        )
    return jobs


def _location(data: Mapping[str, Any]) -> LocalLocation | RemoteLocation:
    """Where a record's job directory is: its ``output_dir``, else its remote run dir (read
    directly when this machine sees it), else nowhere known."""
    if data.get("output_dir"):
        return LocalLocation(str(data["output_dir"]))
    if data.get("remote_rundir_path"):
        remote = str(data["remote_rundir_path"])
        # On the cluster itself (a login node, an auto-export step) the run dir is readable directly.
        if Path(remote).is_dir():
            return LocalLocation(remote)
        return RemoteLocation(str(data.get("hostname") or ""), remote, data.get("username"))
    return LocalLocation("")


def _task_name(job_id: str, config: Mapping[str, Any], location: LocalLocation | RemoteLocation) -> str:
    """``evaluation.tasks[<index>].name``, else the job directory's ``<task>`` part."""
    tail = job_id.rsplit(".", 1)[-1]
    evaluation = config.get("evaluation")
    tasks = evaluation.get("tasks") if isinstance(evaluation, Mapping) else None
    if isinstance(tasks, list) and tail.isdigit() and int(tail) < len(tasks):
        name = _entry_name(tasks[int(tail)])
        if name is not None:
            return name
    return _task_from_folder(location)


def _task_names(config: Mapping[str, Any]) -> list[str | None]:
    """The name (:func:`_entry_name`) of each entry of ``evaluation.tasks``; none when it is no list."""
    evaluation = config.get("evaluation")
    tasks = evaluation.get("tasks") if isinstance(evaluation, Mapping) else None
    return [_entry_name(entry) for entry in tasks] if isinstance(tasks, list) else []


def _entry_name(entry: Any) -> str | None:
    """A task entry's ``name`` as text, when it is a non-empty string or number."""
    name = entry.get("name") if isinstance(entry, Mapping) else None
    if isinstance(name, (str, int, float)) and not isinstance(name, bool) and str(name):
        return str(name)
    return None


def _task_from_folder(location: LocalLocation | RemoteLocation) -> str:
    """The ``<task>`` of a job directory named ``<task>.<index>``; '' for any other name."""
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


class LocalSource:
    """Jobs from the execution DB (by default the launcher's) plus job directories given directly.

    ``search_roots`` are the launcher's ``job_dirs``: results roots where an id the execution DB
    does not know is looked for (a folder whose name holds the invocation id), as the launcher
    does; with no ids given, every job under them is meant, as with ``job_dirs``.
    """

    name = "local"
    #: Whether a resolve reads only the execution-DB lines that could name its ids (``show`` and
    #: ``ls <ids>`` set it): problems of the other lines are then not reported. Off by default, so an
    #: export reports every corrupt line of the DB, as it always has.
    only_wanted_lines = False

    def __init__(
        self,
        exec_db: Path | str | None = None,
        job_dirs: Sequence[Path | str] = (),
        *,
        use_exec_db: bool = True,
        search_roots: Sequence[Path | str] = (),
        reader: str | None = None,
    ) -> None:
        self.exec_db = Path(exec_db).expanduser() if exec_db else default_exec_db_path()
        self.use_exec_db = use_exec_db
        self.job_dirs, harness_paths, errors = split_job_dirs([Path(p) for p in job_dirs], reader)
        self._harness, harness_errors = harness_dirs.harness_jobs_in(harness_paths, reader)
        self._job_dir_errors: list[EvalportError] = [*errors, *harness_errors]
        self.search_roots = [Path(p).expanduser() for p in search_roots]
        self._asked_for_job_dirs = bool(job_dirs)
        # Printed by `ls` (which resolves nothing); an export reports them as errors instead.
        self._warnings: list[str] = [str(e) for e in self._job_dir_errors]
        self._jobs: dict[str, Job] | None = None
        # The id prefixes the execution DB was read for (None: all of it); see ``_load``.
        self._read_for: tuple[str, ...] | None = None
        self._db_warnings: list[str] = []
        self._unread = False

    @property
    def warnings(self) -> list[str]:
        """Problems that belong to no job (skipped execution-DB lines, ...); reading the DB first.

        After a resolve, only the lines that read parsed (the module doc of :mod:`execdb`)."""
        if self._jobs is None:
            self._load()
        return [*self._warnings, *self._db_warnings]

    def _load(self, ids: Sequence[str] | None = None) -> dict[str, Job]:
        """The jobs known; with ``ids``, those of the execution DB they can name (and the job
        directories'), the rest of the DB left unparsed until something asks for everything."""
        wanted = wanted_prefixes(ids) if ids is not None and self.only_wanted_lines else None
        if self._jobs is not None and (
            self._read_for is None or (wanted is not None and set(wanted) <= set(self._read_for))
        ):
            return self._jobs
        db = read_exec_db(self.exec_db, wanted) if self.use_exec_db else ExecDbRecords()
        self._db_warnings = db.warnings
        self._unread = db.unread
        jobs = jobs_from_records(db.records)
        known_dirs = {j.location.path for j in jobs.values() if isinstance(j.location, LocalLocation)}
        for directory in self.job_dirs:
            job = job_from_dir(directory)
            if job.location.path not in known_dirs:
                jobs[job.job_id] = job
        for job_id, found in self._harness.items():
            jobs.setdefault(job_id, found.job)
        self._jobs, self._read_for = jobs, wanted
        return jobs

    def list_jobs(self) -> list[Job]:
        """Every job known: the execution DB's, the job directories', and those under the roots."""
        jobs = self._load()
        if self.search_roots:
            jobs = dict(jobs)
            self._everything_under_roots(jobs, [])
        return list(jobs.values())

    def resolve(self, ids: Sequence[str]) -> tuple[list[Job], list[EvalportError]]:
        jobs = self._load(ids if ids else None)
        if not jobs and self._unread:
            jobs = self._load()  # the DB is not empty: resolve against all of it, as its hint says
        dir_errors: list[EvalportError] = []
        if not ids and (self._asked_for_job_dirs or self.search_roots):
            ids = [job_from_dir(d).job_id for d in self.job_dirs] + list(self._harness)
            ids += self._everything_under_roots(jobs, dir_errors)
            dir_errors += list(self._job_dir_errors)
            reported = {str(e) for e in dir_errors}
            self._warnings[:] = [w for w in self._warnings if w not in reported]
        invocations = {j.invocation_id for j in jobs.values()}
        job_ids, errors = resolve_ids(ids, invocations, jobs)
        unknown = [e.ident for e in errors if isinstance(e, UnknownIdError)]
        if self.search_roots and unknown:
            job_ids, errors = self._resolve_from_roots(ids, unknown, jobs)
        found: list[EvalportError] = [*dir_errors, *errors]
        if not jobs:
            hint = f"the execution DB {self.exec_db} holds no jobs; pass --exec-db or --job-dir"
            if self.search_roots:
                hint = f"neither the execution DB {self.exec_db} nor --job-dirs {self._roots_text()} hold it"
            found = [UnknownIdError(e.ident, hint) if isinstance(e, UnknownIdError) else e for e in found]
        return [jobs[j] for j in job_ids], found

    def _roots_text(self) -> str:
        """The roots, each one that is no directory said so (a typo there is the likely cause)."""
        return ", ".join(str(r) if r.is_dir() else f"{r} (no such directory)" for r in self.search_roots)

    def _resolve_from_roots(
        self, ids: Sequence[str], unknown: Sequence[str], jobs: dict[str, Job]
    ) -> tuple[list[str], list[UnknownIdError | AmbiguousIdError]]:
        """``ids`` again, the ``unknown`` ones looked for under the roots first (as the launcher
        does, only once the execution DB has not named them); their jobs join ``jobs``."""
        from evalport.adapters.sources.job_search import find_invocation_dirs, jobs_in_invocation_dir

        for ident in unknown:
            for folder in find_invocation_dirs(self.search_roots, ident):
                for job in jobs_in_invocation_dir(folder):
                    jobs.setdefault(job.job_id, job)
        invocations = {j.invocation_id for j in jobs.values()}
        job_ids, errors = resolve_ids(ids, invocations, jobs)
        hint = f"not in the execution DB, nor under --job-dirs {self._roots_text()}"
        return job_ids, [
            UnknownIdError(e.ident, hint) if isinstance(e, UnknownIdError) else e for e in errors
        ]

    def _everything_under_roots(self, jobs: dict[str, Job], errors: list[EvalportError]) -> list[str]:
        """With no ids: every invocation folder under the roots (a root that is itself a job or
        invocation folder counts as one), its jobs joining ``jobs``."""
        from evalport.adapters.sources.job_search import jobs_in_invocation_dir

        ids: list[str] = []
        found, problems = find_job_dirs(self.search_roots)
        errors.extend(UsageError(str(p).replace("--job-dir ", "--job-dirs ", 1)) for p in problems)
        by_folder: dict[Path, dict[str, Job]] = {}
        for job_dir in found:
            folder = job_dir.parent
            if folder not in by_folder:
                by_folder[folder] = {j.location.path: j for j in jobs_in_invocation_dir(folder)}
            job = by_folder[folder].get(str(job_dir)) or job_from_dir(job_dir)
            jobs.setdefault(job.job_id, job)
            ids.append(job.job_id)
        return ids

    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]:
        out = {}
        for job in jobs:
            found = self._harness.get(job.job_id)
            if found is not None:
                out[job.job_id] = harness_dirs.state(found)
            elif isinstance(job.location, LocalLocation) and job.location.path:
                out[job.job_id] = read_stage_exit(job.location.path)
            else:
                out[job.job_id] = JobState.UNKNOWN
        return out

    def signatures(self, jobs: Sequence[Job], policy: ArtifactPolicy) -> dict[str, str]:
        """The file signature of each job whose directory is here (never a remote one's), computed
        without reading a file (:func:`directory_signature`); a job left out has none."""
        out: dict[str, str] = {}
        racy_after = racy_after_ns()
        for job in jobs:
            loc = job.location
            found = self._harness.get(job.job_id)
            if found is not None:
                signature = harness_dirs.signature(found, racy_after)
                if signature:
                    out[job.job_id] = signature
            elif isinstance(loc, LocalLocation) and loc.path:
                signature = directory_signature(loc.path, racy_after=racy_after, logs=policy.copy_logs)
                if signature:
                    out[job.job_id] = signature
        return out

    def read_in_place(self, jobs: Sequence[Job]) -> set[str]:
        """The launcher jobs with a directory here: :meth:`stage` hands over that directory itself
        (a harness folder's results are copied first, so they are not among them)."""
        return {
            job.job_id
            for job in jobs
            if job.job_id not in self._harness
            and isinstance(job.location, LocalLocation)
            and job.location.path
        }

    def stage(
        self, jobs: Sequence[Job], policy: ArtifactPolicy, workdir: Path
    ) -> dict[str, StagedJob | EvalportError]:
        """Local jobs need no copy: the staged view is the job directory itself."""
        out: dict[str, StagedJob | EvalportError] = {}
        for job in jobs:
            loc = job.location
            found = self._harness.get(job.job_id)
            if found is not None:
                out[job.job_id] = harness_dirs.stage(found, policy, workdir)
            elif isinstance(loc, RemoteLocation):
                out[job.job_id] = ResultError(
                    f"runs on {loc.user + '@' if loc.user else ''}{loc.host}:{loc.path}, "
                    "which is not readable "
                    "here; export it with the slurm source (or from the cluster itself)",
                    job_id=job.job_id,
                )
            elif not loc.path or not os.path.isdir(loc.path):
                out[job.job_id] = ResultError(
                    "job directory does not exist; was it moved or deleted?",
                    job_id=job.job_id,
                    path=loc.path or None,
                )
            elif not os.path.isdir(os.path.join(loc.path, "artifacts")):
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
