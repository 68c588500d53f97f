"""Preparing what each sink receives: one ExportItem per result (filtered, files chosen,
fingerprinted once), and the per-job notes the report carries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from evalport.domain.fingerprint import item_fingerprint
from evalport.domain.model import TaskResult
from evalport.domain.ports import ExportItem, ResultSink


def emptied_by_filter_note(
    sink: ResultSink, ready: Sequence[tuple[TaskResult, Path]], items: Sequence[ExportItem]
) -> str:
    """A note when the sink's metric filter left jobs that had metrics with none, else ''."""
    return emptied_note(sink, emptied_count(sink, ready, items), len(items))


def emptied_count(
    sink: ResultSink, ready: Sequence[tuple[TaskResult, Path]], items: Sequence[ExportItem]
) -> int:
    """How many jobs that had metrics the sink's metric filter left with none."""
    if not sink.metric_filter.patterns:
        return 0
    return sum(
        1
        for (result, _), item in zip(ready, items, strict=True)
        if result.metrics and not item.result.metrics
    )


def emptied_note(sink: ResultSink, emptied: int, total: int) -> str:
    """The note for ``emptied`` of ``total`` jobs left without metrics by the filter ('' for none)."""
    if not emptied:
        return ""
    patterns = sink.metric_filter.patterns
    return (
        f"{sink.destination}: the metric filter log_metrics={','.join(patterns)} matches no metric of "
        f"{emptied} of {total} job(s); they are exported without metrics (check the patterns "
        "against `evalport show <job>`)"
    )


def result_notes(result: TaskResult) -> list[str]:
    """What the reader left out of a job on purpose (a symlinked logs/ folder, a FIFO), per job."""
    return [f"job {result.job_id}: {note}" for note in result.notes]


def prepare_item(
    result: TaskResult,
    directory: Path | None,
    sink: ResultSink,
    fingerprint: Callable[[ExportItem], str] = item_fingerprint,
) -> ExportItem:
    """The item a sink receives: the sink's metric filter applied, its artifact policy's files
    chosen, and its fingerprint computed (once: the ledger and the sink both use this value)."""
    policy = sink.policy
    item = ExportItem(
        result=sink.metric_filter.apply_to(result),
        directory=directory,
        artifacts=tuple(policy.select_artifacts(result.artifacts, result.result_files)),
        logs=tuple(policy.select_logs(result.logs)),
    )
    return replace(item, fingerprint=fingerprint(item))
