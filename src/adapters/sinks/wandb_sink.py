"""The Weights & Biases sink: one W&B run per RunIdentity, opened by a derived id, never found by a scan.

The run id comes from ``RunIdentity.run_id()``, and every run is opened with ``resume="allow"``:
re-exporting a task updates its run, another task of the same invocation appends to the
multi-task run. Metrics go to ``run.summary`` (and once to the history, so charts exist); the
redacted run config to ``run.config``; the job's files to one artifact ``<harness>.<task>``.

``wandb`` is imported only when a run is opened (it costs ~0.3 s); many runs in one process reuse
the SDK's service, with system stats, git, code, console and requirements capture turned off.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import math
import netrc
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from evalport.adapters.files import atomic_write_text
from evalport.adapters.retry import RetryPolicy, is_transient
from evalport.adapters.sinks.base import BaseSink, TrackerSinkConfig
from evalport.adapters.sinks.wandb_names import artifact_name, clean_tag, is_valid_run_id, run_id_of_folder
from evalport.adapters.staging import file_signatures, stage_item
from evalport.domain.identity import LogMode, RunIdentity
from evalport.domain.model import TaskResult
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities
from evalport.domain.redact import redact, redact_text
from evalport.domain.report import Outcome, Status

log = logging.getLogger("evalport.sinks.wandb")

DEFAULT_BASE_URL = "https://api.wandb.ai"
# The SDK's default host (a CoreWeave Forge proxy) and the W&B API host behind it share credentials.
DEFAULT_HOSTS = ("api.wandb.ai", "api.forge.coreweave.com")
NAME_FIELDS = ("invocation_id", "harness", "task", "model_id", "job_id")
LOGIN_HINT = "run `wandb login` (or set WANDB_API_KEY), or export with mode=offline and `wandb sync` later"
_TRANSIENT_WORDS = (
    "connection refused",
    "connection reset",
    "deadline exceeded",
    "timeout",
    "timed out",
    "temporarily",
    "unavailable",
    "bad gateway",
    "429",
    "500",
    "502",
    "503",
    "504",
    "eof",
)
# Settings that make a run cheap (measured with wandb 0.31: ~12 ms per offline run after the
# first); x_save_requirements=False matters most (it skips a scan of every installed package).
FAST_SETTINGS: dict[str, Any] = {
    "console": "off",
    "disable_git": True,
    "save_code": False,
    "disable_job_creation": True,
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "x_save_requirements": False,
    "silent": True,
}


class WandbSinkConfig(TrackerSinkConfig):
    entity: str | None = Field(default=None, description="W&B entity (team or user); default: yours")
    project: str = "evalport"
    name: str | None = Field(
        default=None,
        description="run name; may use {invocation_id} {harness} "
        "{task} {model_id} {job_id}; default eval-<invocation>[-<task>]",
    )
    group: str | None = Field(default=None, description="run group; default: the invocation id")
    job_type: str = "evaluation"
    tags: list[str] = Field(default_factory=list)
    description: str | None = Field(default=None, description="W&B run notes")
    extra_metadata: dict[str, Any] = Field(default_factory=dict, description="added to the run config")
    dir: Path | None = Field(default=None, description="where run folders are written; default: W&B's")
    mode: Literal["online", "offline"] | None = Field(default=None, description="default: WANDB_MODE/online")
    init_timeout: float = Field(default=15.0, gt=0, description="seconds to wait for the server per attempt")
    attempts: int = Field(default=3, ge=1, le=10, description="tries per run on network or server errors")

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [t for t in value.split(",") if t.strip()]
        return [clean_tag(str(t)) for t in value] if isinstance(value, (list, tuple)) else value

    @field_validator("name")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value:
            try:
                value.format_map(dict.fromkeys(NAME_FIELDS, ""))
            except (KeyError, ValueError, IndexError) as exc:
                known = ", ".join(NAME_FIELDS)
                raise ValueError(f"name {value!r}: unknown placeholder {exc}; use {known}") from None
        return value


# ---- credentials (no wandb import, nothing printed) ---------------------------------------------


def base_url() -> str:
    """WANDB_BASE_URL, else the host ``wandb login --host`` saved, else W&B's cloud."""
    url = os.environ.get("WANDB_BASE_URL")
    if url:
        return url.rstrip("/")
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb")
    parser = configparser.ConfigParser()
    try:
        parser.read(config_dir / "settings")
        url = parser.get("default", "base_url", fallback="")
    except (configparser.Error, OSError):
        url = ""
    return (url or DEFAULT_BASE_URL).rstrip("/")


def _netrc_path() -> Path:
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"]).expanduser()
    for name in ("~/.netrc", "~/_netrc"):
        if Path(name).expanduser().exists():
            return Path(name).expanduser()
    return Path("~/.netrc").expanduser()


def find_credentials(url: str) -> tuple[str, str | None] | None:
    """(where the credentials come from, the API key if it is one) or None. The key is never shown."""
    if os.environ.get("WANDB_API_KEY"):
        return "WANDB_API_KEY", os.environ["WANDB_API_KEY"]
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return "WANDB_IDENTITY_TOKEN_FILE", None
    host = urlsplit(url).netloc
    hosts = [host, *DEFAULT_HOSTS] if host in DEFAULT_HOSTS else [host]
    path = _netrc_path()
    try:
        entries = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError):
        return None
    for candidate in hosts:
        found = entries.authenticators(candidate)
        if found and found[2]:
            return str(path), found[2]
    return None


# ---- what one run receives ------------------------------------------------------------------------


def _job_entry(result: TaskResult) -> dict[str, Any]:
    return {
        "job_id": result.job_id,
        "harness": result.harness,
        "task": result.task,
        "container": result.container,
        "timestamp": result.timestamp,
        "state": result.state.value,
        "executor": result.executor,
    }


def _number_key(value: float) -> str:
    return repr(value) if not math.isfinite(value) else f"{value:.17g}"


@dataclass
class _Job:
    index: int
    item: ExportItem
    fingerprint: str
    staged: Path | None = None
    status: Status | None = None
    reason: str = ""


@dataclass
class _RunPlan:
    run_id: str
    identity: RunIdentity
    jobs: list[_Job] = field(default_factory=list)
    location: str = ""


class _Unreachable(Exception):
    """The server did not answer after every attempt; later runs of this export are not tried."""


class WandbSink(BaseSink):
    """Weights & Biases runs (online, or offline folders for `wandb sync`), upserted by derived run id."""

    name: ClassVar[str] = "wandb"
    extra: ClassVar[str | None] = "wandb"
    requires: ClassVar[tuple[str, ...]] = ("wandb",)
    Config = WandbSinkConfig
    capabilities = SinkCapabilities(artifacts=True, logs=True, upsert=True, multi_task=True)
    config: WandbSinkConfig

    def __init__(self, config: WandbSinkConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._last_location = ""

    # -- where things go ----------------------------------------------------------------------
    @property
    def mode(self) -> str:
        if self.config.mode:
            return self.config.mode
        env = os.environ.get("WANDB_MODE", "").strip().lower()
        return "offline" if env in ("offline", "dryrun") else "online"

    @property
    def root(self) -> Path:
        """The ``dir=`` of every run: the option, else WANDB_DIR, else the working directory (W&B's rule)."""
        return Path(self.config.dir or os.environ.get("WANDB_DIR") or os.getcwd()).expanduser().absolute()

    @property
    def runs_dir(self) -> Path:
        return self.root / "wandb"

    @property
    def state_dir(self) -> Path:
        """Per run id, the fingerprints of the jobs written offline (to tell UNCHANGED from UPDATED)."""
        return self.runs_dir / ".evalport"

    def describe(self) -> str:
        if self.mode == "offline":
            return (
                f"offline runs in {self.runs_dir}; upload them with "
                f"`wandb sync {self.runs_dir}/offline-run-*`"
            )
        target = f"{self.config.entity}/{self.config.project}" if self.config.entity else self.config.project
        return self._last_location or f"{base_url()} project {target}"

    # -- export ---------------------------------------------------------------------------------
    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        refusal = self._refusal()
        if refusal:
            return [Outcome(i.result.job_id, self.destination, Status.FAILED, refusal) for i in items]
        plans: dict[str, _RunPlan] = {}
        for index, item in enumerate(items):
            identity = RunIdentity.for_result(item.result, self.config.log_mode)
            run_id = identity.run_id()
            if not is_valid_run_id(run_id):  # pragma: no cover - the id is hex by construction
                raise ValueError(f"derived run id {run_id!r} is not valid for W&B")
            plan = plans.setdefault(run_id, _RunPlan(run_id, identity))
            plan.jobs.append(_Job(index, item, self._fingerprint(item)))

        existing = self._existing_run_ids()
        unreachable = ""
        with tempfile.TemporaryDirectory(prefix="evalport-wandb-") as tmp:
            for plan in plans.values():
                if unreachable:
                    for job in plan.jobs:
                        job.status, job.reason = Status.FAILED, f"not tried: {unreachable}"
                else:
                    try:
                        self._export_run(plan, plan.run_id in existing, Path(tmp))
                    except _Unreachable as exc:
                        unreachable = str(exc)
                    except Exception as exc:  # one broken run never stops the others
                        log.debug("wandb: run %s failed", plan.run_id, exc_info=True)
                        for job in plan.jobs:
                            if job.status is None:
                                job.status = Status.FAILED
                                job.reason = (
                                    f"wandb: run {plan.run_id} failed: {type(exc).__name__}: "
                                    f"{_first_line(exc)}"
                                )
                for job in plan.jobs:
                    outcomes[job.index] = Outcome(
                        job.item.result.job_id,
                        self.destination,
                        job.status or Status.FAILED,
                        job.reason,
                        plan.location,
                    )
                if plan.location:
                    self._last_location = plan.location
        return [outcomes[i] for i in range(len(items))]

    def _refusal(self, create: bool = True) -> str:
        """Why no run can be written at all (no credentials online, an unwritable folder), or ''.

        ``create=False`` (for ``check``) looks at the nearest existing folder instead of creating any.
        """
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            return "wandb: the wandb package is not installed; pip install 'evalport[wandb]'"
        if self.mode == "online":
            url = base_url()
            if find_credentials(url) is None:
                return f"wandb: no credentials for {url}; {LOGIN_HINT}"
        probe = self.runs_dir
        try:
            if create:
                self.state_dir.mkdir(parents=True, exist_ok=True)
            else:
                while not probe.exists() and probe != probe.parent:
                    probe = probe.parent
                if not probe.is_dir():
                    raise NotADirectoryError(20, "Not a directory", str(probe))
        except OSError as exc:
            return (
                f"wandb: cannot create the run folder {self.runs_dir}: {exc.strerror or exc}; "
                "set the wandb `dir` option to a writable folder"
            )
        if not os.access(probe, os.W_OK):
            return f"wandb: the run folder {self.runs_dir} is not writable; set the wandb `dir` option"
        return ""

    def _existing_run_ids(self) -> set[str]:
        """Run ids with a folder under ``dir``: one listing of our own folder, not a project scan."""
        try:
            return {rid for name in os.listdir(self.runs_dir) if (rid := run_id_of_folder(name))}
        except OSError:
            return set()

    def _fingerprint(self, item: ExportItem) -> str:
        result = item.result
        files = file_signatures(item)
        body = {
            "metrics": {k: _number_key(v) for k, v in sorted(result.flat_metrics().items())},
            "job": _job_entry(result),
            "config": redact(dict(result.config)),
            "files": files,
            "options": self.config.model_dump(
                mode="json",
                include={
                    "entity",
                    "project",
                    "name",
                    "group",
                    "job_type",
                    "tags",
                    "description",
                    "extra_metadata",
                    "log_mode",
                },
            ),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:24]

    # -- one run ----------------------------------------------------------------------------------
    def _state_path(self, run_id: str) -> Path:
        return self.state_dir / f"{run_id}.json"

    def _read_state(self, run_id: str) -> dict[str, str]:
        try:
            data = json.loads(self._state_path(run_id).read_text())
        except (OSError, ValueError):
            return {}
        jobs = data.get("jobs") if isinstance(data, dict) else None
        return jobs if isinstance(jobs, dict) else {}

    def _export_run(self, plan: _RunPlan, folder_exists: bool, tmp: Path) -> None:
        offline = self.mode == "offline"
        # Without the run's folder the saved fingerprints describe nothing that still exists.
        state = self._read_state(plan.run_id) if offline and folder_exists else {}
        existed = folder_exists or bool(state)
        todo = []
        for job in plan.jobs:
            if offline and state.get(job.item.result.job_id) == job.fingerprint:
                job.status = Status.UNCHANGED
            else:
                todo.append(job)
        self._stage(todo, tmp)
        todo = [j for j in todo if j.status is None]
        if not todo:
            return

        try:
            run = self._open(plan, todo)
        except _Skip:
            return
        try:
            if not offline:
                existed = bool(getattr(run, "resumed", False))
                previous = dict((run.config.get("evalport") or {}).get("fingerprints") or {})
                for job in todo:
                    if previous.get(job.item.result.job_id) == job.fingerprint:
                        job.status = Status.UNCHANGED
                todo = [j for j in todo if j.status is None]
            if todo:
                self._write(run, plan, todo)
            plan.location = (run.url if not offline else str(Path(run.dir).parent)) or ""
        except Exception as exc:
            for job in todo:
                job.status, job.reason = (
                    Status.FAILED,
                    f"wandb: writing run {plan.run_id} failed: {type(exc).__name__}: {_first_line(exc)}",
                )
            try:
                run.finish(exit_code=1)
            except Exception:  # the jobs already carry the first error
                log.debug("wandb: finishing failed run %s", plan.run_id, exc_info=True)
            return
        run.finish()
        for job in todo:
            job.status = Status.UPDATED if existed else Status.EXPORTED
        if offline:
            state.update({j.item.result.job_id: j.fingerprint for j in todo})
            try:
                atomic_write_text(self._state_path(plan.run_id), json.dumps({"jobs": state}, sort_keys=True))
            except OSError as exc:  # the run is written; only change detection suffers
                log.warning("wandb: cannot save export state for run %s: %s", plan.run_id, exc)

    def _stage(self, jobs: list[_Job], tmp: Path) -> None:
        """Copies each job's selected files (secrets masked) and its config into a folder for the artifact."""
        for job in jobs:
            item = job.item
            target = tmp / f"job-{job.index}"
            try:
                stage_item(item, target)
                target.mkdir(parents=True, exist_ok=True)
                config = {
                    **_job_entry(item.result),
                    "model_id": item.result.model_id,
                    "invocation_id": item.result.invocation_id,
                    "launcher_config": redact(dict(item.result.config)),
                }
                (target / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
            except OSError as exc:
                where = getattr(exc, "filename", None) or target
                job.status, job.reason = Status.FAILED, f"wandb: cannot stage {where}: {exc.strerror or exc}"
                continue
            job.staged = target

    def _open(self, plan: _RunPlan, jobs: list[_Job]) -> Any:
        import wandb

        first = jobs[0].item.result
        fields = {
            "invocation_id": first.invocation_id,
            "harness": first.harness,
            "task": first.task,
            "model_id": first.model_id,
            "job_id": first.job_id,
        }
        if self.config.name:
            name = self.config.name.format_map(fields)
        elif self.config.log_mode is LogMode.MULTI_TASK:
            name = f"eval-{first.invocation_id}"
        else:
            name = f"eval-{first.invocation_id}-{first.task}"
        known = set(getattr(wandb.Settings, "model_fields", {}))
        values = {**FAST_SETTINGS, "mode": self.mode, "init_timeout": self.config.init_timeout}
        # WANDB_DIR is read once per process, so the folder and the settings go with every init.
        settings = wandb.Settings(**{k: v for k, v in values.items() if k in known})

        def init() -> Any:
            try:
                return _init()
            except Exception:
                # A failed init leaves its run id registered in the SDK's service ("run ID ... is in
                # use"); only a teardown frees it, for the next attempt and later exports alike.
                wandb.teardown()
                raise

        def _init() -> Any:
            return wandb.init(
                id=plan.run_id,
                resume="allow",
                dir=str(self.root),
                project=self.config.project,
                entity=self.config.entity,
                name=name,
                group=redact_text(self.config.group) if self.config.group else first.invocation_id,
                job_type=self.config.job_type,
                tags=[redact_text(t) for t in self.config.tags] or None,
                notes=redact_text(self.config.description) if self.config.description else None,
                settings=settings,
            )

        policy = RetryPolicy(
            attempts=self.config.attempts,
            initial_wait=0.5,
            max_wait=4.0,
            total_timeout=self.config.attempts * (self.config.init_timeout + 4.0),
        )
        try:
            return policy.call(init, _retryable)
        except Exception as exc:
            reason = f"wandb: cannot open run {plan.run_id} at {base_url()}: {_first_line(exc)}"
            if _retryable(exc):
                reason = (
                    f"wandb: {base_url()} did not answer after {self.config.attempts} attempts "
                    f"({_first_line(exc)}); check WANDB_BASE_URL and the server, or export with "
                    "mode=offline and `wandb sync` later"
                )
            elif _is_auth_error(exc):
                reason = f"wandb: {base_url()} refused the credentials ({_first_line(exc)}); {LOGIN_HINT}"
            for job in jobs:
                job.status, job.reason = Status.FAILED, reason
            if _retryable(exc):
                raise _Unreachable(reason) from exc
            raise _Skip from exc

    def _write(self, run: Any, plan: _RunPlan, jobs: list[_Job]) -> None:
        import wandb

        first = jobs[0].item.result
        extra = redact(dict(self.config.extra_metadata))
        config: dict[str, Any] = {
            **extra,
            "invocation_id": first.invocation_id,
            "model_id": first.model_id,
            "launcher_config": redact(dict(first.config)),
        }
        fingerprints = dict((run.config.get("evalport") or {}).get("fingerprints") or {})
        fingerprints.update({j.item.result.job_id: j.fingerprint for j in jobs})
        config["evalport"] = {
            "log_mode": self.config.log_mode.value,
            "run_key": plan.identity.key,
            "fingerprints": fingerprints,
        }
        if self.config.log_mode is LogMode.MULTI_TASK:
            tasks = dict(run.config.get("tasks") or {})
            for job in jobs:
                tasks[f"{job.item.result.harness}.{job.item.result.task}"] = _job_entry(job.item.result)
            config["tasks"] = tasks
        else:
            config.update(_job_entry(first))
        run.config.update(config, allow_val_change=True)

        metrics: dict[str, float] = {}
        for job in jobs:
            metrics.update(job.item.result.flat_metrics())
        run.summary.update(metrics)
        if metrics:
            run.log(metrics)
        for job in jobs:
            result = job.item.result
            metadata = {
                "job_id": result.job_id,
                "invocation_id": result.invocation_id,
                "model_id": result.model_id,
            }
            artifact = wandb.Artifact(
                artifact_name(result.harness, result.task), type="evaluation", metadata=metadata
            )
            artifact.add_dir(str(job.staged))
            run.log_artifact(artifact)

    # -- doctor -----------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        refusal = self._refusal(create=False)
        if refusal:
            return CheckResult(False, refusal)
        if self.mode == "offline":
            return CheckResult(True, f"wandb: offline; {self.describe()}", {"dir": str(self.runs_dir)})
        url = base_url()
        source, key = find_credentials(url) or ("", None)
        if key is None:
            return CheckResult(True, f"wandb: credentials from {source}; {url} not probed (identity token)")
        return _probe(url, key, source)

    # -- is it still there? -------------------------------------------------------------------------
    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """Offline: the recorded run folder still exists with its ``.wandb`` file. Online: the run
        exists on the server (one API call per run, asked once); any error means not confirmed."""
        if self.mode == "offline":
            return {job for job, where in located.items() if where and _holds_run_file(Path(where))}
        if self._refusal(create=False):
            return set()
        paths = {job: path for job, where in located.items() if (path := _run_path(where))}
        if not paths:
            return set()
        import wandb

        api = wandb.Api(timeout=int(self.config.init_timeout), overrides={"base_url": base_url()})
        alive: dict[str, bool] = {}
        for path in set(paths.values()):
            try:
                alive[path] = bool(api.run(path).id)
            except Exception:
                log.debug("wandb: run %s not confirmed", path, exc_info=True)
                alive[path] = False
        return {job for job, path in paths.items() if alive[path]}

    def close(self) -> None:
        return None


def _holds_run_file(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(p.suffix == ".wandb" for p in folder.iterdir())
    except OSError:
        return False


def _run_path(url: str) -> str | None:
    """``entity/project/run_id`` from a run URL (``https://host/<entity>/<project>/runs/<id>``)."""
    parts = [p for p in urlsplit(url or "").path.split("/") if p]
    if len(parts) >= 4 and parts[-2] == "runs":
        return "/".join((parts[-4], parts[-3], parts[-1]))
    return None


class _Skip(Exception):
    """The run could not be opened for a reason that does not stop the other runs."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _is_auth_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "401" in text or "403" in text or "permission" in text or "auth" in type(exc).__name__.lower()


def _retryable(exc: BaseException) -> bool:
    """Connection problems, timeouts and 5xx/429, also when the SDK wraps them in a CommError."""
    if is_transient(exc):
        return True
    if type(exc).__name__ == "CommError":
        text = str(exc).lower()
        if "401" in text or "403" in text or "404" in text:
            return False
        return any(word in text for word in _TRANSIENT_WORDS)
    return False


def _probe(url: str, key: str, source: str, timeout: float = 5.0) -> CheckResult:
    """Asks the server who the key belongs to; the key only travels in the Authorization header."""
    import base64
    import urllib.error
    import urllib.request

    token = base64.b64encode(f"api:{key}".encode()).decode()
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": "query { viewer { username entity } }"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return CheckResult(
                False, f"wandb: {url} refused the key from {source} (HTTP {exc.code}); {LOGIN_HINT}"
            )
        return CheckResult(False, f"wandb: {url} answered HTTP {exc.code}; check WANDB_BASE_URL")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return CheckResult(
            False,
            f"wandb: cannot reach {url} within {timeout:g}s ({reason}); check WANDB_BASE_URL and the network",
        )
    viewer = (body.get("data") or {}).get("viewer") if isinstance(body, dict) else None
    if not viewer:
        return CheckResult(False, f"wandb: {url} did not accept the key from {source}; {LOGIN_HINT}")
    who = viewer.get("username") or viewer.get("entity") or "?"
    return CheckResult(
        True,
        f"wandb: {url} answers; logged in as {who} (credentials from {source})",
        {"url": url, "user": who},
    )
