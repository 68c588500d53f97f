"""The slurm source: jobs the launcher ran on a Slurm cluster, reached over SSH.

A superset of the local source (same execution DB, same ids): local jobs, and slurm jobs whose run
directory is readable here (evalport running on the cluster itself), behave exactly as there. For
the others, per (user, host) and per batch:

- states: one ``sacct`` call for all the batch's Slurm job ids (``scontrol show job`` for the ids
  accounting does not know, e.g. when it is off or lags a just-finished job), combined with the
  jobs' ``logs/stage.exit`` markers read in one more call (a COMPLETED allocation whose evaluation
  exited non-zero is a failed job; a job Slurm forgot falls back to its markers);
- staging: one listing call (``find``, caches pruned) filtered here by the ArtifactPolicy, then one
  ``tar`` stream of exactly the chosen files, extracted by :mod:`safe_tar`.

No path from the execution DB is ever part of a remote command line: the remote scripts are
constants and read the paths from stdin, so ``;``, ``$()``, quotes or spaces in a path are just
characters of a file name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Protocol

from evalport.adapters.sources.local import LocalSource
from evalport.adapters.sources.safe_tar import UnsafeArchiveError, check_relative_name, extract_stream
from evalport.adapters.sources.ssh import (
    CommandResult,
    LocalRunner,
    RemoteRunner,
    SshError,
    SshTarget,
    SshTransport,
    sh_command,
)
from evalport.domain.artifacts import REQUIRED_ARTIFACTS, ArtifactPolicy, is_never_exported
from evalport.domain.errors import EvalportError, ResultError
from evalport.domain.model import Job, JobState, RemoteLocation
from evalport.domain.ports import StagedJob

log = logging.getLogger("evalport.sources.slurm")

SSH_OPTIONS_ENV = "EVALPORT_SSH_OPTIONS"
SSH_CONFIG_ENV = "EVALPORT_SSH_CONFIG"
STAGED_DIR = "slurm"
_SLURM_ID = re.compile(r"^[0-9]+(?:[_+][0-9]+)?$")

_SLURM_STATES: dict[str, JobState] = {
    "COMPLETED": JobState.SUCCEEDED,
    **dict.fromkeys(
        [
            "FAILED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "BOOT_FAIL",
            "DEADLINE",
            "PREEMPTED",
            "SPECIAL_EXIT",
        ],
        JobState.FAILED,
    ),
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    **dict.fromkeys(
        [
            "RUNNING",
            "COMPLETING",
            "CONFIGURING",
            "SUSPENDED",
            "STOPPED",
            "SIGNALING",
            "STAGE_OUT",
            "RESIZING",
        ],
        JobState.RUNNING,
    ),
    **dict.fromkeys(
        ["PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"],
        JobState.PENDING,
    ),
}

# Reads run directories (one per stdin line) and prints each one's marker state on a line.
_MARKERS_SCRIPT = r"""
while IFS= read -r d; do
  if [ -f "$d/logs/stage.exit" ]; then s="exit $(tail -n 1 "$d/logs/stage.exit" 2>/dev/null | tr -d '\r\n')"
  elif [ -e "$d/logs/stage.running" ]; then s=running
  elif [ -e "$d/logs/stage.pre-start" ]; then s=pending
  elif [ -f "$d/artifacts/results.yml" ]; then s=results
  elif [ -d "$d" ]; then s=unknown
  else s=missing
  fi
  printf '%s\n' "$s"
done
"""

# Lists run directories (one per stdin line): per directory "J\0<physical path>\0" and then its
# files under artifacts/ (and logs/ when $1 says so) as NUL-terminated relative paths, caches
# pruned; "M\0" for a directory that cannot be entered; "E\0" at the end.
_LIST_SCRIPT = r"""
while IFS= read -r d; do
  if c=$(cd "$d" 2>/dev/null && pwd -P); then
    printf 'J\0%s\0' "$c"
    (cd "$c" && find artifacts ${1:+logs} -iname '*cache*' -prune -o -type f -print0) 2>/dev/null </dev/null
  else
    printf 'M\0'
  fi
done
printf 'E\0'
"""

# Identical for every batch: the file list (NUL-separated, relative to /) arrives on stdin.
_TAR_COMMAND = "tar -c -f - -C / --no-recursion --null -T -"

_SCONTROL_SCRIPT = r"""
while IFS= read -r id; do
  scontrol -o show job "$id" 2>/dev/null </dev/null || printf 'JobId=%s JobState=UNKNOWN\n' "$id"
done
"""


class Runner(Protocol):
    def run(
        self, command: str, *, input: bytes | None = None, timeout: float | None = 600
    ) -> CommandResult: ...


def slurm_state(text: str) -> JobState:
    """``COMPLETED`` -> succeeded, ``CANCELLED by 1001`` -> cancelled, ``TIMEOUT`` -> failed, ..."""
    word = text.strip().split(" ", 1)[0].rstrip("+").upper()
    return _SLURM_STATES.get(word, JobState.UNKNOWN)


def marker_state(line: str) -> JobState:
    """A line of the markers script: ``exit <time> <code>``, ``running``, ``results``, ..."""
    if line.startswith("exit"):
        words = line.split()
        try:
            return JobState.SUCCEEDED if int(words[-1]) == 0 else JobState.FAILED
        except (ValueError, IndexError):
            return JobState.UNKNOWN
    return {"running": JobState.RUNNING, "pending": JobState.PENDING, "results": JobState.SUCCEEDED}.get(
        line.strip(), JobState.UNKNOWN
    )


def combine_states(slurm: JobState | None, marker: JobState) -> JobState:
    """Slurm's word wins, except that a COMPLETED allocation whose evaluation exited non-zero failed."""
    if slurm is None or slurm is JobState.UNKNOWN:
        return marker
    if slurm is JobState.SUCCEEDED and marker is JobState.FAILED:
        return JobState.FAILED
    return slurm


def query_slurm_states(runner: Runner, slurm_ids: Iterable[str]) -> dict[str, JobState]:
    """States by Slurm job id: one sacct call, then scontrol for the ids sacct does not know."""
    ids = sorted({i for i in slurm_ids if _SLURM_ID.match(i)})
    if not ids:
        return {}
    states: dict[str, JobState] = {}
    result = runner.run("sacct -X -n -P -o JobID,State -j " + shlex.quote(",".join(ids)))
    if result.ok:
        for line in result.stdout.decode(errors="replace").splitlines():
            job_id, _, state = line.partition("|")
            if job_id.strip() in ids:
                states[job_id.strip()] = slurm_state(state)
    else:
        log.debug("sacct failed (%s); asking scontrol", result.stderr.strip())
    unknown = [i for i in ids if i not in states]
    if unknown:
        result = runner.run(sh_command(_SCONTROL_SCRIPT), input="".join(f"{i}\n" for i in unknown).encode())
        for line in result.stdout.decode(errors="replace").splitlines():
            m_id, m_state = re.search(r"\bJobId=(\S+)", line), re.search(r"\bJobState=(\S+)", line)
            if m_id and m_state and m_id[1] in unknown and m_state[1] != "UNKNOWN":
                states[m_id[1]] = slurm_state(m_state[1])
    return states


def _paths_input(paths: Sequence[str]) -> bytes:
    """One path a line; a relative path that starts with "-" is written "./-..." so cd takes it."""
    return "".join(f"./{p}\n" if p.startswith("-") else f"{p}\n" for p in paths).encode()


def _bad_path(path: str) -> str | None:
    if not path:
        return "the execution DB records no remote_rundir_path"
    if "\n" in path or "\x00" in path or "\r" in path:
        return "the remote run directory path contains a line break or NUL byte; refusing it"
    return None


def _slurm_id(job: Job) -> str:
    return str((job.data or {}).get("slurm_job_id") or "")


def _safe_name(job_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", job_id)


class SlurmSource(LocalSource):
    """Jobs from the execution DB; slurm jobs that live on a cluster are fetched over ssh."""

    name = "slurm"

    def __init__(
        self,
        exec_db: Path | str | None = None,
        job_dirs: Sequence[Path | str] = (),
        *,
        use_exec_db: bool = True,
        ssh_options: Sequence[str] | None = None,
        ssh_config: str | None = None,
        connect_timeout: int | None = None,
        transport: SshTransport | None = None,
    ) -> None:
        super().__init__(exec_db, job_dirs, use_exec_db=use_exec_db)
        if transport is None:
            options = (
                list(ssh_options)
                if ssh_options is not None
                else shlex.split(os.environ.get(SSH_OPTIONS_ENV, ""))
            )
            config = ssh_config or os.environ.get(SSH_CONFIG_ENV) or None
            transport = (
                SshTransport(options, config_file=config, connect_timeout=connect_timeout)
                if connect_timeout
                else SshTransport(options, config_file=config)
            )
        self.transport = transport

    # -- helpers -------------------------------------------------------------------------------
    def _by_target(self, jobs: Sequence[Job]) -> dict[SshTarget | str, list[Job]]:
        """Remote jobs grouped by (user, host); an unusable host name maps to its error message."""
        groups: dict[SshTarget | str, list[Job]] = {}
        for job in jobs:
            loc = job.location
            assert isinstance(loc, RemoteLocation)
            try:
                key: SshTarget | str = SshTarget(loc.host, loc.user or None)
            except SshError as exc:
                key = f"{exc}; fix hostname/username of this job in the execution DB"
            groups.setdefault(key, []).append(job)
        return groups

    # -- states --------------------------------------------------------------------------------
    def job_states(self, jobs: Sequence[Job]) -> dict[str, JobState]:
        remote = [j for j in jobs if isinstance(j.location, RemoteLocation)]
        local = [j for j in jobs if not isinstance(j.location, RemoteLocation)]
        out = super().job_states(local)
        on_cluster = [j for j in local if j.executor == "slurm" and _slurm_id(j)]
        if on_cluster and shutil.which("sacct"):
            try:
                slurm = query_slurm_states(LocalRunner(), [_slurm_id(j) for j in on_cluster])
            except (OSError, subprocess.SubprocessError) as exc:
                log.debug("local sacct failed: %s", exc)
                slurm = {}
            for job in on_cluster:
                out[job.job_id] = combine_states(slurm.get(_slurm_id(job)), out[job.job_id])
        for target, group in self._by_target(remote).items():
            if isinstance(target, str):
                self.warnings.append(target)
                out.update(dict.fromkeys((j.job_id for j in group), JobState.UNKNOWN))
                continue
            out.update(self._remote_states(target, group))
        return out

    def _remote_states(self, target: SshTarget, jobs: list[Job]) -> dict[str, JobState]:
        runner = RemoteRunner(self.transport, target)
        usable = [j for j in jobs if not _bad_path(j.location.path)]
        try:
            slurm = query_slurm_states(runner, [_slurm_id(j) for j in jobs])
            paths = [j.location.path for j in usable]
            result = runner.run(sh_command(_MARKERS_SCRIPT), input=_paths_input(paths)) if paths else None
        except SshError as exc:
            self.warnings.append(f"job states of {len(jobs)} job(s) on {target.destination}: {exc}")
            return dict.fromkeys((j.job_id for j in jobs), JobState.UNKNOWN)
        lines = result.stdout.decode(errors="replace").splitlines() if result else []
        markers = {j.job_id: marker_state(line) for j, line in zip(usable, lines, strict=False)}
        return {
            j.job_id: combine_states(slurm.get(_slurm_id(j)), markers.get(j.job_id, JobState.UNKNOWN))
            for j in jobs
        }

    # -- staging -------------------------------------------------------------------------------
    def stage(
        self, jobs: Sequence[Job], policy: ArtifactPolicy, workdir: Path
    ) -> dict[str, StagedJob | EvalportError]:
        remote = [j for j in jobs if isinstance(j.location, RemoteLocation)]
        out = super().stage([j for j in jobs if not isinstance(j.location, RemoteLocation)], policy, workdir)
        for target, group in self._by_target(remote).items():
            if isinstance(target, str):
                out.update({j.job_id: ResultError(target, job_id=j.job_id) for j in group})
            else:
                out.update(self._stage_remote(target, group, policy, Path(workdir)))
        return {j.job_id: out[j.job_id] for j in jobs}

    def _stage_remote(
        self, target: SshTarget, jobs: list[Job], policy: ArtifactPolicy, workdir: Path
    ) -> dict[str, StagedJob | EvalportError]:
        where = target.destination
        out: dict[str, StagedJob | EvalportError] = {}
        usable: list[Job] = []
        for job in jobs:
            problem = _bad_path(job.location.path)
            if problem:
                out[job.job_id] = ResultError(problem, job_id=job.job_id, path=f"{where}:{job.location.path}")
            else:
                usable.append(job)
        if not usable:
            return out
        runner = RemoteRunner(self.transport, target)
        try:
            listing = runner.run(
                sh_command(_LIST_SCRIPT, "logs" if policy.copy_logs else ""),
                input=_paths_input([j.location.path for j in usable]),
            )
        except SshError as exc:
            out.update({j.job_id: ResultError(str(exc), job_id=j.job_id) for j in usable})
            return out
        found = _parse_listing(listing.stdout, len(usable))
        root = workdir / STAGED_DIR
        wanted: dict[str, str] = {}  # member name (relative to /) -> path under root
        staged: dict[str, tuple[Job, str, list[str]]] = {}
        for job, entry in zip(usable, found, strict=True):
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
        if wanted:
            error = self._tar_stream(target, wanted, root)
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

    def _tar_stream(self, target: SshTarget, wanted: dict[str, str], root: Path) -> str | None:
        """Streams the ``wanted`` files in one tar; returns an error message, or None."""
        names = b"".join(f"./{name}".encode(errors="surrogateescape") + b"\x00" for name in wanted)
        with tempfile.TemporaryFile() as err:
            try:
                proc = self.transport.popen(target, _TAR_COMMAND, stderr=err)
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

    def close(self) -> None:
        self.transport.close()


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
