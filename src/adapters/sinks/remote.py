"""What every sink that talks to a server shares: retries, error rules, summaries, staging.

Four pieces, each usable alone:

* :class:`RemoteOptions`, a config mixin with the common options ``retries`` (attempts per call)
  and ``retry_wait`` (seconds before the first retry; later waits double, with jitter), and old
  option names kept working with a :class:`RenamedOptionWarning` (``deprecated_options``, the one
  renaming mechanism of every sink); a sink with other defaults redeclares a field with
  :func:`retries_option` / :func:`retry_wait_option`, so the constraints stay defined here;
* :class:`ErrorRules`, one transient-or-permanent classification: connection problems, timeouts,
  429 and 5xx are transient everywhere; each SDK plugs in its own marker words, error codes and
  a ``decide`` hook that may settle an error first;
* :class:`Destination`, the state of one export against one destination: every call goes through
  :meth:`Destination.call` (bounded retries with backoff and jitter, on tenacity). Once a call
  failed transiently through a whole retry cycle the destination is *down for this export*: calls
  in other threads stop retrying, and every later call raises :class:`DestinationDown` at once
  (its reason ``not tried: <why it is down>``), so the remaining jobs fail fast without waiting;
* :func:`one_line`, the one-line summary of an error (redacted, its first meaningful line), and
  :func:`stage_for_upload`, the job's files staged masked into a fresh folder with the content
  digest of what was staged, each staged file read once. A sink that can store the export's
  fingerprint of an item (``ExportItem.fingerprint``, what the ledger stores) compares that
  instead of hashing the files itself.

Usage (a sink's export)::

    class MySinkConfig(ArtifactSinkConfig, RemoteOptions):
        deprecated_options: ClassVar[dict[str, str]] = {"attempts": "retries"}

    RULES = ErrorRules(markers=("database is locked",), codes=frozenset({"UNAVAILABLE"}))

    def export(self, items):
        where = Destination(
            self.config.retry_policy(), RULES,
            explain=lambda failure: f"my server did not answer ({failure.what}: {failure.summary})",
        )
        outcomes = []
        for item in items:
            if where.down:  # nothing is staged or sent once the destination is known to be down
                outcomes.append(Outcome(item.result.job_id, self.name, Status.FAILED, where.not_tried))
                continue
            staged = stage_for_upload(item, tmp)  # None: no files to send
            try:
                where.call("upload the files", lambda: client.upload(staged.directory))
                outcomes.append(Outcome(item.result.job_id, self.name, Status.EXPORTED))
            except CallFailed as failure:  # DestinationDown included; .reason is ready to report
                outcomes.append(Outcome(item.result.job_id, self.name, Status.FAILED, failure.reason))
        return outcomes

A :class:`Destination` lives for one export (a new export tries the destination again); it is
safe to share between the threads of that export.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field, model_validator

from evalport.adapters.retry import RetryPolicy, is_transient
from evalport.adapters.staging import stage_item
from evalport.domain.ports import ExportItem
from evalport.domain.redact import redact_text

__all__ = [
    "WIRE_MARKERS",
    "CallFailed",
    "Destination",
    "DestinationDown",
    "ErrorRules",
    "RemoteOptions",
    "RenamedOptionWarning",
    "Staged",
    "one_line",
    "retries_option",
    "retry_wait_option",
    "stage_for_upload",
]

T = TypeVar("T")

#: Words in an error's text that mean the wire, not the request, failed (compared in lower case).
WIRE_MARKERS = (
    "connection refused",
    "max retries exceeded",
    "timed out",
    "timeout",
    "connection reset",
    "connection aborted",
    "remotedisconnected",
    "bad gateway",
    "service unavailable",
    "temporarily unavailable",
)
_CAUSES = 5  # how far down an exception's cause chain the rules look
_SUMMARY_LIMIT = 300
_DIGEST_CHUNK = 1 << 20


# ---- options ---------------------------------------------------------------------------------------
class RenamedOptionWarning(DeprecationWarning):
    """An option was given under its old name; the message names the new one."""


def retries_option(default: int = 4) -> Any:
    """The ``retries`` field (a sink may redeclare it with another default)."""
    return Field(default=default, ge=1, le=20, exclude=True, description="attempts per call (1: no retry)")


def retry_wait_option(default: float = 0.5) -> Any:
    """The ``retry_wait`` field (a sink may redeclare it with another default)."""
    return Field(
        default=default,
        ge=0,
        le=60,
        exclude=True,
        description="seconds before the first retry; then doubling",
    )


class RemoteOptions(BaseModel):
    """The retry options of a remote sink's config (mix into the sink's pydantic config).

    Both are left out of ``model_dump``: how hard to try is not part of where results go, so the
    ledger's key of a destination (a hash of the dumped config) does not change with them.
    """

    #: Old option name -> new one; the old name keeps working, with a RenamedOptionWarning.
    deprecated_options: ClassVar[Mapping[str, str]] = {}

    retries: int = retries_option()
    retry_wait: float = retry_wait_option()

    @model_validator(mode="before")
    @classmethod
    def _renamed_options(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not any(old in data for old in cls.deprecated_options):
            return data
        data = dict(data)
        for old, new in cls.deprecated_options.items():
            if old not in data:
                continue
            value = data.pop(old)
            if new in data and data[new] != value:
                raise ValueError(f"{old!r} is the old name of {new!r}; give only {new!r}")
            data[new] = value
            warnings.warn(f"option {old!r} is deprecated; use {new!r}", RenamedOptionWarning, stacklevel=2)
        return data

    def retry_policy(self, max_wait: float = 8.0, total_timeout: float | None = None) -> RetryPolicy:
        """The policy for one call: ``retries`` attempts, waits from ``retry_wait`` up to ``max_wait``."""
        total = total_timeout if total_timeout is not None else self.retries * (max_wait + 15.0)
        return RetryPolicy(self.retries, self.retry_wait, max(max_wait, self.retry_wait), total)


# ---- transient or permanent -----------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorRules:
    """One SDK's rules on top of the common ones; an error is transient if any rule says so.

    ``decide(exc)`` runs first on each error of the cause chain: True (transient) or False
    (permanent) settles it, None leaves it to the other rules: the common ones
    (:func:`evalport.adapters.retry.is_transient`: connection errors, timeouts, 429, 5xx),
    ``codes`` (matched against ``exc.error_code``) and marker words (:data:`WIRE_MARKERS` and
    ``markers``, in lower case) in the error's text.
    """

    markers: tuple[str, ...] = ()
    codes: frozenset[str] = frozenset()
    decide: Callable[[BaseException], bool | None] | None = None

    def is_transient(self, exc: BaseException) -> bool:
        markers = WIRE_MARKERS + self.markers
        current: BaseException | None = exc
        for _ in range(_CAUSES):
            if current is None:
                break
            verdict = self.decide(current) if self.decide is not None else None
            if verdict is not None:
                return verdict
            if is_transient(current) or getattr(current, "error_code", None) in self.codes:
                return True
            text = str(current).lower()
            if any(marker in text for marker in markers):
                return True
            current = current.__cause__ or current.__context__
        return False


# ---- one line about an error ----------------------------------------------------------------------
def _first_meaningful_line(text: str) -> str:
    for line in text.splitlines():
        line = " ".join(line.split())
        if line and any(c.isalnum() for c in line) and not line.startswith("Traceback ("):
            return line
    return ""


def one_line(error: BaseException | str, limit: int = _SUMMARY_LIMIT) -> str:
    """What went wrong, in one redacted line: the wire problem, or the first meaningful line of
    the server's message (prefixed with its error code when the message does not name it).
    ``error`` may be the server's message itself."""
    text = error if isinstance(error, str) else str(getattr(error, "message", None) or error)
    low = text.lower()
    if "connection refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "the request timed out"
    if "name or service not known" in low or "nodename nor servname" in low:
        return "unknown host name"
    line = _first_meaningful_line(text) or (type(error).__name__ if not isinstance(error, str) else "")
    code = getattr(error, "error_code", None)
    if isinstance(code, str) and code and code not in line:
        line = f"{code}: {line}"
    line = redact_text(line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ---- calls with retries, and "down for this export" ------------------------------------------------
class CallFailed(Exception):
    """A call failed for good (after retries when the error was transient); ``reason`` says so."""

    def __init__(
        self, what: str, error: BaseException, attempts: int, transient: bool, elapsed: float = 0.0
    ) -> None:
        self.what, self.error, self.attempts, self.transient = what, error, attempts, transient
        self.elapsed = elapsed  # seconds spent on the call, retries included
        self.reason = f"{what}: {self.summary}"
        super().__init__(f"{what}: {error}")

    @property
    def summary(self) -> str:
        return one_line(self.error)


class DestinationDown(CallFailed):
    """Not tried: the destination was found down earlier in this export (``reason`` says why)."""

    def __init__(self, what: str, down: str) -> None:
        super().__init__(what, ConnectionError(down), 0, True)
        self.reason = f"not tried: {down}"


class Destination:
    """One export's view of a destination: bounded retries until it is known to be down.

    ``explain(failure)`` turns a final failure into the reason reported for the job (and, for a
    transient one, the reason the destination is down). Thread-safe.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        rules: ErrorRules,
        explain: Callable[[CallFailed], str] | None = None,
    ) -> None:
        self.policy, self.rules = policy, rules
        self._explain = explain
        self._down: str | None = None
        self._down_event = threading.Event()
        self._lock = threading.Lock()

    @property
    def down(self) -> str | None:
        """Why the destination is down for this export, or None while it is not known to be."""
        return self._down

    @property
    def not_tried(self) -> str:
        """The reason for a job not tried because the destination is down."""
        return f"not tried: {self._down}"

    def mark_down(self, reason: str) -> None:
        """From now on no call is tried (the first reason given is kept)."""
        with self._lock:
            if self._down is None:
                self._down = reason
        self._down_event.set()

    def failure(
        self,
        what: str,
        error: BaseException,
        transient: bool = False,
        attempts: int = 1,
        elapsed: float = 0.0,
    ) -> CallFailed:
        """A failure explained like any other: of a call, or found without one (a deleted experiment)."""
        failure = CallFailed(what, error, attempts, transient, elapsed)
        if self._explain is not None:
            failure.reason = self._explain(failure)
        return failure

    def call(self, what: str, fn: Callable[[], T], rules: ErrorRules | None = None) -> T:
        """``fn()`` with retries on transient errors; raises :class:`CallFailed` with a ``reason``.

        ``rules`` replaces the destination's rules for this call (a call that is not idempotent
        retries only on errors that prove nothing happened).
        """
        rules = rules or self.rules
        attempts = 0
        started = time.monotonic()

        def attempt() -> T:
            nonlocal attempts
            if self._down is not None:
                raise DestinationDown(what, self._down)
            attempts += 1
            return fn()

        try:
            return self.policy.call(
                attempt,
                lambda exc: not isinstance(exc, DestinationDown) and rules.is_transient(exc),
                give_up=lambda: self._down is not None,
                sleep=self._down_event.wait,
            )
        except DestinationDown:
            raise
        except Exception as exc:
            failure = self.failure(what, exc, rules.is_transient(exc), attempts, time.monotonic() - started)
            if failure.transient:
                self.mark_down(failure.reason)
            raise failure from exc


# ---- staging for upload ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Staged:
    """A job's files staged for one upload: the folder, what it holds, their digest, what was left out."""

    directory: Path
    files: tuple[str, ...]
    digest: str
    note: str


def stage_for_upload(
    item: ExportItem, parent: Path, extra: Mapping[str, bytes] | None = None, *, digest: bool = True
) -> Staged | None:
    """The item's selected files (secrets masked) and the ``extra`` files in a new folder under
    ``parent``, with a digest of every staged file's path and content; None when there is nothing
    to send.

    The originals are read once, by staging; the digest reads each staged copy once (a hard
    link to the original when it held no secret). The digest is ``sha256`` over, in path order,
    ``<relative path>\\0<content>\\0`` for each file, first 32 hex digits: stable across releases,
    so a destination that stores it can tell an unchanged upload. ``digest=False`` skips it
    (``Staged.digest`` is then ""): for a sink that tells unchanged uploads by ``ExportItem.fingerprint``.
    """
    extra = extra or {}
    if not item.artifact_paths() and not extra:
        return None
    target = Path(tempfile.mkdtemp(dir=parent))
    staged = stage_item(item, target)
    for rel, body in extra.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    files = tuple(sorted({*staged.files, *extra}, key=lambda rel: rel.split("/")))
    return Staged(target, files, _content_digest(target, files) if digest else "", staged.note)


def _content_digest(folder: Path, files: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0")
        with (folder / rel).open("rb") as fh:  # in chunks: an artifact may be far larger than memory
            while chunk := fh.read(_DIGEST_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:32]
