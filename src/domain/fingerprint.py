"""The one definition of "unchanged": a short hash of what an export item sends.

The service computes it once per item per export (after the sink's metric filter and file
selection) and passes it along on :attr:`ExportItem.fingerprint`; the ledger stores and compares
that value, and sinks that decide "unchanged" themselves (the local summary, MLflow, W&B) read it
from the item instead of hashing again.

Beside it, the ledger keeps a job's *source signature* (:func:`job_signature`), which needs no
parsing: when it matches, the job is reported unchanged before it is staged or read.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

from evalport.domain.model import JobState

if TYPE_CHECKING:
    from evalport.domain.model import Job
    from evalport.domain.ports import ExportItem


def file_signatures(item: ExportItem) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of each file an item would send; a missing file is (path, -1, -1).

    Cheap to compute (lstat only: a link is never followed), and changes whenever a file is
    rewritten, so a touched file changes the fingerprint. A file the reader scanned
    (:attr:`TaskResult.scans`) is signed with the size and mtime it had when it was read, which
    are what an lstat says unless it changed since: then the item describes what was read.
    """
    if item.directory is None:
        return []
    scans = item.result.scans
    base = os.fspath(item.directory)
    out = []
    rels = [f"artifacts/{a}" for a in item.artifacts] + [f"logs/{log}" for log in item.logs]
    for rel in rels:
        scan = scans.get(rel)
        if scan is not None:
            out.append((rel, scan.size, scan.mtime_ns))
            continue
        try:
            st = os.lstat(os.path.join(base, rel))
            out.append((rel, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((rel, -1, -1))
    return out


def item_fingerprint(item: ExportItem) -> str:
    """What ``item`` sends, as a short hash: the result's summary and its files' signatures."""
    body = json.dumps([item.result.summary(), file_signatures(item)], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


#: Bumped whenever what the signature covers changes, so that older stored signatures never match.
SIGNATURE_VERSION = 2

#: Digests of the configs signed so far by one caller, by the config's id (kept alive beside it).
ConfigDigests = dict[int, tuple[object, str]]


def job_signature(job: Job, files: str, reader: str, digests: ConfigDigests | None = None) -> str:
    """The *source signature* of a job: enough to say it reads the same as last time, unparsed.

    ``files`` is the source's signature of its files (sizes and mtimes, not contents, and whatever
    else its state depends on); the job's record (ids, location, timestamp, the execution DB's
    config and data), the reader and evalport's version are added, so that a changed record or an
    upgrade that parses differently reads the job again. '' when ``files`` is ''.

    ``digests``: a memo for a caller signing many jobs. The jobs of an invocation share one config
    object, which is then serialised once rather than once per job.
    """
    if not files:
        return ""
    from evalport import __version__

    body = json.dumps(
        [
            SIGNATURE_VERSION,
            __version__,
            reader,
            files,
            [job.job_id, job.invocation_id, job.task_name, job.executor, job.source, job.timestamp],
            [type(job.location).__name__, *vars_of(job.location)],
            _config_digest(job.config, digests),
            job.data,
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _config_digest(config: object, digests: ConfigDigests | None) -> str:
    if digests is not None:
        got = digests.get(id(config))
        if got is not None and got[0] is config:
            return got[1]
    text = json.dumps(config, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    if digests is not None:
        digests[id(config)] = (config, digest)
    return digest


def signed(signature: str, state: JobState) -> str:
    """What the ledger stores: the signature and the state the job was read in (``<sig>/<state>``),
    so that a job skipped by signature is admitted by its state without reading its markers."""
    return f"{signature}/{state.value}" if signature else ""


def unsigned(stored: str) -> tuple[str, str]:
    """(signature, state value) of a stored :func:`signed` value; ('', '') for anything else."""
    signature, slash, state = stored.partition("/")
    return (signature, state) if slash and signature and state else ("", "")


def vars_of(value: object) -> list[object]:
    """A dataclass's field values in order (a location's host, path, user), else its text."""
    fields = getattr(value, "__dataclass_fields__", None)
    return [getattr(value, f) for f in fields] if fields else [str(value)]
