"""The local sink: stages artifacts (and logs) and writes per-job and multi-run JSON/CSV summaries.

With ``format: html`` or ``md`` it writes a comparison report instead of per-job summaries: the
runs are still upserted into a ``results.json`` summary beside it (the report's data store, so a
re-export replaces its job and the report always covers every job exported to the folder), then
``report.html`` / ``report.md`` (or ``output_filename``) is rendered from all of them.

With ``compat: launcher`` and ``format: json`` or ``csv`` it writes nemo-evaluator-launcher's
``processed_results.<fmt>`` files instead (per job, and combined; see :mod:`.local_launcher`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from evalport.adapters.files import atomic_write_text, atomic_write_text_parts
from evalport.adapters.report.build import REPORT_FORMATS
from evalport.adapters.sinks import local_launcher as launcher
from evalport.adapters.sinks.base import ArtifactSinkConfig, BaseSink, SampleSinkConfig
from evalport.adapters.sinks.local_files import (
    KeptSummary,
    Occupied,
    StagedJob,
    job_status,
    make_dir,
    stage_in_twin,
    write_job_summary,
)
from evalport.adapters.sinks.local_layout import (
    UnplaceableJob,
    csv_text,
    flat_row,
    held_job_folders,
    job_folder,
    read_csv_rows,
    summary_entry,
)
from evalport.adapters.sinks.local_samples import store_samples
from evalport.adapters.staging import StageResult, stage_item
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities
from evalport.domain.report import Outcome, Status


class LocalSinkConfig(ArtifactSinkConfig, SampleSinkConfig):
    sample_modes: ClassVar[tuple[str, ...]] = ("none", "parquet")
    samples: str = Field(
        default="parquet", description="'parquet': <output_dir>/samples/ (docs/sinks/local.md)"
    )
    output_dir: Path = Field(default=Path("evalport-results"), description="where files and summaries go")
    format: Literal["json", "csv", "none", "html", "md"] = "json"
    output_filename: str | None = Field(
        default=None,
        description="multi-run summary name (default results.<fmt>); for html/md the report (report.<fmt>)",
    )
    headline: dict[str, str] = Field(
        default_factory=dict, description="html/md: task -> the metric it is compared on"
    )
    baseline: str | None = Field(default=None, description="html/md: model id to show differences against")
    report_title: str = Field(default="Model comparison", description="html/md: the report's title")

    @field_validator("output_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        """``''`` would silently mean the current folder; that has to be asked for as ``.``."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("output_dir is empty; give a folder (or '.' for the current one)")
        return value


class LocalSink(BaseSink):
    """Files under ``<output_dir>/<invocation>/<job>/`` plus a multi-run summary, upserted by job id."""

    name: ClassVar[str] = "local"
    Config = LocalSinkConfig
    capabilities = SinkCapabilities(artifacts=True, logs=True, multi_task=False, batches=True, samples=True)
    config: LocalSinkConfig
    #: The JSON summary this sink last wrote, kept between the batches of a run.
    _kept: KeptSummary | None = None
    #: Job id -> its summary entry's JSON line, as its result.json was written in this batch
    #: (the multi-run summary holds the same line: dumped once).
    _dumped: dict[str, str] = {}
    #: (the configured output_dir, its absolute path), for :attr:`output_dir`.
    _output_dir: tuple[Path, Path] | None = None

    @property
    def output_dir(self) -> Path:
        """The folder, absolute (never resolved through links): the ledger records locations under
        it, and a relative one would name another folder from another working directory.
        Asked several times per job: computed again only when the configured folder changes."""
        raw = self.config.output_dir
        cached = self._output_dir
        if cached is None or cached[0] is not raw:
            cached = self._output_dir = (raw, Path(os.path.abspath(raw.expanduser())))
        return cached[1]

    @property
    def store_format(self) -> str:
        """The summary's format: html/md reports keep their data in a JSON summary."""
        return "json" if self.config.format in REPORT_FORMATS else self.config.format

    @property
    def launcher_format(self) -> str | None:
        """``json``/``csv`` when the launcher's files are written (``compat: launcher``), else None."""
        fmt = self.config.format
        return fmt if self.config.compat == "launcher" and fmt in launcher.FORMATS else None

    @property
    def launcher_filename(self) -> str | None:
        """The launcher's file name, per job and combined alike (``output_filename`` names both)."""
        fmt = self.launcher_format
        return (self.config.output_filename or launcher.default_filename(fmt)) if fmt else None

    @property
    def summary_path(self) -> Path | None:
        if self.config.format == "none":
            return None
        if name := self.launcher_filename:
            return self.output_dir / name
        if self.config.format in REPORT_FORMATS:
            return self.output_dir / "results.json"
        return self.output_dir / (self.config.output_filename or f"results.{self.config.format}")

    @property
    def report_path(self) -> Path | None:
        if self.config.format not in REPORT_FORMATS:
            return None
        return self.output_dir / (self.config.output_filename or f"report.{self.config.format}")

    def job_dir(self, item: ExportItem) -> Path:
        return self.output_dir / item.result.invocation_id / item.result.job_id

    def place(self, item: ExportItem, root: Path, checked: dict[str, bool] | None = None) -> Path:
        """The job's folder, checked (:func:`~evalport.adapters.sinks.local_layout.job_folder`)."""
        return job_folder(item, self.output_dir, root, checked)

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = (
                f"cannot create output directory {self.output_dir}: {exc.strerror or exc}; "
                "choose another --output-dir"
            )
            return [Outcome(i.result.job_id, self.destination, Status.FAILED, reason) for i in items]
        outcomes: dict[str, Outcome] = {}
        self._dumped = {}
        staged = self._stage_all(items, outcomes)
        if self.launcher_format:
            return self._finish_launcher(items, staged, outcomes)
        previous: dict[str, dict[str, Any]] = {}
        summary = self.summary_path
        if summary is not None and staged:
            try:
                previous = self._upsert_summary(summary, [job.entry for job in staged])
            except (OSError, ValueError) as exc:
                reason = f"cannot update summary {summary}: {getattr(exc, 'strerror', None) or exc}"
                return [
                    outcomes.get(i.result.job_id)
                    or Outcome(i.result.job_id, self.destination, Status.FAILED, reason)
                    for i in items
                ]
        report_problem = self._write_report() if staged and self.report_path is not None else None
        for job in staged:
            job_id = job.item.result.job_id
            if report_problem:
                outcomes[job_id] = Outcome(job_id, self.destination, Status.FAILED, report_problem)
                continue
            was_there, old = job_id in previous, previous.get(job_id)
            status = job_status(job, was_there, old, has_summary=summary is not None)
            where = str(self.job_dir(job.item))
            outcomes[job_id] = Outcome(job_id, self.destination, status, job.stage.note, location=where)
        return [outcomes[i.result.job_id] for i in items]

    def _stage_all(self, items: Sequence[ExportItem], outcomes: dict[str, Outcome]) -> list[StagedJob]:
        """Stages each item into its folder (and writes its per-job summary); a job that cannot be
        placed or written gets its failed outcome in ``outcomes`` instead."""
        staged: list[StagedJob] = []
        root = self.output_dir.resolve()
        made: set[Path] = set()
        checked: dict[str, bool] = {}
        for item in items:
            job_id = item.result.job_id
            try:
                job_dir = self.place(item, root, checked)
            except UnplaceableJob as exc:
                outcomes[job_id] = Outcome(job_id, self.destination, Status.FAILED, str(exc))
                continue
            try:
                existed, (stage, entry, change) = False, self._stage_new(item, job_dir, made)
            except Occupied:
                try:
                    existed = make_dir(job_dir, made)
                    stage, entry, change = self._stage_job(item, job_dir, job_dir, existed)
                except (OSError, ValueError) as exc:
                    outcomes[job_id] = self._unwritten(job_id, job_dir, exc)
                    continue
            except (OSError, ValueError) as exc:
                outcomes[job_id] = self._unwritten(job_id, job_dir, exc)
                continue
            staged.append(StagedJob(item, entry, stage, existed, change))
        return staged

    def _stage_new(
        self, item: ExportItem, job_dir: Path, made: set[Path]
    ) -> tuple[StageResult, dict[str, Any], launcher.Change | None]:
        """A job with no folder yet, staged into a private twin (:func:`stage_in_twin`)."""
        return stage_in_twin(
            job_dir, made, lambda twin: self._stage_job(item, job_dir, twin, existed=False, private=True)
        )

    def _stage_job(
        self, item: ExportItem, job_dir: Path, into: Path, existed: bool, private: bool = False
    ) -> tuple[StageResult, dict[str, Any], launcher.Change | None]:
        """Stages the item's files into ``into`` (``job_dir`` or its private twin) and writes its
        per-job summary there; the summary's paths name ``job_dir``."""
        stage = store_samples(self, item, stage_item(item, into, private=private))
        entry = summary_entry(item, stage.files, f"{item.result.invocation_id}/{item.result.job_id}")
        change = None
        if (fmt := self.launcher_format) and (name := self.launcher_filename):
            change = launcher.write_job(into / name, fmt, item)
        elif self.config.format in ("json", "csv"):
            self._write_job_summary(into, entry, existed, private)
        return stage, entry, change

    def _unwritten(self, job_id: str, job_dir: Path, exc: OSError | ValueError) -> Outcome:
        """The failed outcome of a job whose folder could not be written, naming the file."""
        where = getattr(exc, "filename", None) or job_dir
        detail = getattr(exc, "strerror", None) or exc
        reason = f"cannot write {where}: {detail}" if isinstance(exc, OSError) else str(exc)
        return Outcome(job_id, self.destination, Status.FAILED, reason)

    def _finish_launcher(
        self, items: Sequence[ExportItem], staged: list[StagedJob], outcomes: dict[str, Outcome]
    ) -> list[Outcome]:
        path, fmt = self.summary_path, self.launcher_format
        assert path is not None and fmt is not None
        try:
            combined = launcher.write_combined(path, fmt, [job.item for job in staged], batch=len(items))
        except (OSError, ValueError) as exc:
            reason = f"cannot update summary {path}: {getattr(exc, 'strerror', None) or exc}"
            failed = [Outcome(j.item.result.job_id, self.destination, Status.FAILED, reason) for j in staged]
            outcomes.update((o.job_id, o) for o in failed)
            staged = []
        for job in staged:
            job_id = job.item.result.job_id
            status = launcher.status(job.change, combined.get(job_id), files_changed=bool(job.stage.changed))
            where = str(self.job_dir(job.item))
            outcomes[job_id] = Outcome(job_id, self.destination, status, job.stage.note, location=where)
        return [outcomes[i.result.job_id] for i in items]

    def _write_job_summary(
        self, job_dir: Path, entry: dict[str, Any], existed: bool = True, private: bool = False
    ) -> None:
        """``result.json`` (or ``.csv``) of one job (:func:`write_job_summary`), its JSON line kept."""
        line = write_job_summary(job_dir, self.config.format, entry, existed=existed, private=private)
        if line is not None:
            self._dumped[entry["job_id"]] = line

    def _upsert_summary(self, path: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Read-modify-write under a file lock, so concurrent exports into one summary lose nothing.

        Returns the fingerprint each job being written had in the summary (by job id; a job that
        was not in it has no key). Between the batches of a JSON summary only its lines and
        fingerprints are kept (:class:`KeptSummary`), not its entries: the file is rewritten from
        the lines, and a team's 20,000 entries as dicts would take several times their text.
        """
        from filelock import FileLock

        with FileLock(str(path) + ".lock", timeout=120):
            kept = self._kept if self._kept is not None and self._kept.holds(path) else None
            if kept is not None:
                current, prints, lines = None, kept.fingerprints, kept.lines
            else:
                current = self._read_summary(path)
                prints, lines = {j: run.get("fingerprint") for j, run in current.items()}, {}
            previous = {e["job_id"]: prints[e["job_id"]] for e in entries if e["job_id"] in prints}
            if all(e["job_id"] in previous and previous[e["job_id"]] == e["fingerprint"] for e in entries):
                return previous
            self._kept = None
            if current is not None and self.store_format != "json":  # a CSV summary is never kept
                current.update((entry["job_id"], flat_row(entry)) for entry in entries)
                atomic_write_text(path, csv_text([current[k] for k in sorted(current)]))
                return previous
            # One run per line: the C JSON encoder (no indent) stays fast, and diffs stay readable.
            dumped = self._dumped
            for entry in entries:
                job_id = entry["job_id"]
                prints[job_id] = entry["fingerprint"]
                lines[job_id] = dumped.get(job_id) or json.dumps(entry, sort_keys=True)
            if current is not None:
                for job_id, run in current.items():
                    if job_id not in lines:
                        lines[job_id] = json.dumps(run, sort_keys=True)
            head = json.dumps({"format": "evalport.results/1", "updated_at": time.time()})[:-1]
            runs = ((",\n" if i else "") + lines[k] for i, k in enumerate(sorted(lines)))
            atomic_write_text_parts(path, chain((f'{head}, "runs": [\n',), runs, ("\n]}\n",)))
            self._kept = KeptSummary.of(path, prints, lines)
        return previous

    def _read_summary(self, path: Path) -> dict[str, dict[str, Any]]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        if self.store_format == "json":
            try:
                doc = json.loads(text)
            except ValueError as exc:
                raise ValueError(
                    f"{path} is not valid JSON ({exc}); move it aside and export again"
                ) from None
            runs = doc.get("runs", []) if isinstance(doc, dict) else []
            return {r["job_id"]: r for r in runs if isinstance(r, dict) and "job_id" in r}
        return read_csv_rows(text)

    def _write_report(self) -> str | None:
        """Renders the report over every run in the summary; the reason when that fails, else None.

        Under the summary's lock, so concurrent exports each leave a report of the latest summary.
        """
        from filelock import FileLock

        from evalport.adapters.report import render, results_from_summary, staged_links
        from evalport.domain.comparison import build_comparison

        summary, report = self.summary_path, self.report_path
        assert summary is not None and report is not None
        try:
            with FileLock(str(summary) + ".lock", timeout=120):
                runs = list(self._read_summary(summary).values())
                results = results_from_summary(runs)
                baseline = self.config.baseline
                if baseline is not None and baseline not in {r.model_id for r in results}:
                    baseline = None  # not exported here yet: a report without deltas, not a failure
                comparison = build_comparison(results, headline=self.config.headline, baseline=baseline)
                links = None
                if self.config.format == "html":
                    files = {str(r["job_id"]): list(r.get("files") or []) for r in runs}
                    links = staged_links(report.parent, results, root=self.output_dir, files=files)
                text = render(comparison, self.config.format, title=self.config.report_title, links=links)
                atomic_write_text(report, text)
        except Exception as exc:  # the runs are recorded; say why the report is missing
            detail = getattr(exc, "strerror", None) or exc
            return f"staged and recorded in {summary}, but the report {report} could not be written: {detail}"
        return None

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """The job ids this folder still holds, of those the ledger says were exported here.

        ``located`` maps job id -> the location this sink returned (the job's folder). A job is
        held when its folder (with its per-job summary) is where it was, inside the output folder,
        and the multi-run summary has its entry; the report must exist too. One read of the
        summary for all ids and a stat or two per job. Anything unreadable holds nothing:
        exporting again is the safe answer.
        """
        if not located or not self.output_dir.is_dir():
            return set()
        report = self.report_path
        if report is not None and not report.is_file():
            return set()
        summary = self.summary_path
        try:
            entries = self._summary_job_ids(summary) if summary is not None else None
        except (OSError, ValueError):
            return set()
        root = str(self.output_dir.resolve())
        job_file = self.launcher_filename or {"json": "result.json", "csv": "result.csv"}.get(
            self.config.format
        )
        return held_job_folders(root, located, entries, job_file)

    def _summary_job_ids(self, summary: Path) -> Collection[str] | None:
        """The job ids in the multi-run summary; None when there is none to ask (the launcher's
        combined file exists only once an export had several jobs)."""
        if fmt := self.launcher_format:
            return launcher.held_job_ids(summary, fmt)
        return self._read_summary(summary).keys()

    def describe(self) -> str:
        report = self.report_path
        if report is not None:
            return str(report.resolve())
        summary = self.summary_path
        return str(summary.resolve() if summary else self.output_dir.resolve())

    def check(self) -> CheckResult:
        probe = self.output_dir
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe.is_dir() and os.access(probe, os.W_OK):
            return CheckResult(True, f"local: {self.output_dir} is writable")
        return CheckResult(False, f"local: {self.output_dir} is not writable (checked {probe})")
