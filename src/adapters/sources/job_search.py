"""Finding an invocation's jobs under results roots (the launcher's ``job_dirs``), without the DB.

A results root (what the run config's ``execution.output_dir`` was) holds one folder per
invocation, named ``<YYYYMMDD_HHMMSS>-<invocation id>``; its job folders are ``<task>.<index>``
(or a plain ``<task>`` in old runs). As the launcher does, a folder is found by the id appearing
in its name, and a job's index is its task's position in the run config kept in the job's
``artifacts/metadata.yaml``, so ids agree with the ones the execution DB would have given.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalport.adapters.formats.nemo_evaluator import read_launcher_config
from evalport.domain.errors import UsageError
from evalport.domain.model import Job, LocalLocation

_SAFE_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,254}$")
_JOB_DIR = re.compile(r"^(?P<task>.+)\.(?P<idx>\d+)$")


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _children(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if _is_dir(p))
    except OSError:
        return []


def invocation_id_of(folder: Path) -> str | None:
    """``20251219_112732-f6926cc47f65e4ed`` -> ``f6926cc47f65e4ed``; None for other names."""
    _, sep, inv = folder.name.partition("-")
    return inv if sep and _SAFE_ID.match(inv) else None


def find_invocation_dirs(roots: Sequence[Path], ident: str) -> list[Path]:
    """The invocation folders under ``roots`` whose invocation id starts with ``ident``'s invocation
    part (a full id, or a prefix that several may share: resolving says it is ambiguous).

    The same invocation in two folders is a UsageError naming both: which copy was meant cannot be
    guessed (the launcher refuses it too).
    """
    needle = ident.split(".", 1)[0].strip()
    if not needle or not _SAFE_ID.match(needle):
        return []
    by_id: dict[str, list[Path]] = {}
    for root in roots:
        for folder in _candidates(Path(root).expanduser()):
            inv = invocation_id_of(folder)
            if inv and inv.startswith(needle) and folder not in by_id.get(inv, []):
                by_id.setdefault(inv, []).append(folder)
    for inv, folders in by_id.items():
        if len(folders) > 1:
            shown = ", ".join(str(p) for p in folders)
            raise UsageError(
                f"--job-dirs: invocation {inv} is in {len(folders)} folders: {shown}; "
                "give only the root that holds the copy to export"
            )
    return [folders[0] for folders in by_id.values()]


def _candidates(root: Path) -> list[Path]:
    """A root's invocation folders: its children, or itself (or its parent, for a job folder) when
    it was given as one (so ``--job-dirs`` takes what ``--job-dir`` takes)."""
    if _is_dir(root / "artifacts") or _is_dir(root / "logs"):
        return [root.parent]
    if invocation_id_of(root) and any(_is_dir(c / "artifacts") for c in _children(root)):
        return [root]
    return _children(root)


def _task_index(tasks: Any) -> dict[str, int]:
    """Job-folder name -> task position: ``<name>.<idx>`` always, a plain ``<name>`` for its first use."""
    index: dict[str, int] = {}
    for position, task in enumerate(tasks if isinstance(tasks, list) else []):
        name = task.get("name") if isinstance(task, Mapping) else task
        if not isinstance(name, str) or not name:
            continue
        index[f"{name}.{position}"] = position
        index.setdefault(name, position)
    return index


def jobs_in_invocation_dir(folder: Path) -> list[Job]:
    """The jobs of one invocation folder, ids numbered by the run config's task order.

    A job folder the config does not name keeps the ``<task>.<index>`` of its own name; one with
    neither (no config, no index) is left out, as the launcher leaves it out.
    """
    inv = invocation_id_of(folder)
    if inv is None:
        return []
    job_dirs = [d for d in _children(folder) if _is_dir(d / "artifacts")]
    config: dict[str, Any] = {}
    for job_dir in job_dirs:
        config = read_launcher_config(job_dir)
        if config:
            break
    evaluation = config.get("evaluation")
    index = _task_index(evaluation.get("tasks") if isinstance(evaluation, Mapping) else None)
    execution = config.get("execution")
    executor = execution.get("type") if isinstance(execution, Mapping) else None
    hostname = execution.get("hostname") if isinstance(execution, Mapping) else None
    try:
        timestamp = folder.stat().st_mtime
    except OSError:
        timestamp = None
    jobs: list[Job] = []
    for job_dir in job_dirs:
        position = index.get(job_dir.name)
        m = _JOB_DIR.match(job_dir.name)
        if position is None and m is None:
            continue
        idx = position if position is not None else int(m["idx"]) if m else 0
        task = m["task"] if m else job_dir.name
        jobs.append(
            Job(
                job_id=f"{inv}.{idx}",
                invocation_id=inv,
                task_name=task,
                executor=str(executor) if isinstance(executor, str) and executor else "local",
                location=LocalLocation(str(job_dir)),
                config=config,
                timestamp=timestamp,
                data=_data(job_dir, hostname),
            )
        )
    return jobs


def _data(job_dir: Path, hostname: Any) -> dict[str, Any]:
    """What the launcher records for a job found this way (``in_database`` false)."""
    data: dict[str, Any] = {"output_dir": str(job_dir), "in_database": False}
    if isinstance(hostname, str) and hostname:
        data.update(hostname=hostname, remote_rundir_path=str(job_dir))
    return data
