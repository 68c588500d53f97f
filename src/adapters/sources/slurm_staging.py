"""Staging a slurm source's remote jobs: one listing call per (user, host) and batch, filtered
here by the ArtifactPolicy, then one ``tar`` stream of exactly the chosen files, extracted by
:mod:`safe_tar`. No path from the execution DB is part of a remote command line: the scripts are
constants and read the paths from stdin.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from evalport.adapters.sources.safe_tar import UnsafeArchiveError, check_relative_name, extract_stream
from evalport.adapters.sources.ssh import RemoteRunner, SshError, SshTarget, SshTransport, sh_command
from evalport.domain.artifacts import (
    LAUNCHER_EXCLUDED,
    NEVER_EXPORTED,
    REQUIRED_ARTIFACTS,
    ArtifactPolicy,
    is_never_exported,
)
from evalport.domain.errors import EvalportError, ResultError
from evalport.domain.model import Job
from evalport.domain.ports import StagedJob

log = logging.getLogger("evalport.sources.slurm")

STAGED_DIR = "slurm"

# Lists run directories (one per stdin line): per directory "J\0<physical path>\0" and then its
# files under artifacts/ (and logs/ when $1 says so) as NUL-terminated relative paths, every name
# that is never sent (caches, databases, the launcher's bulky folders) pruned so find never walks
# it; "M\0" for a directory that cannot be entered; "E\0" at the end.
_NEVER_SENT_NAMES = dict.fromkeys((*NEVER_EXPORTED, *LAUNCHER_EXCLUDED))
_PRUNED = " -o ".join(f"-iname {shlex.quote(name)}" for name in _NEVER_SENT_NAMES)
_LIST_SCRIPT = r"""
while IFS= read -r d; do
  if c=$(cd "$d" 2>/dev/null && pwd -P); then
    printf 'J\0%s\0' "$c"
    (cd "$c" && find artifacts ${1:+logs} \( PRUNED \) -prune -o -type f -print0) 2>/dev/null </dev/null
  else
    printf 'M\0'
  fi
done
printf 'E\0'
""".replace("PRUNED", _PRUNED)

# Identical for every batch: the file list (NUL-separated, relative to /) arrives on stdin.
_TAR_COMMAND = "tar -c -f - -C / --no-recursion --null -T -"


def paths_input(paths: Sequence[str]) -> bytes:
    """One path a line; a relative path that starts with "-" is written "./-..." so cd takes it."""
    return "".join(f"./{p}\n" if p.startswith("-") else f"{p}\n" for p in paths).encode()


def bad_path(path: str) -> str | None:
    if not path:
        return "the execution DB records no remote_rundir_path"
    if "\n" in path or "\x00" in path or "\r" in path:
        return "the remote run directory path contains a line break or NUL byte; refusing it"
    return None


def _safe_name(job_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", job_id)


def stage_remote(
    transport: SshTransport, target: SshTarget, jobs: list[Job], policy: ArtifactPolicy, workdir: Path
) -> dict[str, StagedJob | EvalportError]:
    """Stages ``jobs`` of one (user, host): one listing call, then one tar stream of the chosen files."""
    where = target.destination
    out: dict[str, StagedJob | EvalportError] = {}
    usable: list[Job] = []
    for job in jobs:
        problem = bad_path(job.location.path)
        if problem:
            out[job.job_id] = ResultError(problem, job_id=job.job_id, path=f"{where}:{job.location.path}")
        else:
            usable.append(job)
    if not usable:
        return out
    runner = RemoteRunner(transport, target)
    try:
        listing = runner.run(
            sh_command(_LIST_SCRIPT, "logs" if policy.copy_logs else ""),
            input=paths_input([j.location.path for j in usable]),
        )
    except SshError as exc:
        out.update({j.job_id: ResultError(str(exc), job_id=j.job_id) for j in usable})
        return out
    found = _parse_listing(listing.stdout, len(usable))
    wanted, staged = _choose_files(usable, found, policy, where, out)
    if wanted:
        root = workdir / STAGED_DIR
        error = _tar_stream(transport, target, wanted, root)
        out.update(_arrived(staged, root, error, where))
    return out


_Chosen = dict[str, tuple[Job, str, list[str]]]


def _choose_files(
    jobs: Sequence[Job],
    found: Sequence[tuple[str, list[str]] | None],
    policy: ArtifactPolicy,
    where: str,
    out: dict[str, StagedJob | EvalportError],
) -> tuple[dict[str, str], _Chosen]:
    """The tar members wanted (name relative to / -> path under the staging root) and, per job,
    (job, local folder name, files chosen); a job with no directory or no results is an error in
    ``out``."""
    wanted: dict[str, str] = {}
    staged: _Chosen = {}
    for job, entry in zip(jobs, found, strict=True):
        remote = f"{where}:{job.location.path}"
        if entry is None:
            out[job.job_id] = ResultError(
                "the job directory does not exist on the cluster (or cannot be read); "
                "was it moved, or purged from a scratch file system?",
                job_id=job.job_id,
                path=remote,
            )
            continue
        physical, files = entry
        if "artifacts/results.yml" not in files:
            out[job.job_id] = ResultError(
                "has no artifacts/results.yml on the cluster; did the evaluation finish?",
                job_id=job.job_id,
                path=remote,
            )
            continue
        local_name = _safe_name(job.job_id)
        chosen = _choose(files, policy)
        prefix = physical.lstrip("/")
        for rel in chosen:
            wanted[check_relative_name(f"{prefix}/{rel}")] = f"{local_name}/{rel}"
        staged[job.job_id] = (job, local_name, chosen)
    return wanted, staged


def _arrived(
    staged: _Chosen, root: Path, error: str | None, where: str
) -> dict[str, StagedJob | EvalportError]:
    """Each job's staged folder, or why it is missing (the stream broke, results.yml did not arrive)."""
    out: dict[str, StagedJob | EvalportError] = {}
    for job_id, (job, local_name, chosen) in staged.items():
        directory = root / local_name
        missing = [rel for rel in chosen if not (directory / rel).is_file()]
        if error or "artifacts/results.yml" in missing:
            out[job_id] = ResultError(
                error
                or f"artifacts/results.yml did not arrive from the cluster ({len(missing)} "
                "file(s) missing; were they deleted while exporting?)",
                job_id=job_id,
                path=f"{where}:{job.location.path}",
            )
        else:
            if missing:
                log.warning("job %s: %d file(s) did not arrive: %s", job_id, len(missing), missing)
            out[job_id] = StagedJob(job, directory)
    return out


def _tar_stream(transport: SshTransport, target: SshTarget, wanted: dict[str, str], root: Path) -> str | None:
    """Streams the ``wanted`` files in one tar; returns an error message, or None."""
    names = b"".join(f"./{name}".encode(errors="surrogateescape") + b"\x00" for name in wanted)
    with tempfile.TemporaryFile() as err:
        try:
            proc = transport.popen(target, _TAR_COMMAND, stderr=err)
        except SshError as exc:
            return str(exc)
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, names), daemon=True)
        feeder.start()
        error = None
        try:
            extract_stream(proc.stdout, root, rename=wanted.get)
        except UnsafeArchiveError as exc:
            error = f"the tar stream from {target.destination} was refused: {exc}"
        except Exception as exc:  # a broken stream (connection lost, tar died early)
            error = f"the tar stream from {target.destination} broke: {type(exc).__name__}: {exc}"
        finally:
            if error:
                proc.kill()
            proc.stdout.close()
            rc = proc.wait()
            feeder.join(timeout=5)
        err.seek(0)
        stderr = err.read().decode(errors="replace").strip()
    if rc == 255 and not error:
        error = f"ssh to {target.destination} failed while streaming files: {stderr[-500:]}"
    elif rc != 0 and stderr and not error:
        log.warning("tar on %s reported: %s", target.destination, stderr[-2000:])
    return error


def _feed(stdin: IO[bytes], data: bytes) -> None:
    """Writes the file list in a thread: tar starts streaming before it has read all of it."""
    with contextlib.suppress(OSError, ValueError):
        stdin.write(data)
    with contextlib.suppress(OSError):
        stdin.close()


def _parse_listing(raw: bytes, count: int) -> list[tuple[str, list[str]] | None]:
    """The listing script's output: per directory (physical path, files) or None if missing."""
    tokens = raw.decode(errors="surrogateescape").split("\x00")
    out: list[tuple[str, list[str]] | None] = []
    i = 0
    while i < len(tokens) and len(out) < count:
        tok = tokens[i]
        if tok == "M":
            out.append(None)
            i += 1
        elif tok == "J" and i + 1 < len(tokens):
            physical, files = tokens[i + 1], []
            i += 2
            while i < len(tokens) and tokens[i].startswith(("artifacts/", "logs/")):
                files.append(tokens[i])
                i += 1
            out.append((physical, files) if physical.startswith("/") and physical != "/" else None)
        else:
            break  # "E" or a truncated stream
    out.extend([None] * (count - len(out)))
    return out


def _choose(files: Sequence[str], policy: ArtifactPolicy) -> list[str]:
    """The files to stage: what ``policy`` selects, plus the artifacts the reader itself needs."""
    artifacts = [f.removeprefix("artifacts/") for f in files if f.startswith("artifacts/")]
    logs = [f.removeprefix("logs/") for f in files if f.startswith("logs/")]
    chosen = set(policy.select_artifacts(artifacts))
    chosen.update(a for a in artifacts if a in REQUIRED_ARTIFACTS)
    return sorted(
        [f"artifacts/{a}" for a in chosen if not is_never_exported(a)]
        + [f"logs/{lg}" for lg in policy.select_logs(logs)]
    )
