"""Folders other harnesses wrote (lm-evaluation-harness, Inspect, NeMo Evaluator's engine) as jobs.

A path given with ``--job-dir`` that holds no launcher job directory is offered to the harness
readers (:func:`evalport.adapters.formats.detect.detect`, or the one ``--reader`` / ``reader:``
forces). Each result the reader finds is a job whose id the reader derived from the folder's content,
so the same folder always gets the same ids. The folder is read once here (aggregates only: no
per-sample file is opened) to know the jobs, their states and their files; the reader port reads it
again for the export (:mod:`evalport.adapters.formats.dispatch`).

Staging gives the port's usual view, ``<staged>/artifacts/<file>``: each file the result names is an
independent copy (never a link, so nothing done to the staged view reaches the harness's files), and
only when the export sends artifacts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError, ResultError, UsageError
from evalport.domain.model import Job, JobState, LocalLocation, TaskResult
from evalport.domain.ports import StagedJob

#: ``Job.data`` keys of a harness job: which reader, and the folder its files are relative to.
READER_KEY = "reader"
BASE_KEY = "harness_base"
PATH_KEY = "harness_path"


@dataclass(frozen=True, slots=True)
class HarnessJob:
    job: Job
    result: TaskResult


def base_of(path: Path) -> Path:
    """The folder a reader's ``artifacts`` are relative to: ``path``, or its folder for a file."""
    return path if path.is_dir() else path.parent


def job_for(result: TaskResult, reader_name: str, path: Path) -> Job:
    base = base_of(path)
    return Job(
        job_id=result.job_id,
        invocation_id=result.invocation_id,
        task_name=result.task,
        executor=result.executor,
        location=LocalLocation(str(base)),
        config={"target": {"api_endpoint": {"model_id": result.model_id}}, "harness": result.harness},
        timestamp=result.timestamp,
        data={
            READER_KEY: reader_name,
            BASE_KEY: str(base),
            PATH_KEY: str(path),
            "output_dir": result.results_dir or str(base),
        },
    )


def read_folder(path: Path, reader_name: str) -> tuple[list[HarnessJob], list[EvalportError]]:
    """The jobs of one harness folder (or file); an unreadable folder is one error naming it."""
    from evalport.adapters.formats.detect import reader

    path = path.expanduser().resolve()
    the_reader = reader(reader_name)
    try:
        results = the_reader.read(path)
    except EvalportError as exc:
        units = getattr(the_reader, "units", None)
        parts = units(path) if units is not None and path.is_dir() else []
        if len(parts) < 2:
            return [], [exc]
        return _read_each(parts, reader_name)
    if not results:
        return [], [ResultError(f"the {reader_name} reader found no result here", path=path)]
    return [HarnessJob(job_for(r, reader_name, path), r) for r in results], []


def _read_each(parts: list[Path], reader_name: str) -> tuple[list[HarnessJob], list[EvalportError]]:
    """A folder whose read failed, read again one file at a time (each an lm-eval results file or
    an Inspect log: independent runs), so that one broken file fails only its own jobs."""
    jobs: list[HarnessJob] = []
    errors: list[EvalportError] = []
    for part in parts:
        found, problems = read_folder(part, reader_name)
        jobs += found
        errors += problems
    return jobs, errors


def is_harness_job(job: Job) -> bool:
    return all(isinstance(job.data.get(key), str) for key in (READER_KEY, BASE_KEY, PATH_KEY))


def signature(found: HarnessJob, racy_after: int) -> str:
    """Sizes and mtimes of the result's files (and which reader); '' when one is racy or missing."""
    base = found.job.data[BASE_KEY]
    parts = [found.job.data[READER_KEY], found.result.job_id]
    for rel in found.result.artifacts:
        try:
            st = os.lstat(os.path.join(base, rel))
        except OSError:
            return ""
        if st.st_mtime_ns >= racy_after or not stat.S_ISREG(st.st_mode):
            return ""
        parts.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def state(found: HarnessJob) -> JobState:
    return found.result.state


def stage(found: HarnessJob, policy: ArtifactPolicy, workdir: Path) -> StagedJob | EvalportError:
    """``<workdir>/<job id>/artifacts/<file>`` for each file the result names, copied (when the
    export sends artifacts); a file that is no longer a regular file is an error naming it."""
    job = found.job
    view = workdir / "harness" / job.job_id.replace("/", "_")
    artifacts = view / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    if not policy.copy_artifacts:
        return StagedJob(job, view)
    base = Path(job.data[BASE_KEY])
    for rel in found.result.artifacts:
        source, target = base / rel, artifacts / rel
        try:
            mode = os.lstat(source).st_mode
        except OSError as exc:
            return ResultError(f"cannot read it: {exc.strerror or exc}", job_id=job.job_id, path=source)
        if not stat.S_ISREG(mode):
            return ResultError(
                "is not a regular file (a link or a folder); it is not sent", job_id=job.job_id, path=source
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)  # its mtime kept: the fingerprint signs it
    return StagedJob(job, view)


def unrecognised(given: str, detail: str) -> UsageError:
    return UsageError(f"--job-dir {given}: {detail}")


def forced_reader_error(given: str, reader_name: str, exc: EvalportError) -> UsageError:
    return UsageError(f"--job-dir {given}: --reader {reader_name}: {exc}")


def harness_jobs_in(
    paths: Sequence[tuple[str, Path]], reader_name: str | None
) -> tuple[dict[str, HarnessJob], list[EvalportError]]:
    """Each ``(as given, path)`` read with ``reader_name`` (else the detected reader)."""
    from evalport.adapters.formats.detect import detect

    found: dict[str, HarnessJob] = {}
    errors: list[EvalportError] = []
    for given, path in paths:
        if reader_name is not None:
            folders = [(path, reader_name)]
        else:
            try:
                folders = [(path, detect(path))]
            except UsageError as exc:
                folders = _recognised_children(path)
                if not folders:
                    errors.append(unrecognised(given, str(exc).split(": ", 1)[-1]))
                    continue
        for folder, name in folders:
            jobs, problems = read_folder(folder, name)
            errors.extend(problems)
            for harness_job in jobs:
                found.setdefault(harness_job.job.job_id, harness_job)
    return found, errors


def _recognised_children(path: Path) -> list[tuple[Path, str]]:
    """The folders directly below ``path`` that some reader recognises, with its name: a root
    holding many runs' output folders is read like each of them given on its own."""
    from evalport.adapters.formats.detect import detect

    out: list[tuple[Path, str]] = []
    try:
        children = sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
    for child in children:
        try:
            out.append((child, detect(child)))
        except UsageError:
            continue
    return out
