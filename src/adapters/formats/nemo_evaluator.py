"""Reader of nemo-evaluator job directories: artifacts/results.yml, run_config.yml and friends."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from evalport.adapters.file_scan import scan_file, scan_of
from evalport.adapters.files import NotRegularFileError, list_files
from evalport.adapters.formats.safe_yaml import load_yaml_bytes
from evalport.adapters.formats.stage_exit import RESULTS, read_stage_exit
from evalport.adapters.formats.yamlio import describe_yaml_error, load_yaml_file_stat
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError, ResultError
from evalport.domain.model import FileScan, Job, JobState, Metric, TaskResult
from evalport.domain.redact import redact, redact_text
from evalport.domain.results import flatten_results

RUN_CONFIG = "run_config.yml"
METADATA = "metadata.yaml"

log = logging.getLogger("evalport.formats.nemo_evaluator")

#: The bytes of the files a reader parsed (by path under the job) with their stat when opened,
#: kept until the job's files are scanned for secrets.
ReadFiles = dict[str, tuple[bytes, os.stat_result]]


def _load(path: Path, job_id: str, *, required: bool, seen: ReadFiles | None = None) -> Any:
    try:
        doc, data, st = load_yaml_file_stat(path)
    except FileNotFoundError:
        if required:
            raise ResultError(
                f"{path.name} is missing; the job may not have finished, or its artifacts were moved",
                job_id=job_id,
                path=path,
            ) from None
        return None
    except yaml.YAMLError as exc:
        raise ResultError(describe_yaml_error(exc), job_id=job_id, path=path) from None
    except NotRegularFileError as exc:
        raise ResultError(
            f"{exc.strerror}; replace it with the real file", job_id=job_id, path=path
        ) from None
    except OSError as exc:
        raise ResultError(f"cannot read: {exc.strerror or exc}", job_id=job_id, path=path) from None
    if seen is not None:
        seen[f"artifacts/{path.name}"] = (data, st)
    return doc


def _dig(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def read_metadata(
    job_dir: Path, notes: list[str] | None = None, seen: ReadFiles | None = None, *, config: bool = True
) -> tuple[dict[str, Any], str | None]:
    """``metadata.yaml``: the launcher's resolved run config (for jobs found without a DB record)
    and the launcher command line, secrets masked. Read once per job.

    With ``config=False`` (the job has its config from the DB) only the top-level
    ``launcher_command`` entry is parsed when the document is plain block YAML
    (:func:`~evalport.adapters.formats.yaml_entry.top_level_entry`), else the whole of it.
    Optional: a missing file is nothing; one that cannot be used is a note in ``notes``.
    """
    path = job_dir / "artifacts" / METADATA
    try:
        meta, data, st = _load_metadata(path, config)
    except FileNotFoundError:
        return {}, None
    except yaml.YAMLError as exc:
        _note(notes, f"artifacts/{METADATA} ignored: {describe_yaml_error(exc)}")
        return {}, None
    except OSError as exc:
        _note(notes, f"artifacts/{METADATA} ignored: it {exc.strerror or exc}")
        return {}, None
    if seen is not None:
        seen[f"artifacts/{METADATA}"] = (data, st)
    cfg = _dig(meta, "launcher_resolved_config")
    command = _dig(meta, "launcher_command")
    return (cfg if isinstance(cfg, dict) else {}), (
        redact_text(command) if isinstance(command, str) else None
    )


def _load_metadata(path: Path, config: bool) -> tuple[Any, bytes, os.stat_result]:
    if config:
        return load_yaml_file_stat(path)
    from evalport.adapters.files import FileTooLargeError, read_regular_file_stat
    from evalport.adapters.formats.safe_yaml import YamlLimitError, YamlLimits, too_large
    from evalport.adapters.formats.yaml_entry import UNUSUAL, top_level_entry

    limits = YamlLimits.from_env()
    try:
        data, st = read_regular_file_stat(path, limits.max_bytes)
    except FileTooLargeError as exc:
        raise YamlLimitError(too_large(exc.size, limits)) from None
    command = top_level_entry(data, "launcher_command", limits)
    if command is UNUSUAL:
        return load_yaml_bytes(data, limits), data, st
    return {"launcher_command": command}, data, st


def read_launcher_config(job_dir: Path, notes: list[str] | None = None) -> dict[str, Any]:
    """The launcher's resolved run config from ``metadata.yaml`` ({} when there is none)."""
    return read_metadata(job_dir, notes)[0]


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)


def _symlink_note(path: Path, name: str) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"{name}/ is a symbolic link (to {target}); not followed, so no {name} are exported"


#: Configs already masked in this chunk, by the id of the config read (kept alive beside it).
RedactedConfigs = dict[int, tuple[Any, Any]]


def _redacted(config: Any, done: RedactedConfigs | None) -> Any:
    """``redact(config)``, once per config object: the jobs of an invocation share their DB config
    (:mod:`evalport.adapters.sources.execdb`), so their results share one masked copy, which is also
    pickled once on the way back from a worker."""
    if done is None:
        return redact(config)
    got = done.get(id(config))
    if got is None or got[0] is not config:
        got = done[id(config)] = (config, redact(config))
    return got[1]


def read_task_result(
    job: Job,
    job_dir: Path,
    state: JobState = JobState.SUCCEEDED,
    scan: ArtifactPolicy | None = None,
    redacted: RedactedConfigs | None = None,
) -> TaskResult:
    """Reads one job directory into a TaskResult; every problem is a ResultError naming job and file.

    With ``scan``, every file that policy sends is scanned for secrets here, from the bytes just
    parsed where there are some (:attr:`TaskResult.scans`), so staging need not read it again.
    ``redacted``: the configs masked so far by the caller, reused for a job sharing one.
    """
    artifacts = _artifacts_dir(job, job_dir)
    notes: list[str] = []
    seen: ReadFiles | None = {} if scan is not None else None
    results_path = artifacts / RESULTS
    doc, metrics = _read_results(job, results_path, seen)
    run_config_path = artifacts / RUN_CONFIG
    run_config = _load(run_config_path, job.job_id, required=True, seen=seen)
    if not isinstance(run_config, dict):
        raise ResultError("is not a mapping", job_id=job.job_id, path=run_config_path)
    harness, task, model_id = _identity(job, doc, run_config, run_config_path)
    launcher_config, launcher_command = read_metadata(job_dir, notes, seen, config=not job.config)
    config = job.config or launcher_config
    timestamp = job.timestamp
    if timestamp is None:
        try:
            timestamp = os.stat(results_path).st_mtime
        except OSError:
            timestamp = None
    artifact_files, log_files = _files(artifacts, job_dir / "logs", notes)
    scans = (
        _scans(job_dir, scan, artifact_files, log_files, seen)
        if scan is not None and seen is not None
        else {}
    )
    return TaskResult(
        job_id=job.job_id,
        invocation_id=job.invocation_id,
        task=task,
        harness=harness,
        model_id=model_id,
        executor=job.executor,
        metrics=tuple(metrics),
        state=state,
        container=_text_or_none(job.data.get("eval_image") or job.data.get("container")),
        timestamp=timestamp,
        config=_redacted(config, redacted if job.config else None),
        artifacts=tuple(artifact_files),
        logs=tuple(log_files),
        notes=tuple(notes),
        results_dir=job.results_dir,
        launcher_command=launcher_command,
        scans=scans,
    )


def _scans(
    job_dir: Path, policy: ArtifactPolicy, artifact_files: list[str], log_files: list[str], seen: ReadFiles
) -> dict[str, FileScan]:
    """The secret scan of each file ``policy`` sends: from the bytes already read, else read here."""
    rels = [f"artifacts/{a}" for a in policy.select_artifacts(artifact_files)]
    rels += [f"logs/{name}" for name in policy.select_logs(log_files)]
    out: dict[str, FileScan] = {}
    for rel in rels:
        path = job_dir / rel
        got = seen.get(rel)
        scan = scan_of(path, *got) if got is not None else scan_file(path)
        if scan is not None:
            out[rel] = scan
    return out


def _artifacts_dir(job: Job, job_dir: Path) -> Path:
    """``<job_dir>/artifacts``, a real folder (never followed through a symbolic link)."""
    artifacts = job_dir / "artifacts"
    if os.path.islink(artifacts):
        raise ResultError(
            f"artifacts/ is a symbolic link (to {os.readlink(artifacts)}); evalport does not follow "
            "links out of a job directory; put the folder itself in place",
            job_id=job.job_id,
            path=job_dir,
        )
    if not artifacts.is_dir():
        raise ResultError(
            "has no artifacts/ folder; is this a job directory (<invocation dir>/<task>.<index>)?",
            job_id=job.job_id,
            path=job_dir,
        )
    return artifacts


def _read_results(
    job: Job, results_path: Path, seen: ReadFiles | None = None
) -> tuple[dict[str, Any], list[Metric]]:
    """``results.yml``: the document and its metrics, flattened."""
    doc = _load(results_path, job.job_id, required=True, seen=seen)
    if not isinstance(doc, dict) or "results" not in doc:
        raise ResultError(
            "has no 'results' section; no metrics to export", job_id=job.job_id, path=results_path
        )
    try:
        return doc, flatten_results(doc["results"])
    except ResultError as exc:
        raise ResultError(str(exc), job_id=job.job_id, path=results_path) from None


def _identity(
    job: Job, doc: Mapping[str, Any], run_config: Mapping[str, Any], run_config_path: Path
) -> tuple[str, str, str]:
    """(harness, task, model id) from run_config.yml, results.yml and the job record, in that order."""
    harness = run_config.get("framework_name") or run_config.get("pkg_name")
    task = _dig(run_config, "config", "type") or _dig(doc, "config", "type") or job.task_name
    model_id = (
        _dig(run_config, "target", "api_endpoint", "model_id")
        or _dig(doc, "target", "api_endpoint", "model_id")
        or job.model_id
    )
    if not harness:
        raise ResultError(
            "has no 'framework_name'; cannot tell the harness", job_id=job.job_id, path=run_config_path
        )
    if not model_id:
        raise ResultError(
            "has no target.api_endpoint.model_id; cannot tell the model",
            job_id=job.job_id,
            path=run_config_path,
        )
    return str(harness), str(task), str(model_id)


def _files(artifacts: Path, logs: Path, notes: list[str]) -> tuple[list[str], list[str]]:
    """The regular files under artifacts/ and logs/; what was passed over is named in ``notes``."""
    if os.path.islink(logs):
        notes.append(_symlink_note(logs, "logs"))
    passed_over: list[str] = []
    artifact_files = list_files(artifacts, passed_over)
    artifact_notes = [f"artifacts/{entry}" for entry in passed_over]
    passed_over.clear()
    log_files = list_files(logs, passed_over)
    skipped = artifact_notes + [f"logs/{entry}" for entry in passed_over]
    if skipped:
        notes.append("not sent (only regular files leave): " + "; ".join(skipped))
    return artifact_files, log_files


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


ReadRequest = tuple[Job, Path, JobState]


def _read_chunk(
    requests: list[ReadRequest], scan: ArtifactPolicy | None = None
) -> list[TaskResult | EvalportError]:
    """Never raises: whatever goes wrong reading a job is that job's ResultError (type and message)."""
    out: list[TaskResult | EvalportError] = []
    redacted: RedactedConfigs = {}
    for job, directory, state in requests:
        try:
            out.append(read_task_result(job, directory, state, scan, redacted))
        except EvalportError as exc:
            out.append(exc)
        except Exception as exc:  # the safety net of the trust boundary: one job never breaks others
            log.debug("reading job %s raised", job.job_id, exc_info=True)
            message = f"could not be read ({type(exc).__name__}: {exc})"
            out.append(ResultError(message, job_id=job.job_id, path=directory))
    return out


def _can_fork() -> bool:
    """Forking is safe only from a single-threaded process (an embedding launcher may run threads)."""
    import multiprocessing
    import threading

    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


WORKERS_ENV = "EVALPORT_READ_WORKERS"


def _default_workers() -> int:
    """``$EVALPORT_READ_WORKERS`` (1 reads in this process, e.g. to profile), else the CPUs, up to 8."""
    try:
        return max(1, int(os.environ[WORKERS_ENV]))
    except (KeyError, ValueError):
        return min(os.cpu_count() or 1, 8)


class NemoEvaluatorReader:
    """The ResultReader the service uses: one job directory in, one TaskResult out.

    ``read_many`` spreads large batches over worker processes: YAML parsing is CPU-bound, and for
    thousands of jobs it is most of an export's time.
    """

    def __init__(self, workers: int | None = None, parallel_threshold: int = 256) -> None:
        self.workers = workers if workers is not None else _default_workers()
        self.parallel_threshold = parallel_threshold

    def read(self, job: Job, job_dir: Path, state: JobState) -> TaskResult:
        return read_task_result(job, job_dir, state)

    def read_many(
        self, requests: list[ReadRequest], scan: ArtifactPolicy | None = None
    ) -> list[TaskResult | EvalportError]:
        """Reads every request; with ``scan``, also scans the files that policy sends for secrets."""
        out: list[TaskResult | EvalportError] = []
        for results in self.read_batches(requests, [len(requests)], scan):
            out.extend(results)
        return out

    def read_batches(
        self,
        requests: Sequence[ReadRequest],
        batch_sizes: Sequence[int],
        scan: ArtifactPolicy | None = None,
        before_batch: Callable[[int], None] | None = None,
    ) -> Iterator[list[TaskResult | EvalportError]]:
        """The results of each batch of consecutive requests, in order, each as soon as it is read
        (in worker processes for large runs, which read ahead while the caller exports).
        ``before_batch(k)`` runs before any request of batch ``k`` is read."""
        if self.workers < 2 or len(requests) < self.parallel_threshold or not _can_fork():
            start = 0
            for k, count in enumerate(batch_sizes):
                if before_batch is not None:
                    before_batch(k)
                yield _read_chunk(list(requests[start : start + count]), scan)
                start += count
            return
        from functools import partial

        from evalport.adapters.formats.read_pool import stream_in_workers

        read_chunk = partial(_read_chunk, scan=scan)
        yield from stream_in_workers(
            read_chunk,
            requests,
            batch_sizes,
            self.workers,
            job_id=lambda r: r[0].job_id,
            before_batch=before_batch,
        )


__all__ = ["EvalportError", "NemoEvaluatorReader", "read_stage_exit", "read_task_result"]
