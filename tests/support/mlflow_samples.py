"""Read back the samples the MLflow sink wrote: the run's table file, or the experiment's traces."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from evalport.adapters.sinks.mlflow import MlflowSink
from evalport.adapters.sinks.mlflow.samples import LEADING_COLUMNS, TRAILING_COLUMNS, table_file
from evalport.adapters.sinks.mlflow.traces import JOB_TAG, SAMPLE_TAG
from evalport.testing.sink_contract import StoredSample

TEXT_COLUMNS = ("input", "target", "output", "metadata")


def job_runs(client: Any, sink: MlflowSink, result) -> list[Any]:
    """The runs whose tags name the job (``evalport.job.<task>``), whatever the log mode."""
    from evalport.adapters.sinks.mlflow.contents import job_tag

    experiment = client.get_experiment_by_name(sink.config.experiment_name)
    if experiment is None:
        return []
    tag = job_tag(result)
    return [
        r
        for r in client.search_runs([experiment.experiment_id], max_results=1000)
        if r.data.tags.get(tag) == result.job_id
    ]


def table_of(client: Any, run_id: str, artifact_file: str) -> dict[str, Any] | None:
    """The table file as stored (``{"columns": [...], "data": [...]}``), or None when absent."""
    folder, _, _ = artifact_file.rpartition("/")
    if artifact_file not in {f.path for f in client.list_artifacts(run_id, folder)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(client.download_artifacts(run_id, artifact_file, tmp)).read_text("utf-8"))


def read_table_samples(uri: str, sink: MlflowSink, result) -> list[StoredSample]:
    """Every row of the job's table in every run naming the job."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    out = []
    for run in job_runs(client, sink, result):
        table = table_of(client, run.info.run_id, table_file(result))
        if table is None:
            continue
        columns = table["columns"]
        fixed = set(LEADING_COLUMNS + TRAILING_COLUMNS)
        for values in table["data"]:
            row = dict(zip(columns, values, strict=True))
            scores = {k: v for k, v in row.items() if k not in fixed and v is not None}
            text = "\n".join(str(row[c]) for c in TEXT_COLUMNS)
            out.append(StoredSample(row["sample_id"], scores, text))
    return out


def job_traces(uri: str, sink: MlflowSink, job_id: str) -> list[Any]:
    """The experiment's traces tagged with ``job_id``, with their spans."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sink.config.experiment_name)
    if experiment is None:
        return []
    out: list[Any] = []
    token = None
    while True:
        page = client.search_traces(
            locations=[experiment.experiment_id],
            filter_string=f"tag.`{JOB_TAG}` = '{job_id}'",
            max_results=100,
            page_token=token,
        )
        out.extend(page)
        token = page.token
        if not token:
            return out


def read_trace_samples(uri: str, sink: MlflowSink, result) -> list[StoredSample]:
    """One StoredSample per trace of the job: its feedback as scores, its span's text."""
    out = []
    for trace in job_traces(uri, sink, result.job_id):
        scores = {a.name: a.value for a in trace.info.assessments if a.feedback is not None}
        span = trace.data.spans[0]
        text = "\n".join(
            [
                str(span.inputs.get("input")),
                str(span.inputs.get("target")),
                str(span.outputs.get("output")),
                str(span.attributes.get("evalport.metadata")),
                trace.info.request_preview or "",
                trace.info.response_preview or "",
            ]
        )
        out.append(StoredSample(trace.info.tags[SAMPLE_TAG], scores, text))
    return out
