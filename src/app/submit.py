"""``evalport auto-export --submit``: the export as its own CPU-only Slurm job, after the evaluation.

An evaluation job submits, at its start, a small batch job that depends on it
(``--dependency=afterok:<eval job> --kill-on-invalid-dep=yes``) and runs ``evalport auto-export``
on the same job directory. No GPU time is spent exporting; when the evaluation fails, Slurm
cancels the export job before it starts. The submission is recorded in
``<job dir>/logs/evalport-export.json`` so ``evalport auto-export --check`` can later say whether
the export ran, failed, or never ran (and why).

Options come from ``execution.auto_export.submit`` in the run config, then the flags::

    execution:
      auto_export:
        destinations: [mlflow]
        submit: {partition: cpu, time: "00:30:00", account: my-account, sbatch_args: [--mem=4G]}

``partition`` falls back to the launcher's ``execution.cpu_partition`` and ``account`` to
``execution.account``. Values go to sbatch as separate arguments (never through a shell), and
every word of the batch script is quoted with :func:`shlex.quote`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalport.domain.errors import ConfigError, EvalportError, UsageError
from evalport.domain.redact import redact_text

RECORD_NAME = "evalport-export.json"
DEFAULT_TIME = "00:30:00"
SBATCH_ENV = "EVALPORT_SBATCH"
SACCT_ENV = "EVALPORT_SACCT"
SUBMIT_KEYS = ("partition", "time", "account", "job_name", "output", "sbatch_args", "evalport_command")


class SubmitError(EvalportError):
    """sbatch could not be run or refused the job (the export will not run; exit code 3)."""


@dataclass(frozen=True)
class SubmitOptions:
    """The export job's Slurm options and the command that runs evalport on the CPU node."""

    partition: str | None = None
    time: str | None = DEFAULT_TIME
    account: str | None = None
    job_name: str | None = None
    output: str | None = None
    sbatch_args: tuple[str, ...] = ()
    evalport_command: tuple[str, ...] = field(default_factory=lambda: default_evalport_command())


def default_evalport_command() -> tuple[str, ...]:
    """This interpreter running evalport's CLI: right when the CPU node shares this environment."""
    return (sys.executable, "-m", "evalport.app.cli")


def _words(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where} must be a string or a list of strings, not {type(value).__name__}")


def submit_options(config: Mapping[str, Any], flags: Mapping[str, Any]) -> SubmitOptions:
    """``execution.auto_export.submit`` (with the launcher's fallbacks), then the flags given."""
    execution = config.get("execution") or {}
    auto = execution.get("auto_export") or {} if isinstance(execution, Mapping) else {}
    block = auto.get("submit") or {} if isinstance(auto, Mapping) else {}
    if not isinstance(block, Mapping):
        raise ConfigError("execution.auto_export.submit must be a mapping of sbatch options")
    unknown = sorted(set(block) - set(SUBMIT_KEYS))
    if unknown:
        raise ConfigError(
            f"execution.auto_export.submit: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(valid keys: {', '.join(SUBMIT_KEYS)}; other sbatch options go in sbatch_args)"
        )
    raw: dict[str, Any] = {
        "partition": execution.get("cpu_partition"),
        "account": execution.get("account"),
        **{k: v for k, v in block.items() if v is not None},
        **{k: v for k, v in flags.items() if v not in (None, (), [])},
    }
    for key in ("partition", "time", "account", "job_name", "output"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raw[key] = str(raw[key])
    options = SubmitOptions(
        partition=raw.get("partition"),
        time=raw.get("time", DEFAULT_TIME),
        account=raw.get("account"),
        job_name=raw.get("job_name"),
        output=raw.get("output"),
        sbatch_args=_words(raw.get("sbatch_args", ()), "sbatch_args"),
        **(
            {"evalport_command": _words(raw["evalport_command"], "evalport_command")}
            if raw.get("evalport_command")
            else {}
        ),
    )
    if not options.evalport_command:
        raise ConfigError("evalport_command is empty: give the command that runs evalport on the CPU node")
    return options


def eval_job_id(after: str | None) -> str:
    """``--after JOBID``, else ``$SLURM_JOB_ID`` (the job script's own id)."""
    value = (after or os.environ.get("SLURM_JOB_ID") or "").strip()
    if not value:
        raise UsageError(
            "--submit needs the evaluation's Slurm job id: run it inside the job script "
            "($SLURM_JOB_ID is set there) or pass --after JOBID"
        )
    if not value.replace("_", "").isdigit():
        raise UsageError(f"--after {value!r}: a Slurm job id is a number (e.g. 12345 or 12345_7)")
    return value


def export_arguments(
    job_dir: Path, run_config: str | Path | None, destinations: Sequence[str], overrides: Sequence[str]
) -> list[str]:
    """The ``auto-export`` arguments the export job runs with (those given, without ``--submit``)."""
    args = ["auto-export", "--job-dir", str(job_dir)]
    if run_config is not None:
        args += ["--run-config", str(Path(run_config).expanduser().resolve())]
    for dest in destinations:
        args += ["--dest", dest]
    for text in overrides:
        args += ["-o", text]
    return args


def batch_script(options: SubmitOptions, arguments: Sequence[str], eval_job: str) -> str:
    """The export job's script: one quoted command, its exit code the job's."""
    command = " ".join(shlex.quote(word) for word in [*options.evalport_command, *arguments])
    return (
        "#!/bin/sh\n"
        f"# evalport auto-export, run after Slurm job {shlex.quote(eval_job)} succeeded\n"
        f"exec {command}\n"
    )


def sbatch_arguments(options: SubmitOptions, eval_job: str, job_dir: Path) -> list[str]:
    args = [
        "--parsable",
        f"--dependency=afterok:{eval_job}",
        "--kill-on-invalid-dep=yes",
        "--no-requeue",
        "--nodes=1",
        "--ntasks=1",
        f"--job-name={options.job_name or f'evalport-export-{job_dir.name}'}",
        f"--output={options.output or job_dir / 'logs' / 'evalport-export-%j.log'}",
    ]
    if options.partition:
        args.append(f"--partition={options.partition}")
    if options.time:
        args.append(f"--time={options.time}")
    if options.account:
        args.append(f"--account={options.account}")
    return args + list(options.sbatch_args)


def run_sbatch(args: Sequence[str], script: str) -> str:
    """Submits ``script`` on stdin; the new job's id."""
    sbatch = os.environ.get(SBATCH_ENV) or "sbatch"
    try:
        proc = subprocess.run(
            [sbatch, *args], input=script, capture_output=True, text=True, timeout=120, check=False
        )
    except FileNotFoundError:
        raise SubmitError(f"{sbatch} not found: --submit runs where Slurm's sbatch is on PATH") from None
    except subprocess.TimeoutExpired:
        raise SubmitError(f"{sbatch} did not answer within 120 s") from None
    first = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    job = first.split(";")[0].strip()
    if proc.returncode != 0 or not job.replace("_", "").isdigit():
        detail = " ".join((proc.stderr or proc.stdout).split()) or f"exit code {proc.returncode}"
        raise SubmitError(f"sbatch refused the export job: {redact_text(detail)}")
    return job


@dataclass(frozen=True)
class Submission:
    """What ``--submit`` did; also the record ``--check`` reads."""

    job_dir: str
    eval_job: str
    export_job: str
    submitted_at: float
    command: list[str]
    sbatch: list[str]

    @property
    def record_path(self) -> Path:
        return record_path(Path(self.job_dir))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_path(job_dir: Path) -> Path:
    return job_dir / "logs" / RECORD_NAME


def write_record(submission: Submission) -> None:
    """Atomically (temp file, then rename): a reader never sees half a record."""
    path = submission.record_path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{RECORD_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(submission.to_dict(), fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(job_dir: Path) -> Submission:
    path = record_path(job_dir)
    try:
        doc = json.loads(path.read_text())
        return Submission(**{k: doc[k] for k in Submission.__dataclass_fields__})
    except FileNotFoundError:
        raise UsageError(
            f"{path} does not exist: no export job was submitted for {job_dir} "
            "(evalport auto-export --submit writes it)"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a submission record ({type(exc).__name__}: {exc})") from None


def submit(
    job_dir: Path,
    options: SubmitOptions,
    arguments: Sequence[str],
    *,
    after: str | None = None,
) -> Submission:
    """Submits the export job for ``job_dir`` and records it; raises SubmitError if sbatch fails."""
    eval_job = eval_job_id(after)
    (job_dir / "logs").mkdir(parents=True, exist_ok=True)
    args = sbatch_arguments(options, eval_job, job_dir)
    export_job = run_sbatch(args, batch_script(options, arguments, eval_job))
    command = [redact_text(w) for w in [*options.evalport_command, *arguments]]
    submission = Submission(str(job_dir), eval_job, export_job, time.time(), command, args)
    write_record(submission)
    return submission
