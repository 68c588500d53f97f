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

import logging
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from evalport.adapters.sources.local import LocalSource
from evalport.adapters.sources.slurm_staging import bad_path, paths_input, stage_remote
from evalport.adapters.sources.ssh import (
    CommandResult,
    LocalRunner,
    RemoteRunner,
    SshError,
    SshTarget,
    SshTransport,
    sh_command,
)
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError, ResultError
from evalport.domain.model import Job, JobState, RemoteLocation
from evalport.domain.ports import StagedJob

log = logging.getLogger("evalport.sources.slurm")

SSH_OPTIONS_ENV = "EVALPORT_SSH_OPTIONS"
SSH_CONFIG_ENV = "EVALPORT_SSH_CONFIG"
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


def _slurm_id(job: Job) -> str:
    return str((job.data or {}).get("slurm_job_id") or "")


class SlurmSource(LocalSource):
    """Jobs from the execution DB; slurm jobs that live on a cluster are fetched over ssh."""

    name = "slurm"

    def __init__(
        self,
        exec_db: Path | str | None = None,
        job_dirs: Sequence[Path | str] = (),
        *,
        use_exec_db: bool = True,
        search_roots: Sequence[Path | str] = (),
        ssh_options: Sequence[str] | None = None,
        ssh_config: str | None = None,
        connect_timeout: int | None = None,
        transport: SshTransport | None = None,
        reader: str | None = None,
    ) -> None:
        super().__init__(exec_db, job_dirs, use_exec_db=use_exec_db, search_roots=search_roots, reader=reader)
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
                self._warnings.append(target)
                out.update(dict.fromkeys((j.job_id for j in group), JobState.UNKNOWN))
                continue
            out.update(self._remote_states(target, group))
        return out

    def _remote_states(self, target: SshTarget, jobs: list[Job]) -> dict[str, JobState]:
        runner = RemoteRunner(self.transport, target)
        usable = [j for j in jobs if not bad_path(j.location.path)]
        try:
            slurm = query_slurm_states(runner, [_slurm_id(j) for j in jobs])
            paths = [j.location.path for j in usable]
            result = runner.run(sh_command(_MARKERS_SCRIPT), input=paths_input(paths)) if paths else None
        except SshError as exc:
            self._warnings.append(f"job states of {len(jobs)} job(s) on {target.destination}: {exc}")
            return dict.fromkeys((j.job_id for j in jobs), JobState.UNKNOWN)
        lines = result.stdout.decode(errors="replace").splitlines() if result else []
        markers = {j.job_id: marker_state(line) for j, line in zip(usable, lines, strict=False)}
        return {
            j.job_id: combine_states(slurm.get(_slurm_id(j)), markers.get(j.job_id, JobState.UNKNOWN))
            for j in jobs
        }

    def read_in_place(self, jobs: Sequence[Job]) -> set[str]:
        """As the local source, less the Slurm jobs: their signatures ask ``sacct`` (once for all)."""
        return super().read_in_place([j for j in jobs if j.executor != "slurm"])

    def signatures(self, jobs: Sequence[Job], policy: ArtifactPolicy) -> dict[str, str]:
        """The local source's signatures of the jobs readable here (a remote job has none); a Slurm
        job run on this cluster also signs what ``sacct`` says of it, since its state depends on it
        (one call for all of them; when it fails, those jobs get no signature)."""
        out = super().signatures([j for j in jobs if not isinstance(j.location, RemoteLocation)], policy)
        on_cluster = [j for j in jobs if j.job_id in out and j.executor == "slurm" and _slurm_id(j)]
        if not on_cluster or not shutil.which("sacct"):
            return out
        try:
            slurm = query_slurm_states(LocalRunner(), [_slurm_id(j) for j in on_cluster])
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("local sacct failed: %s", exc)
            slurm = {}
        for job in on_cluster:
            state = slurm.get(_slurm_id(job))
            if state is None:
                del out[job.job_id]
            else:
                out[job.job_id] += f"+slurm:{state.value}"
        return out

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
                out.update(stage_remote(self.transport, target, group, policy, Path(workdir)))
        return {j.job_id: out[j.job_id] for j in jobs}

    def close(self) -> None:
        self.transport.close()
