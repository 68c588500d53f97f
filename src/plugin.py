"""Everything a third-party sink needs, in one import: ``from evalport.plugin import ...``.

- the base class and config models: :class:`BaseSink`, :class:`SinkConfig`,
  :class:`ArtifactSinkConfig`, :class:`TrackerSinkConfig`;
- registration: :func:`register_sink` (alias :func:`register_exporter`), :func:`unregister_sink`,
  or an entry point in the group ``evalport.sinks``;
- the staging helper that copies an item's files with secrets masked: :func:`stage_item`
  (:class:`StageResult`), :func:`file_signatures` for fingerprints of what is sent, and
  :class:`RetryPolicy` for bounded retries of a server's transient errors;
- for a sink that talks to a server, the remote layer every built-in remote sink uses:
  :class:`RemoteOptions` (``retries``, ``retry_wait``, deprecated names), :class:`ErrorRules`,
  :class:`Destination` (one per export: retries, then "not tried" once the server is down),
  :class:`CallFailed`, :class:`DestinationDown`, :func:`one_line`, :func:`stage_for_upload`
  (:class:`Staged`);
- the domain types a sink receives and returns: :class:`ExportItem`, :class:`TaskResult`,
  :class:`Metric`, :class:`Outcome`, :class:`Status`, :class:`RunIdentity`, :class:`LogMode`,
  :class:`SinkCapabilities`, :class:`CheckResult`, :class:`ArtifactPolicy`, :class:`MetricFilter`,
  and the ports :class:`ResultSink` and :class:`ResultSource` to check a class against.

Tests for a sink come from ``evalport.testing`` (``SinkContract``).
"""

from __future__ import annotations

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.base import (
    ArtifactSinkConfig,
    BaseSink,
    SampleSinkConfig,
    SinkConfig,
    TrackerSinkConfig,
)
from evalport.adapters.sinks.remote import (
    CallFailed,
    Destination,
    DestinationDown,
    ErrorRules,
    RemoteOptions,
    Staged,
    one_line,
    stage_for_upload,
)
from evalport.adapters.staging import StageResult, file_signatures, stage_item
from evalport.app.registry import register_exporter, register_sink, register_source, unregister_sink
from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import ConfigError, EvalportError, ResultError
from evalport.domain.filters import MetricFilter
from evalport.domain.identity import LogMode, RunIdentity
from evalport.domain.model import Job, JobState, Metric, TaskResult
from evalport.domain.ports import (
    CheckResult,
    ExportItem,
    ResultSink,
    ResultSource,
    SinkCapabilities,
    StagedJob,
)
from evalport.domain.redact import redact, redact_text
from evalport.domain.report import Outcome, Status
from evalport.domain.sample_rows import SampleOptions, SampleRow, sample_rows

__all__ = [
    "ArtifactPolicy",
    "ArtifactSinkConfig",
    "BaseSink",
    "CallFailed",
    "CheckResult",
    "ConfigError",
    "Destination",
    "DestinationDown",
    "ErrorRules",
    "EvalportError",
    "ExportItem",
    "Job",
    "JobState",
    "LogMode",
    "Metric",
    "MetricFilter",
    "Outcome",
    "RemoteOptions",
    "ResultError",
    "ResultSink",
    "ResultSource",
    "RetryPolicy",
    "RunIdentity",
    "SampleOptions",
    "SampleRow",
    "SampleSinkConfig",
    "SinkCapabilities",
    "SinkConfig",
    "StageResult",
    "Staged",
    "StagedJob",
    "Status",
    "TaskResult",
    "TrackerSinkConfig",
    "file_signatures",
    "one_line",
    "redact",
    "redact_text",
    "register_exporter",
    "register_sink",
    "register_source",
    "sample_rows",
    "stage_for_upload",
    "stage_item",
    "unregister_sink",
]
