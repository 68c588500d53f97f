"""Objects written before the ports were complete, given the members they lack.

A sink class from before ``describe``/``target_key``/``close``/``still_holds`` were on the
ResultSink port, an embedding launcher's source without ``warnings``, or a ledger without
``remember_signatures``, keeps working: the composition root wraps it once here, so the service
calls every port member directly and never probes (the one optional member, a source's
``signatures``, is asked through :func:`source_signatures`). The defaults are what the service did
before: trust the ledger, no warnings, nothing to close, the destination as its description, no
signature (every job is read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalport.domain.artifacts import ArtifactPolicy
from evalport.domain.errors import EvalportError
from evalport.domain.model import Job, TaskResult
from evalport.domain.ports import (
    ExportLedger,
    LedgerEntry,
    ReadRequest,
    ResultReader,
    ResultSink,
    ResultSource,
    config_target_key,
)

_SINK_DEFAULTS = ("still_holds", "describe", "target_key", "close")


class _CompletedSink:
    """Delegates to the wrapped sink; supplies the port members it does not define."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        return set(located)

    def describe(self) -> str:
        return str(self._sink.destination)

    def target_key(self) -> str:
        return config_target_key(self._sink.destination, getattr(self._sink, "config", None))

    def close(self) -> None:
        return None


def complete_sink(sink: Any) -> ResultSink:
    if all(hasattr(sink, m) for m in _SINK_DEFAULTS):
        return sink
    completed = _CompletedSink(sink)
    for member in _SINK_DEFAULTS:  # the sink's own members win over the defaults
        if hasattr(sink, member):
            setattr(completed, member, getattr(sink, member))
    return completed  # type: ignore[return-value]  # name/capabilities come from the wrapped sink


class _CompletedSource:
    def __init__(self, source: Any) -> None:
        self._source = source

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    @property
    def warnings(self) -> list[str]:
        return list(getattr(self._source, "warnings", None) or [])

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def complete_source(source: Any) -> ResultSource:
    """``source`` itself when it has every member, else it wrapped with the defaults. The members
    are looked up statically: a ``warnings`` property that reads the execution DB is not run."""
    if _has_member(source, "warnings") and _has_member(source, "close"):
        return source
    return _CompletedSource(source)


_ABSENT = object()


def _has_member(obj: Any, name: str) -> bool:
    from inspect import getattr_static

    return getattr_static(obj, name, _ABSENT) is not _ABSENT


def source_signatures(source: ResultSource, jobs: Sequence[Job], policy: ArtifactPolicy) -> dict[str, str]:
    """The source's signatures of ``jobs`` (:class:`~evalport.domain.ports.SignedSource`); none
    for a source without them: every job is read, as before signatures existed."""
    own = getattr(source, "signatures", None)
    return dict(own(jobs, policy)) if own is not None else {}


def source_reads_in_place(source: ResultSource, jobs: Sequence[Job]) -> set[str]:
    """The jobs ``source`` reads where they are (:meth:`~evalport.domain.ports.SignedSource.read_in_place`);
    none for a source that does not say, so that all of its jobs are signed before staging."""
    own = getattr(source, "read_in_place", None)
    return set(own(jobs)) if own is not None else set()


class _CompletedLedger:
    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def remember_signatures(self, entries: Sequence[LedgerEntry]) -> None:
        """A ledger that cannot store signatures keeps none: its jobs are read every time."""
        return None


def complete_ledger(ledger: Any) -> ExportLedger | None:
    if ledger is None or hasattr(ledger, "remember_signatures"):
        return ledger
    return _CompletedLedger(ledger)


class _CompletedReader:
    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def read(self, job: Any, directory: Any, state: Any) -> TaskResult:
        return self._reader.read(job, directory, state)

    def read_many(self, requests: Sequence[ReadRequest]) -> list[TaskResult | EvalportError]:
        out: list[TaskResult | EvalportError] = []
        for job, directory, state in requests:
            try:
                out.append(self._reader.read(job, directory, state))
            except EvalportError as exc:
                out.append(exc)
        return out


def complete_reader(reader: Any) -> ResultReader:
    return reader if hasattr(reader, "read_many") else _CompletedReader(reader)
