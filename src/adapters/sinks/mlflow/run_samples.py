"""Adds a job's samples to what an export writes into its run (``samples: table`` or ``traces``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from evalport.adapters.sinks.mlflow.layout import Upload
from evalport.adapters.sinks.mlflow.plan import RunDelta, RunState
from evalport.adapters.sinks.mlflow.runs import RunWriter
from evalport.adapters.sinks.mlflow.samples import (
    Spool,
    sample_tags,
    samples_tag,
    spool,
    table_file,
    write_table,
)
from evalport.adapters.sinks.mlflow.traces import TraceWriter
from evalport.domain.filters import MetricFilter
from evalport.domain.ports import ExportItem
from evalport.domain.sample_rows import SampleOptions

#: Traces written at a time against a tracking server.
TRACE_WORKERS = 4


@dataclass(frozen=True)
class JobSamples:
    """One job's samples as one export sends them; ``work``: a folder of its own, removed after."""

    item: ExportItem
    options: SampleOptions
    metric_filter: MetricFilter
    multi_task: bool
    work: Path

    def spool(self) -> Spool | None:
        """The job's rows read into ``work`` (None: none to send); raises ResultError for a
        samples file that cannot be read, naming it and the line."""
        return spool(self.item.result, self.options, self.metric_filter, self.work)

    def added(
        self,
        writer: RunWriter,
        experiment_id: str,
        state: RunState,
        delta: RunDelta,
        files: list[Upload],
        rows: Spool | None,
    ) -> tuple[RunDelta, list[Upload]]:
        """The delta and uploads with the spooled ``rows`` added, unless the run holds them already
        (its samples tag has their digest).

        ``table``: the table file goes up with the job's files, over the earlier export's. ``traces``:
        the traces are written now (before the tag that says they are there), the earlier ones
        deleted after.
        """
        result = self.item.result
        if rows is None:
            return delta, files
        tag = samples_tag(result, self.multi_task)
        if state.tags.get(tag) == rows.digest:
            return delta, files
        sent = files if delta.upload else []
        if self.options.mode == "table":
            table = table_file(result)
            path = write_table(rows, self.work / table)
            tags = {**delta.tags, **sample_tags(state.tags, tag, rows, table)}
            return replace(delta, upload=True, tags=tags), [*sent, (path, table.rsplit("/", 1)[0])]
        workers = TRACE_WORKERS if writer.store.is_http else 1
        traces = TraceWriter(writer.dest, writer.store.uri, experiment_id, workers)
        earlier = traces.job_traces(result.job_id)
        traces.write(state.run_id, rows.read())
        traces.delete(earlier)
        return replace(delta, tags={**delta.tags, **sample_tags(state.tags, tag, rows, None)}), sent
