"""``samples: traces``: one MLflow trace per sample, its scores as feedback, its target as an expectation.

A trace is written whole, without MLflow's tracing context (which exports to the process-wide
tracking URI, asynchronously): one ``start_trace`` call per sample carries the trace's info, tags
and assessments, and one ``log_spans`` call per :data:`SPANS_PER_CALL` samples its root span (inputs
and outputs, what the trace view shows). Every trace names its job in the :data:`JOB_TAG` tag and its
run in ``mlflow.sourceRun`` (the run page lists it). A re-export lists the job's traces first,
writes the new ones, then deletes those listed: no duplicates, none stale, and a job is never
without its traces while it is written.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from evalport.adapters.sinks.mlflow.names import clip, tag_equals_filter
from evalport.adapters.sinks.remote import Destination
from evalport.domain.sample_rows import SampleRow

#: The trace tag naming the job a trace belongs to.
JOB_TAG = "evalport.job_id"
SAMPLE_TAG = "evalport.sample_id"
#: Spans sent per ``log_spans`` call, and trace ids per search page and per ``delete_traces`` call.
SPANS_PER_CALL, IDS_PER_CALL = 100, 100
#: The longest request/response preview kept on a trace (what the trace list shows).
PREVIEW_CHARS = 1000
MAX_TAG_CHARS = 250


@dataclass
class TraceWriter:
    """Writes and deletes one experiment's traces through the export's :class:`Destination`."""

    dest: Destination
    tracking_uri: str
    experiment_id: str
    #: Traces written at a time (a server takes several; a sqlite store one writer at a time).
    workers: int = 1
    _client: Any = None

    def _tracing(self) -> Any:
        if self._client is None:
            from mlflow.tracing.client import TracingClient

            self._client = TracingClient(self.tracking_uri)
        return self._client

    def job_traces(self, job_id: str) -> list[str]:
        """The ids of the experiment's traces of ``job_id`` (one search per page of 100)."""
        flt, exact = tag_equals_filter(JOB_TAG, job_id)
        flt = "tag." + flt.removeprefix("tags.")
        found: list[str] = []
        token = None
        while True:
            page = self.dest.call(
                "search traces",
                partial(
                    self._tracing().search_traces,
                    locations=[self.experiment_id],
                    filter_string=flt,
                    max_results=IDS_PER_CALL,
                    page_token=token,
                    include_spans=False,
                ),
            )
            found.extend(t.info.trace_id for t in page if exact or t.info.tags.get(JOB_TAG) == job_id)
            token = page.token
            if not token:
                return found

    def delete(self, trace_ids: list[str]) -> None:
        for start in range(0, len(trace_ids), IDS_PER_CALL):
            chunk = trace_ids[start : start + IDS_PER_CALL]
            self.dest.call(
                "delete traces",
                partial(self._tracing().delete_traces, experiment_id=self.experiment_id, trace_ids=chunk),
            )

    def write(self, run_id: str, rows: Iterable[SampleRow]) -> int:
        """One trace per row, linked to ``run_id``; returns how many were written.

        Per :data:`SPANS_PER_CALL` rows: their traces (``workers`` calls at a time against a
        server), then, once all are in, their spans in one call.
        """
        batch: list[tuple[Any, Any]] = []
        count = 0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="evalport-traces") as pool:
            for row in rows:
                batch.append(self._trace(run_id, row))
                count += 1
                if len(batch) >= SPANS_PER_CALL:
                    self._write_batch(pool, batch)
                    batch = []
            if batch:
                self._write_batch(pool, batch)
        return count

    def _write_batch(self, pool: ThreadPoolExecutor, batch: list[tuple[Any, Any]]) -> None:
        start = self._tracing().start_trace
        if self.workers > 1:
            list(pool.map(lambda pair: self.dest.call("write a trace", partial(start, pair[0])), batch))
        else:
            for info, _ in batch:
                self.dest.call("write a trace", partial(start, info))
        self._log_spans([span for _, span in batch])

    def _log_spans(self, spans: list[Any]) -> None:
        self.dest.call("write trace spans", partial(self._tracing().log_spans, self.experiment_id, spans))

    def _trace(self, run_id: str, row: SampleRow) -> tuple[Any, Any]:
        from mlflow.entities import (
            AssessmentSource,
            Expectation,
            Feedback,
            TraceInfo,
            TraceLocation,
            TraceState,
        )
        from mlflow.entities.span import Span

        raw_id = secrets.token_bytes(16)
        trace_id = "tr-" + raw_id.hex()
        now_ns = time.time_ns()
        source = AssessmentSource(source_type="CODE", source_id=clip(row.harness or "evalport", 100))
        assessments: list[Any] = [
            Feedback(name=name, value=value, source=source, trace_id=trace_id)
            for name, value in row.scores.items()
            if value is not None and value == value  # NaN is no feedback value
        ]
        if row.target:
            assessments.append(Expectation(name="target", value=row.target, source=source, trace_id=trace_id))
        inputs = {"input": row.input, "target": row.target}
        outputs = {"output": row.output}
        info = TraceInfo(
            trace_id=trace_id,
            trace_location=TraceLocation.from_experiment_id(self.experiment_id),
            request_time=now_ns // 1_000_000,
            execution_duration=0,
            state=TraceState.OK,
            request_preview=clip(row.input, PREVIEW_CHARS),
            response_preview=clip(row.output, PREVIEW_CHARS),
            trace_metadata={"mlflow.sourceRun": run_id, "mlflow.trace_schema.version": "3"},
            tags={
                JOB_TAG: row.job_id,
                SAMPLE_TAG: clip(row.sample_id, MAX_TAG_CHARS),
                "evalport.task": clip(row.task, MAX_TAG_CHARS),
                "evalport.model": clip(row.model, MAX_TAG_CHARS),
                "mlflow.traceName": clip(f"{row.task} {row.sample_id}", MAX_TAG_CHARS),
            },
            assessments=assessments,
        )
        span = Span.from_dict(
            {
                "trace_id": base64.b64encode(raw_id).decode(),
                "span_id": base64.b64encode(secrets.token_bytes(8)).decode(),
                "parent_span_id": None,
                "name": clip(f"{row.task} {row.sample_id}", MAX_TAG_CHARS),
                "start_time_unix_nano": now_ns,
                "end_time_unix_nano": now_ns,
                "events": [],
                "status": {"code": "STATUS_CODE_OK", "message": ""},
                "attributes": {
                    "mlflow.traceRequestId": json.dumps(trace_id),
                    "mlflow.spanType": json.dumps("EVALUATOR"),
                    "mlflow.spanInputs": json.dumps(inputs, ensure_ascii=False),
                    "mlflow.spanOutputs": json.dumps(outputs, ensure_ascii=False),
                    "evalport.metadata": json.dumps(row.metadata, ensure_ascii=False),
                },
                "links": [],
            }
        )
        return info, span


__all__ = ["JOB_TAG", "SAMPLE_TAG", "TraceWriter"]
