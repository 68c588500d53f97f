"""The MLflow sink: one run per task (or per invocation), found again by a run-key tag and upserted.

Talks to MLflow through ``MlflowClient`` only (the fluent API keeps global state). Per job it
makes one lookup, at most one ``create_run``, batched ``log_batch`` calls, one directory upload
and one ``set_terminated``; nothing is written when nothing differs. mlflow is imported lazily.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shlex
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import Field, field_validator

from evalport.adapters.retry import RetryPolicy, is_transient
from evalport.adapters.sinks.base import BaseSink, TrackerSinkConfig
from evalport.adapters.sinks.mlflow_locks import held, run_lock_path, store_lock_path
from evalport.adapters.sinks.mlflow_names import (
    MAX_TAG_VALUE_LENGTH,
    assign_keys,
    clip,
    flatten_params,
    mlflow_metric_key,
    mlflow_param_key,
    stored_run_key,
    tag_equals_filter,
    tag_prefix_filter,
)
from evalport.adapters.staging import stage_item
from evalport.domain.identity import LogMode, RunIdentity
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities
from evalport.domain.redact import redact, redact_text
from evalport.domain.report import Outcome, Status

__all__ = ["RUN_KEY_TAG", "MlflowSink", "MlflowSinkConfig", "mlflow_metric_key"]

T = TypeVar("T")
log = logging.getLogger("evalport.sinks.mlflow")

RUN_KEY_TAG = "evalport.run_key"
LOG_MODE_TAG = "evalport.log_mode"
DIGEST_TAG = "evalport.artifacts_digest"
JOB_TAG = "evalport.job"
NAMES_FILE = "evalport/metric_names.json"
DEFAULT_DB = "mlflow.db"
# MLflow's per-call limits for log_batch.
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
# A float64's largest value: what MLflow's SQL stores keep for +-inf.
FLOAT_MAX = 1.7976931348623157e308
_RUN_NAME_FIELDS = ("invocation_id", "model_id", "harness", "task", "job_id")
# The run id in a location this sink returned (``runs:/<id>`` or ``.../runs/<id>``).
_LOCATED_RUN = re.compile(r"(?:^runs:/|/runs/)([0-9A-Za-z_-]{1,64})$")
_DIGEST_CHUNK = 1 << 20


class MlflowSinkConfig(TrackerSinkConfig):
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; else $MLFLOW_TRACKING_URI; else sqlite:///mlflow.db here",
    )
    experiment_name: str = Field(default="evalport", min_length=1)
    run_name: str | None = Field(
        default=None, description="run name; may use {invocation_id} {model_id} {harness} {task} {job_id}"
    )
    description: str | None = Field(default=None, description="the run's description (mlflow.note.content)")
    tags: dict[str, str] = Field(default_factory=dict, description="extra tags on every run")
    extra_metadata: dict[str, Any] = Field(default_factory=dict, description="extra params on every run")
    log_config_params: bool = Field(default=False, description="log the run config, flattened, as params")
    log_config_params_max_depth: int = Field(default=10, ge=1, le=50)
    skip_existing: bool = Field(default=False, description="leave jobs already in MLflow untouched")

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_values_as_text(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in value.items()}
        return value

    @field_validator("run_name")
    @classmethod
    def _run_name_fields(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(**{f: "x" for f in _RUN_NAME_FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"run_name {value!r} uses an unknown placeholder ({exc}); "
                    f"use {', '.join('{' + f + '}' for f in _RUN_NAME_FIELDS)}"
                ) from None
        return value


# ---- MLflow's own HTTP client: no hidden retries, a short timeout (our RetryPolicy retries) ----
_ENV_LOCK = threading.Lock()
_ENV_USERS = 0
_ENV_SET: dict[str, str] = {}


@contextlib.contextmanager
def mlflow_http_settings(timeout: int, max_retries: int = 0) -> Iterator[None]:
    """Sets ``MLFLOW_HTTP_REQUEST_TIMEOUT``/``_MAX_RETRIES`` (and quiets stdout) unless the user set them.

    MLflow reads them on every request; its defaults (7 retries, 120 s) make a dead server take
    minutes to report. Nested or concurrent blocks share one setting and restore it at the end.
    """
    global _ENV_USERS
    wanted = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
        # set_terminated would print "View run ... at ..." for every run to stdout.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    with _ENV_LOCK:
        if _ENV_USERS == 0:
            for name, value in wanted.items():
                if name not in os.environ:
                    os.environ[name] = value
                    _ENV_SET[name] = value
        _ENV_USERS += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_USERS -= 1
            if _ENV_USERS == 0:
                for name, value in _ENV_SET.items():
                    if os.environ.get(name) == value:
                        del os.environ[name]
                _ENV_SET.clear()


_TRANSIENT_MARKERS = (
    "connection refused",
    "max retries exceeded",
    "timed out",
    "timeout",
    "connection reset",
    "connection aborted",
    "remotedisconnected",
    "temporarily_unavailable",
    "resource_exhausted",
    "too many 429",
    "too many 5",
    "database is locked",
    "bad gateway",
    "service unavailable",
)
_TRANSIENT_CODES = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL_ERROR", "DEADLINE_EXCEEDED"}
)


def is_transient_mlflow(exc: BaseException) -> bool:
    """Connection problems, timeouts, 429 and 5xx, also when MLflow wrapped them in MlflowException."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if is_transient(current):
            return True
        if getattr(current, "error_code", None) in _TRANSIENT_CODES:
            return True
        text = str(current).lower()
        if any(marker in text for marker in _TRANSIENT_MARKERS):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


class CallFailed(Exception):
    """A call to MLflow failed for good (after retries when the error was transient)."""

    def __init__(self, what: str, error: BaseException, attempts: int, transient: bool) -> None:
        self.what, self.error, self.attempts, self.transient = what, error, attempts, transient
        super().__init__(f"{what}: {error}")


def _short(error: BaseException) -> str:
    """The server's message, or what went wrong on the wire, in one line."""
    text = str(getattr(error, "message", None) or error)
    low = text.lower()
    if "connection refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "the request timed out"
    if "name or service not known" in low or "nodename nor servname" in low:
        return "unknown host name"
    code = getattr(error, "error_code", None)
    first = " ".join(text.split())
    return clip(f"{code}: {first}" if code and code not in first else first, 300)


def _same(old: float | None, new: float) -> bool:
    if old is None:
        return False
    if math.isnan(new):
        return math.isnan(old)
    if math.isinf(new):
        return old == new or old == math.copysign(FLOAT_MAX, new)
    return old == new


def _forget_engine(uri: str) -> None:
    """Drops what MLflow cached for a sqlite store whose file is gone (private MLflow state).

    MLflow keeps one store object and one SQLAlchemy engine per store URI for the life of the
    process; after the file was deleted they go on using the deleted file (or a new empty one
    without tables), so a second export in the same process (the Python API, a test) would find
    runs that no longer exist. Without those caches the next client creates the store afresh.
    """
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.tracking._tracking_service import utils

        engines = getattr(SqlAlchemyStore, "_engine_map", None)
        engine = engines.pop(uri, None) if isinstance(engines, dict) else None
        if engine is not None:
            engine.dispose()
        cached = getattr(type(utils._tracking_store_registry), "_get_store_with_resolved_uri", None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
    except Exception:  # another MLflow version: a new process still sees the new store
        log.debug("mlflow: cannot drop the cached store of %s", uri, exc_info=True)


def _run_state(run: Any) -> _RunState:
    return _RunState(
        run.info.run_id,
        run.info.artifact_uri,
        run.info.status == "FINISHED",
        dict(run.data.metrics),
        dict(run.data.params),
        dict(run.data.tags),
    )


@dataclass
class _RunState:
    """What a run holds as far as this export knows (read once, then kept up to date)."""

    run_id: str
    artifact_uri: str
    finished: bool
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class MlflowSink(BaseSink):
    """MLflow tracking (server or sqlite): runs per task or invocation, upserted by a run-key tag."""

    name: ClassVar[str] = "mlflow"
    extra: ClassVar[str | None] = "mlflow"
    requires: ClassVar[tuple[str, ...]] = ("mlflow",)
    Config = MlflowSinkConfig
    # MLflow keeps NaN but stores +-inf as +-1.797e308 (its SQL stores clamp them): not faithful.
    capabilities = SinkCapabilities(
        artifacts=True, logs=True, upsert=True, multi_task=True, non_finite_values=False
    )
    config: MlflowSinkConfig

    #: Retries of one MLflow call; tests swap in a policy with short waits.
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(
        attempts=4, initial_wait=0.5, max_wait=4.0, total_timeout=30.0
    )
    #: Seconds MLflow's HTTP client waits for a response (unless MLFLOW_HTTP_REQUEST_TIMEOUT is set).
    http_timeout: ClassVar[int] = 15
    #: Jobs exported concurrently against an HTTP tracking server (sqlite stores go one at a time).
    workers: ClassVar[int] = 4

    def __init__(
        self,
        config: MlflowSinkConfig | dict[str, Any] | None = None,
        *,
        retry: RetryPolicy | None = None,
        workers: int | None = None,
    ) -> None:
        super().__init__(config)
        self._retry = retry or type(self).retry_policy
        self._workers = workers or type(self).workers
        self._uri, self._embedded = self._resolve_uri()
        self._degraded = False
        self._client_cache: Any = None

    # ---- where results go -----------------------------------------------------------------------
    def _resolve_uri(self) -> tuple[str, bool]:
        uri = self.config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return uri, False
        return f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve().as_posix()}", True

    @property
    def tracking_uri(self) -> str:
        return self._uri

    @property
    def _is_http(self) -> bool:
        return self._uri.startswith(("http://", "https://"))

    @property
    def _sqlite_path(self) -> Path | None:
        if not self._uri.startswith("sqlite:///"):
            return None
        raw = self._uri[len("sqlite:///") :].split("?", 1)[0]
        return Path(raw) if raw and raw != ":memory:" else None

    def describe(self) -> str:
        """Where results went and how to look at them (printed by the CLI after an export)."""
        uri = redact_text(self._uri)
        exp = f"experiment {self.config.experiment_name!r}"
        if self._uri.startswith("sqlite:"):
            # Quoted for a POSIX shell: a path with spaces or ``$(...)`` pastes as one safe word.
            return f"{uri}, {exp} (view: mlflow ui --backend-store-uri {shlex.quote(uri)})"
        if self._is_http:
            return f"{uri}, {exp} (open {uri.rstrip('/')} in a browser)"
        return f"{uri}, {exp}"

    def _client(self) -> Any:
        """The client; opening a sqlite store (which creates it on first use) holds the store's lock."""
        if self._client_cache is None:
            from mlflow import MlflowClient

            db = self._sqlite_path
            if db is None:
                self._client_cache = MlflowClient(tracking_uri=self._uri)
            else:
                with held(store_lock_path(db)):
                    if not db.exists():
                        _forget_engine(self._uri)
                    self._client_cache = MlflowClient(tracking_uri=self._uri)
        return self._client_cache

    def _run_lock(self, key: str) -> contextlib.AbstractContextManager[bool]:
        return held(run_lock_path(self._uri, self.config.experiment_name, key, self._sqlite_path))

    # ---- calls with retries -------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return fn()

        policy = RetryPolicy(attempts=1) if self._degraded else self._retry
        try:
            out = policy.call(attempt, is_transient_mlflow)
        except Exception as exc:
            transient = is_transient_mlflow(exc)
            if transient:
                # The destination stayed down through a whole retry cycle: later jobs get one
                # attempt each instead of waiting out the backoff again.
                self._degraded = True
            raise CallFailed(what, exc, attempts, transient) from exc
        self._degraded = False
        return out

    def _reason(self, failure: CallFailed) -> str:
        where = redact_text(self._uri)
        detail = _short(failure.error)
        if failure.transient:
            tries = f" after {failure.attempts} attempts" if failure.attempts > 1 else ""
            return (
                f"MLflow at {where} did not answer ({failure.what}: {detail}){tries}; make sure the "
                f"tracking server is running and tracking_uri is right, then export again"
            )
        return f"MLflow at {where} refused to {failure.what}: {detail}"

    # ---- export ---------------------------------------------------------------------------------
    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        if not items:
            return []
        mode = LogMode(self.config.log_mode)
        # invocation -> run key -> item indices: one run lookup per invocation, one run per key.
        units: dict[str, dict[str, list[int]]] = {}
        for index, item in enumerate(items):
            key = RunIdentity.for_result(item.result, mode).key
            units.setdefault(item.result.invocation_id, {}).setdefault(key, []).append(index)
        outcomes: list[Outcome | None] = [None] * len(items)
        with (
            mlflow_http_settings(self.http_timeout),
            tempfile.TemporaryDirectory(prefix="evalport-mlflow-") as tmp,
        ):
            try:
                client = self._client()
                experiment_id, fresh = self._experiment_id(client)
            except CallFailed as failure:
                reason = self._reason(failure)
                return [self._outcome(i, Status.FAILED, reason) for i in items]
            except Exception as exc:  # a malformed URI, a missing driver...
                reason = f"cannot use MLflow tracking URI {redact_text(self._uri)}: {_short(exc)}"
                return [self._outcome(i, Status.FAILED, reason) for i in items]

            def run_unit(groups: dict[str, list[int]]) -> None:
                try:
                    # An experiment created by this call holds no runs: nothing to look up.
                    found = {} if fresh else self._find_runs(client, experiment_id, list(groups))
                except CallFailed as failure:
                    reason = self._reason(failure)
                    for indices in groups.values():
                        for i in indices:
                            outcomes[i] = self._outcome(items[i], Status.FAILED, reason)
                    return
                for key, indices in groups.items():
                    done = self._export_group(
                        client, experiment_id, key, found.get(key), [items[i] for i in indices], Path(tmp)
                    )
                    for index, outcome in zip(indices, done, strict=True):
                        outcomes[index] = outcome

            workers = min(self._workers, len(units)) if self._is_http else 1
            if workers > 1:
                pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evalport-mlflow")
                try:
                    for future in [pool.submit(run_unit, groups) for groups in units.values()]:
                        future.result()
                except BaseException:  # a stop signal: drop the queued jobs, finish only those in hand
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                pool.shutdown(wait=True)
            else:
                for groups in units.values():
                    run_unit(groups)
        return [
            o if o is not None else self._outcome(items[i], Status.FAILED, "mlflow: no outcome recorded")
            for i, o in enumerate(outcomes)
        ]

    def _outcome(self, item: ExportItem, status: Status, reason: str = "", location: str = "") -> Outcome:
        return Outcome(item.result.job_id, self.destination, status, reason, location)

    def _experiment_id(self, client: Any) -> tuple[str, bool]:
        """(id, created now): looked up once per export call, created when missing."""
        name = self.config.experiment_name
        experiment = self._call(f"look up experiment {name!r}", lambda: client.get_experiment_by_name(name))
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise CallFailed(
                    f"use experiment {name!r}",
                    RuntimeError(
                        "it is deleted; restore it (mlflow experiments restore) or choose another "
                        "experiment_name"
                    ),
                    1,
                    False,
                )
            return experiment.experiment_id, False
        location = None
        db = self._sqlite_path
        if db is not None:
            # Without this MLflow puts artifacts in ./mlruns of whatever directory the export ran in.
            slug = mlflow_metric_key(name).replace("/", "_").replace(" ", "_")
            location = (db.resolve().parent / "mlartifacts" / slug).as_uri()

        def create() -> tuple[str, bool]:
            from mlflow.exceptions import MlflowException

            try:
                return client.create_experiment(name, artifact_location=location), True
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return client.get_experiment_by_name(name).experiment_id, False  # created concurrently

        return self._call(f"create experiment {name!r}", create)

    def _find_runs(self, client: Any, experiment_id: str, keys: list[str]) -> dict[str, Any]:
        """The oldest active run carrying each key (one search for an invocation's keys).

        Runs carry ``stored_run_key(key)``: the key itself, or its hash when it is too long for a tag.
        """
        wanted = {stored_run_key(k): k for k in keys}
        stored = list(wanted)
        if len(stored) == 1:
            flt, _ = tag_equals_filter(RUN_KEY_TAG, stored[0])
        else:
            prefix = os.path.commonprefix(stored)  # noqa: RUF071 - a string prefix for LIKE is meant
            flt = tag_prefix_filter(RUN_KEY_TAG, prefix) if prefix else None
            if flt is None:
                found_each = [self._find_runs(client, experiment_id, [one]) for one in keys]
                return {k: v for part in found_each for k, v in part.items()}
        found: dict[str, Any] = {}
        token = None
        while True:
            page = self._call(
                "search runs",
                lambda token=token: client.search_runs(
                    [experiment_id],
                    flt,
                    max_results=1000,
                    order_by=["attributes.start_time ASC"],
                    page_token=token,
                ),
            )
            for run in page:  # LIKE (and a superset filter) may match more than asked: compare exactly
                key = wanted.get(run.data.tags.get(RUN_KEY_TAG, ""))
                if key is not None and key not in found:
                    found[key] = run
            token = page.token
            if not token:
                return found

    def _export_group(
        self, client: Any, experiment_id: str, key: str, run: Any, items: list[ExportItem], tmp: Path
    ) -> list[Outcome]:
        """The items sharing one run (one item per_task; an invocation's tasks in multi_task)."""
        state = None if run is None else _run_state(run)
        out: list[Outcome] = []
        for item in items:
            try:
                state, outcome = self._export_item(client, experiment_id, key, state, item, tmp)
                out.append(outcome)
            except CallFailed as failure:
                out.append(self._outcome(item, Status.FAILED, self._reason(failure)))
            except OSError as exc:
                where = getattr(exc, "filename", None) or item.directory
                out.append(self._outcome(item, Status.FAILED, f"cannot stage {where}: {exc.strerror or exc}"))
        return out

    def _run_name(self, result: Any) -> str:
        multi = LogMode(self.config.log_mode) is LogMode.MULTI_TASK
        fields = {
            "invocation_id": result.invocation_id,
            "model_id": result.model_id,
            "harness": "multi" if multi else result.harness,
            "task": "multi" if multi else result.task,
            "job_id": result.invocation_id if multi else result.job_id,
        }
        if self.config.run_name:
            return clip(self.config.run_name.format(**fields), 250)
        return f"eval-{result.invocation_id}" if multi else f"eval-{result.invocation_id}-{result.task}"

    def _find_or_create_run(
        self, client: Any, experiment_id: str, key: str, tags: dict[str, str]
    ) -> tuple[_RunState, bool]:
        """(the run for ``key``, created now): looked up again and created under the run key's lock.

        The export's first search found no run, but another process may have created one since;
        the lock makes "search, then create" one step for every evalport process on this machine.
        """
        with self._run_lock(key):
            run = self._find_runs(client, experiment_id, [key]).get(key)
            if run is not None:
                return _run_state(run), False
            return self._create_run(client, experiment_id, tags), True

    def _create_run(self, client: Any, experiment_id: str, tags: dict[str, str]) -> _RunState:
        """A new run carrying the run key and the first job's tags (one log_batch transaction fewer)."""
        name = tags.pop("mlflow.runName")
        run = self._call(
            "create a run",
            lambda: client.create_run(
                experiment_id, start_time=int(time.time() * 1000), tags=tags, run_name=name
            ),
        )
        return _RunState(run.info.run_id, run.info.artifact_uri, False, {}, {}, dict(run.data.tags))

    # ---- what one job contributes ------------------------------------------------------------
    def _job_tags(self, result: Any) -> dict[str, str]:
        multi = LogMode(self.config.log_mode) is LogMode.MULTI_TASK
        tags = {
            RUN_KEY_TAG: stored_run_key(RunIdentity.for_result(result, self.config.log_mode).key),
            LOG_MODE_TAG: LogMode(self.config.log_mode).value,
            "invocation_id": result.invocation_id,
            "model_id": result.model_id,
            "executor": result.executor,
            "mlflow.runName": self._run_name(result),
            f"{JOB_TAG}.{mlflow_param_key(result.task)}": result.job_id,
        }
        if not multi:
            tags.update(
                {
                    "job_id": result.job_id,
                    "harness": result.harness,
                    "task": result.task,
                    "state": result.state.value,
                }
            )
            if result.container:
                tags["container"] = result.container
        if self.config.description:
            tags["mlflow.note.content"] = redact_text(self.config.description)
        # Only what the user wrote is redacted: evalport's own tags (evalport.run_key) are not secrets.
        tags.update(redact(self.config.tags))
        return {mlflow_param_key(str(k)): clip(str(v), MAX_TAG_VALUE_LENGTH) for k, v in tags.items()}

    def _job_params(self, result: Any) -> dict[str, str]:
        params: dict[str, str] = {"model_id": result.model_id}
        if LogMode(self.config.log_mode) is LogMode.PER_TASK:
            params.update({"harness": result.harness, "task": result.task})
        depth = self.config.log_config_params_max_depth
        params.update(flatten_params(redact(self.config.extra_metadata), depth))
        if self.config.log_config_params and result.config:
            params.update(flatten_params(redact(dict(result.config)), depth, prefix="config"))
        return {mlflow_param_key(k): v for k, v in params.items()}

    def _stage(self, item: ExportItem, renamed: dict[str, str], tmp: Path) -> tuple[Path, str, str] | None:
        """The job's files (and the metric-name map) in one folder, with a digest of their content."""
        if not item.artifact_paths() and not renamed:
            return None
        import hashlib

        target = Path(tempfile.mkdtemp(dir=tmp))
        withheld = stage_item(item, target).note
        if renamed:
            names = target / NAMES_FILE
            names.parent.mkdir(parents=True, exist_ok=True)
            names.write_text(
                json.dumps(renamed, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        digest = hashlib.sha256()
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            digest.update(path.relative_to(target).as_posix().encode() + b"\0")
            with path.open("rb") as fh:  # in chunks: an artifact may be far larger than memory
                while chunk := fh.read(_DIGEST_CHUNK):
                    digest.update(chunk)
            digest.update(b"\0")
        return target, digest.hexdigest()[:32], withheld

    def _export_item(
        self, client: Any, experiment_id: str, key: str, state: _RunState | None, item: ExportItem, tmp: Path
    ) -> tuple[_RunState | None, Outcome]:
        """Writes what differs between the job and its run (creating the run when there is none)."""
        from mlflow.entities import Metric, Param, RunTag

        result = item.result
        multi = LogMode(self.config.log_mode) is LogMode.MULTI_TASK
        job_tag = f"{JOB_TAG}.{mlflow_param_key(result.task)}"
        known = state is not None and (job_tag in state.tags if multi else True)
        if self.config.skip_existing and known:
            assert state is not None
            return state, self._outcome(
                item,
                Status.SKIPPED,
                f"already in MLflow run {state.run_id}; skip_existing is set",
                self._location(state.run_id),
            )

        flat = result.flat_metrics()
        keys = assign_keys(flat)
        metrics = {keys[n]: v for n, v in flat.items()}
        renamed = {k: n for n, k in keys.items() if k != n}
        tags = self._job_tags(result)
        params = self._job_params(result)
        staged = self._stage(item, renamed, tmp)
        digest_tag = f"{DIGEST_TAG}.{mlflow_param_key(result.task)}" if multi else DIGEST_TAG
        if staged is not None:
            tags[digest_tag] = staged[1]
        if state is None:
            # The first job's tags (digest included) go with create_run: a run only counts as
            # complete once FINISHED, so an upload cut short is redone by the next export.
            first_tags = dict(list(tags.items())[:MAX_TAGS])
            state, created = self._find_or_create_run(client, experiment_id, key, first_tags)
            if not created:  # another process made it meanwhile: update it like any found run
                known = job_tag in state.tags if multi else True
                if self.config.skip_existing and known:
                    reason = f"already in MLflow run {state.run_id}; skip_existing is set"
                    return state, self._outcome(item, Status.SKIPPED, reason, self._location(state.run_id))

        now = int(time.time() * 1000)
        new_metrics = [Metric(k, v, now, 0) for k, v in metrics.items() if not _same(state.metrics.get(k), v)]
        new_params = [Param(k, v) for k, v in params.items() if k not in state.params]
        kept = [k for k, v in params.items() if k in state.params and state.params[k] != v]
        new_tags = [RunTag(k, v) for k, v in tags.items() if state.tags.get(k) != v and k != digest_tag]
        upload = staged is not None and (state.tags.get(digest_tag) != staged[1] or not state.finished)
        note = ""
        if kept:
            shown = "; ".join(
                f"{k}: {clip(state.params[k], 60)!r} -> {clip(params[k], 60)!r}" for k in kept[:3]
            )
            note = (
                f"MLflow params cannot change, so {len(kept)} param(s) keep their logged value "
                f"({shown}{'; ...' if len(kept) > 3 else ''})"
            )
        if staged is not None and staged[2]:
            note = f"{note}; {staged[2]}" if note else staged[2]

        if upload:
            assert staged is not None
            self._upload(client, state, staged[0], result.task if multi else None)
            if state.tags.get(digest_tag) != staged[1]:
                new_tags.append(RunTag(digest_tag, staged[1]))
        if new_metrics or new_params or new_tags:
            new_params = self._log_batch_once_more(client, state.run_id, new_metrics, new_params, new_tags)
        state.metrics.update({m.key: m.value for m in new_metrics})
        state.params.update({p.key: p.value for p in new_params})
        state.tags.update({t.key: t.value for t in new_tags})
        changed = bool(new_metrics or new_params or new_tags or upload)
        if not state.finished:
            run_id = state.run_id
            self._call("finish the run", lambda: client.set_terminated(run_id, "FINISHED"))
            state.finished = changed = True
        status = Status.EXPORTED if not known else (Status.UPDATED if changed else Status.UNCHANGED)
        return state, self._outcome(item, status, note, self._location(state.run_id))

    def _upload(self, client: Any, state: _RunState, directory: Path, prefix: str | None) -> None:
        """One directory upload per job."""
        if self._uri.startswith("databricks"):
            self._call("upload artifacts", lambda: client.log_artifacts(state.run_id, str(directory), prefix))
            return
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(state.artifact_uri, tracking_uri=self._uri)
        self._call("upload artifacts", lambda: repo.log_artifacts(str(directory), prefix))

    def _log_batch_once_more(
        self, client: Any, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]
    ) -> list[Any]:
        """log_batch; when MLflow refuses it, once more without the params the run holds by now.

        Another process exporting the same job at the same moment writes the same params into the
        same run (the lock covers only find-or-create), and MLflow refuses a param logged twice.
        Returns the params sent.
        """
        try:
            self._log_batch(client, run_id, metrics, params, tags)
            return params
        except CallFailed as failure:
            if failure.transient or not params:
                raise
            held = self._call("read the run", lambda: client.get_run(run_id)).data.params
            rest = [p for p in params if p.key not in held]
            self._log_batch(client, run_id, metrics, rest, tags)
            return rest

    def _log_batch(
        self, client: Any, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]
    ) -> None:
        """As few log_batch calls as MLflow's limits allow (1000 metrics, 100 params, 100 tags each)."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        while metrics or params or tags:
            p, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
            t, tags = tags[:MAX_TAGS], tags[MAX_TAGS:]
            room = MAX_ENTITIES - len(p) - len(t)
            m, metrics = metrics[: min(MAX_METRICS, room)], metrics[min(MAX_METRICS, room) :]
            self._call(
                "log metrics, params and tags",
                lambda m=m, p=p, t=t: client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True),
            )

    # ---- is it still there? ---------------------------------------------------------------------
    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """The jobs whose recorded run still exists, is active and finished (one search per 100 runs).

        A sqlite store that is gone, an experiment deleted or missing: nothing is held. Nothing is
        created on the way (no store, no experiment). Raises when the server cannot be asked.
        """
        run_of = {job: m[1] for job, where in located.items() if (m := _LOCATED_RUN.search(where or ""))}
        db = self._sqlite_path
        if not run_of or (db is not None and not db.is_file()):
            return set()
        name = self.config.experiment_name
        alive: set[str] = set()
        with mlflow_http_settings(self.http_timeout):
            client = self._client()
            experiment = self._call(
                f"look up experiment {name!r}", lambda: client.get_experiment_by_name(name)
            )
            if experiment is None or experiment.lifecycle_stage == "deleted":
                return set()
            ids = sorted(set(run_of.values()))
            for start in range(0, len(ids), 100):
                flt = "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in ids[start : start + 100]) + ")"
                runs = self._call(
                    "search runs",
                    lambda flt=flt: client.search_runs([experiment.experiment_id], flt, max_results=1000),
                )
                alive.update(r.info.run_id for r in runs if r.info.status == "FINISHED")
        return {job for job, run_id in run_of.items() if run_id in alive}

    def _location(self, run_id: str) -> str:
        if self._is_http:
            return f"{redact_text(self._uri).rstrip('/')}/#/experiments/-/runs/{run_id}"
        return f"runs:/{run_id}"

    # ---- doctor -------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Can the tracking store be reached, and does the experiment exist? Answers within seconds."""
        uri = redact_text(self._uri)
        name = self.config.experiment_name
        db = self._sqlite_path
        if db is not None and not db.exists():
            parent = db.resolve().parent
            if parent.is_dir() and os.access(parent, os.W_OK):
                return CheckResult(
                    True,
                    f"mlflow: {uri} does not exist yet; the first export creates it (experiment {name!r})",
                )
            return CheckResult(False, f"mlflow: cannot create {db}: {parent} is not a writable directory")
        quick = type(self)(self.config, retry=RetryPolicy(attempts=1), workers=1)
        try:
            with mlflow_http_settings(timeout=3):
                client = quick._client()
                experiment = quick._call(
                    f"look up experiment {name!r}", lambda: client.get_experiment_by_name(name)
                )
        except CallFailed as failure:
            return CheckResult(False, f"mlflow: {quick._reason(failure)}")
        except Exception as exc:
            return CheckResult(False, f"mlflow: cannot use tracking URI {uri}: {_short(exc)}")
        if experiment is None:
            return CheckResult(
                True,
                f"mlflow: reached {uri}; experiment {name!r} does not exist yet and "
                "will be created on the first export",
            )
        if experiment.lifecycle_stage == "deleted":
            return CheckResult(
                False,
                f"mlflow: experiment {name!r} at {uri} is deleted; restore it or "
                "choose another experiment_name",
            )
        exp_id = experiment.experiment_id
        return CheckResult(
            True,
            f"mlflow: reached {uri}; experiment {name!r} exists (id {exp_id})",
            {"experiment_id": exp_id},
        )
