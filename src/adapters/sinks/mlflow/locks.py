"""File locks that make MLflow exports from several processes on one machine safe.

MLflow has no "create this run unless a run with this tag exists": a search followed by a create
is not atomic, so two processes exporting the same job both create a run. And a new sqlite store
is created by running its schema migrations, which two processes must not do at once (the loser
fails, and leaves ``_alembic_tmp_tags`` behind for every later export). Both are closed here with
operating-system file locks, released by the kernel when a process dies:

* a sqlite store: one lock file beside it, ``<db>.evalport.lock``, around opening the store and
  around each invocation's export (its search, creates and writes: sqlite serialises writers
  anyway);
* a tracking server: lock files in the state directory (``$EVALPORT_STATE_DIR/locks``), one of
  :data:`STRIPES` per (tracking URI, experiment), chosen by a hash of the run key, so exports of
  different jobs rarely wait for each other and the number of files stays bounded.

A server's locks are held only around a lookup and a create, never around an upload. They serialise
processes of one machine (or sharing the state directory); see docs/sinks/mlflow.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("evalport.sinks.mlflow")

#: Lock files per (tracking server, experiment).
STRIPES = 64
#: Seconds to wait for a lock before going on without it (a lock is held for a lookup and a create).
WAIT = 120.0


def store_lock_path(db: Path) -> Path:
    """The lock beside a sqlite store: ``mlflow.db`` -> ``mlflow.db.evalport.lock``."""
    return db.with_name(f"{db.name}.evalport.lock")


def run_lock_path(tracking_uri: str, experiment: str, run_key: str, sqlite_db: Path | None) -> Path:
    """The lock guarding the find-or-create of the run for ``run_key`` at this destination."""
    if sqlite_db is not None:
        return store_lock_path(sqlite_db)
    from evalport.adapters.ledger import default_state_dir

    destination = hashlib.sha256(f"{tracking_uri}\0{experiment}".encode()).hexdigest()[:16]
    stripe = int(hashlib.sha256(f"{tracking_uri}\0{experiment}\0{run_key}".encode()).hexdigest()[:8], 16)
    return default_state_dir() / "locks" / f"mlflow-{destination}-{stripe % STRIPES:02d}.lock"


@contextlib.contextmanager
def held(path: Path, timeout: float = WAIT) -> Iterator[bool]:
    """Holds the lock file ``path`` (yields True), or yields False when it cannot be had.

    A lock that cannot be created (a read-only folder) or is not released within ``timeout``
    never fails an export: it goes on unlocked, as it would without this module.
    """
    from filelock import FileLock, Timeout

    # One FileLock object per use: a separate descriptor, so threads of one process exclude
    # each other as well as other processes.
    lock = FileLock(str(path), timeout=timeout, thread_local=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except (OSError, Timeout) as exc:
        log.warning("mlflow: going on without the lock %s (%s)", path, exc)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
