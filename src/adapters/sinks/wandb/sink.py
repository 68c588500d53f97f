"""The Weights & Biases sink: one W&B run per RunIdentity, opened by a derived id, never found by a scan.

The run id comes from ``RunIdentity.run_id()`` per task and is the launcher's stable id (the
``run_id`` option, else the invocation id) per invocation; every run is opened with ``resume="allow"``:
re-exporting a task updates its run, another task of the same invocation appends to the
multi-task run. Metrics go to ``run.summary`` (and once to the history, so charts exist); the
redacted run config to ``run.config``; the job's files to one artifact ``<harness>.<task>``.
The decisions (which run, new/resume/unchanged) are pure and live in :mod:`.plan`; the SDK calls
in :mod:`.runs`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from evalport.adapters.files import atomic_write_text
from evalport.adapters.sinks.base import BaseSink
from evalport.adapters.sinks.remote import CallFailed, Destination, Staged, one_line
from evalport.adapters.sinks.wandb import plan as planning
from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.adapters.sinks.wandb.credentials import LOGIN_HINT, base_url, find_credentials, probe
from evalport.adapters.sinks.wandb.names import run_ids_of_folder
from evalport.adapters.sinks.wandb.runs import (
    RunTarget,
    destination,
    held_fingerprints,
    open_run,
    stage_job,
    write_run,
)
from evalport.adapters.sinks.wandb.samples import samples_digest
from evalport.adapters.staging import file_signatures
from evalport.domain.errors import ResultError
from evalport.domain.identity import LogMode
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities
from evalport.domain.report import Outcome, Status

log = logging.getLogger("evalport.sinks.wandb")


@dataclass
class _Job:
    planned: planning.PlannedJob
    item: ExportItem
    staged: Staged | None = None
    status: Status | None = None
    reason: str = ""

    @property
    def job_id(self) -> str:
        return self.item.result.job_id


class WandbSink(BaseSink):
    """Weights & Biases runs (online, or offline folders for `wandb sync`), upserted by derived run id."""

    name: ClassVar[str] = "wandb"
    extra: ClassVar[str | None] = "wandb"
    requires: ClassVar[tuple[str, ...]] = ("wandb",)
    Config = WandbSinkConfig
    capabilities = SinkCapabilities(artifacts=True, logs=True, multi_task=True, samples=True)
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
        refusal = self._refusal()
        if refusal:
            return [Outcome(i.result.job_id, self.destination, Status.FAILED, refusal) for i in items]
        digests, unreadable = self._fingerprints(items)
        pairs = zip((i.result for i in items), digests, strict=True)
        runs = planning.group_runs(pairs, self.config.log_mode, self.config.run_id)
        existing = self._existing_run_ids()
        if self.config.run_id is None and self.config.log_mode is LogMode.MULTI_TASK:
            planning.adopt_earlier_ids(runs, self._run_exists(existing))
        outcomes: dict[int, Outcome] = {}
        dest = destination(self.config)
        with tempfile.TemporaryDirectory(prefix="evalport-wandb-") as tmp:
            for run in runs:
                jobs = [_Job(p, items[p.index]) for p in run.jobs]
                for job in jobs:
                    if job.planned.index in unreadable:
                        job.status, job.reason = Status.FAILED, unreadable[job.planned.index]
                todo = [j for j in jobs if j.status is None]
                location = ""
                if todo and dest.down:  # the server did not answer: nothing more is staged or tried
                    self._fail(todo, dest.not_tried)
                elif todo:
                    try:
                        location = self._export_run(dest, run, todo, run.run_id in existing, Path(tmp))
                    except Exception as exc:  # one broken run never stops the others
                        log.debug("wandb: run %s failed", run.run_id, exc_info=True)
                        self._fail(
                            todo, f"wandb: run {run.run_id} failed: {type(exc).__name__}: {one_line(exc)}"
                        )
                for job in jobs:
                    status = job.status or Status.FAILED
                    outcomes[job.planned.index] = Outcome(
                        job.job_id, self.destination, status, job.reason, location
                    )
                self._last_location = location or self._last_location
        return [outcomes[i] for i in range(len(items))]

    def _fingerprints(self, items: Sequence[ExportItem]) -> tuple[list[str], dict[int, str]]:
        """Per item, what tells an unchanged job: the export's fingerprint (the ledger's) with what
        this sink sends of it (and the digest of its samples table); for an item built without one,
        a digest of its own. Also, by index, why the items whose samples cannot be read fail."""
        options = planning.fingerprint_options(self.config.model_dump(mode="json"))
        fingerprints = [
            planning.with_options(given, i.result, [rel for rel, _ in i.artifact_paths()], options)
            if (given := i.fingerprint)
            else planning.fingerprint(i.result, file_signatures(i), options)
            for i in items
        ]
        unreadable: dict[int, str] = {}
        if not self.sample_options.enabled:
            return fingerprints, unreadable
        for index, item in enumerate(items):
            try:
                digest = samples_digest(item.result, self.sample_options, self.metric_filter)
            except ResultError as error:  # named, with the file and line
                unreadable[index] = f"{error}; fix the file, or export with samples: none"
                continue
            fingerprints[index] = planning.with_samples(fingerprints[index], digest)
        return fingerprints, unreadable

    @staticmethod
    def _fail(jobs: list[_Job], reason: str) -> None:
        for job in jobs:
            if job.status is None:
                job.status, job.reason = Status.FAILED, reason

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
        probe_dir = self.runs_dir
        try:
            if create:
                self.state_dir.mkdir(parents=True, exist_ok=True)
            else:
                while not probe_dir.exists() and probe_dir != probe_dir.parent:
                    probe_dir = probe_dir.parent
                if not probe_dir.is_dir():
                    raise NotADirectoryError(20, "Not a directory", str(probe_dir))
        except OSError as exc:
            return (
                f"wandb: cannot create the run folder {self.runs_dir}: {exc.strerror or exc}; "
                "set the wandb `dir` option to a writable folder"
            )
        if not os.access(probe_dir, os.W_OK):
            return f"wandb: the run folder {self.runs_dir} is not writable; set the wandb `dir` option"
        return ""

    def _existing_run_ids(self) -> set[str]:
        """Run ids with a folder under ``dir``: one listing of our own folder, not a project scan."""
        try:
            return {rid for name in os.listdir(self.runs_dir) for rid in run_ids_of_folder(name)}
        except OSError:
            return set()

    def _run_exists(self, folders: set[str]) -> Callable[[str], bool]:
        """Whether a run id exists: offline, a folder under ``dir``; online, one lookup on the server
        per id asked (only evalport's earlier multi_task ids are asked about, once per invocation)."""
        if self.mode == "offline":
            return folders.__contains__
        try:
            import wandb

            api = wandb.Api(timeout=int(self.config.init_timeout), overrides={"base_url": base_url()})
            entity = self.config.entity or api.default_entity
        except Exception:
            log.debug("wandb: cannot look runs up", exc_info=True)
            return lambda run_id: False
        project = self.config.project

        def exists(run_id: str) -> bool:
            try:
                return bool(api.run(f"{entity}/{project}/{run_id}").id)
            except Exception:
                log.debug("wandb: run %s/%s/%s not found", entity, project, run_id, exc_info=True)
                return False

        return exists

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

    def _save_state(self, run_id: str, state: dict[str, str]) -> None:
        try:
            atomic_write_text(self._state_path(run_id), json.dumps({"jobs": state}, sort_keys=True))
        except OSError as exc:  # the run is written; only change detection suffers
            log.warning("wandb: cannot save export state for run %s: %s", run_id, exc)

    def _export_run(
        self, dest: Destination, run: planning.RunPlan, jobs: list[_Job], folder_exists: bool, tmp: Path
    ) -> str:
        """Writes the run's changed jobs (statuses set on ``jobs``); returns the run's location."""
        offline = self.mode == "offline"
        state = self._read_state(run.run_id) if offline and folder_exists else {}
        wanted = {j.job_id: j.planned.fingerprint for j in jobs}
        decision = planning.decide(wanted, state, folder_exists) if offline else None
        todo = self._apply(decision, jobs) if decision else jobs
        self._stage(todo, tmp)
        todo = [j for j in todo if j.status is None]
        if not todo:
            return ""
        try:
            opened = open_run(self.config, dest, RunTarget(self.root, self.mode), run, todo[0].item.result)
        except CallFailed as failure:  # a transient one left ``dest`` down: the next runs are not tried
            self._fail(todo, failure.reason)
            return ""
        try:
            if decision is None:  # online: the server says whether the run existed and what it holds
                resumed = bool(getattr(opened, "resumed", False))
                wanted = {j.job_id: j.planned.fingerprint for j in todo}
                decision = planning.decide(wanted, held_fingerprints(opened), resumed)
                todo = self._apply(decision, todo)
            if todo:
                jobs_staged = [(j.planned, j.staged) for j in todo if j.staged]
                notes = write_run(opened, self.config, run, jobs_staged)
                for job in todo:
                    job.reason = "; ".join(n for n in (job.reason, *notes.get(job.job_id, ())) if n)
            location = (opened.url if not offline else str(Path(opened.dir).parent)) or ""
        except Exception as exc:
            self._fail(todo, f"wandb: writing run {run.run_id} failed: {type(exc).__name__}: {one_line(exc)}")
            try:
                opened.finish(exit_code=1)
            except Exception:  # the jobs already carry the first error
                log.debug("wandb: finishing failed run %s", run.run_id, exc_info=True)
            return ""
        opened.finish()
        for job in todo:
            job.status = decision.written_status
        if offline:
            self._save_state(run.run_id, {**state, **{j.job_id: j.planned.fingerprint for j in todo}})
        return location

    @staticmethod
    def _apply(decision: planning.RunDecision, jobs: list[_Job]) -> list[_Job]:
        """Marks the jobs the run holds unchanged; returns the ones to write."""
        for job in jobs:
            if job.job_id in decision.unchanged:
                job.status = Status.UNCHANGED
        return [j for j in jobs if j.status is None]

    def _stage(self, jobs: list[_Job], tmp: Path) -> None:
        for job in jobs:
            try:
                job.staged = stage_job(job.item, tmp, self.config.compat == "launcher")
            except OSError as exc:
                where = getattr(exc, "filename", None) or tmp
                job.status, job.reason = Status.FAILED, f"wandb: cannot stage {where}: {exc.strerror or exc}"

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
        return probe(url, key, source)

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
