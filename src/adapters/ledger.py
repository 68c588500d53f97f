"""The export ledger: a small sqlite database of what went where.

One row per (job, target) with the content fingerprint last sent and the outcome, plus an
append-only event log for ``evalport history``. A *target* is a destination with its settings
(``mlflow@3f2a...``): the same job sent to two tracking servers is two targets.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

LEDGER_FILE = "ledger.sqlite"
STATE_DIR_ENV = "EVALPORT_STATE_DIR"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exports (
    job_id TEXT NOT NULL, target TEXT NOT NULL, destination TEXT NOT NULL,
    fingerprint TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, target));
CREATE TABLE IF NOT EXISTS events (
    at REAL NOT NULL, job_id TEXT NOT NULL, target TEXT NOT NULL, destination TEXT NOT NULL,
    fingerprint TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_job ON events (job_id);
"""


def default_state_dir() -> Path:
    """``$EVALPORT_STATE_DIR``, else ``$XDG_STATE_HOME/evalport``, else ``~/.local/state/evalport``."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / "evalport"


@dataclass(frozen=True)
class LedgerEntry:
    job_id: str
    target: str
    destination: str
    fingerprint: str
    status: str
    reason: str = ""
    location: str = ""
    attempts: int = 0
    updated_at: float = 0.0


class SqliteLedger:
    """Thread- and process-safe enough for a CLI: short transactions, WAL, a busy timeout."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_state_dir() / LEDGER_FILE
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if not self._ready:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        keys = list(keys)
        if not keys or not self.path.exists():
            return {}
        out: dict[tuple[str, str], LedgerEntry] = {}
        with closing(self._connect()) as conn:
            targets = sorted({t for _, t in keys})
            wanted = set(keys)
            marks = ",".join("?" * len(targets))
            for row in conn.execute(f"SELECT * FROM exports WHERE target IN ({marks})", targets):
                entry = LedgerEntry(*row)
                if (entry.job_id, entry.target) in wanted:
                    out[(entry.job_id, entry.target)] = entry
        return out

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Upserts the latest state of each (job, target) and appends one event each."""
        if not entries:
            return
        now = time.time()
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for e in entries:
                    row = (e.job_id, e.target, e.destination, e.fingerprint, e.status, e.reason, e.location)
                    conn.execute(
                        "INSERT INTO exports VALUES (?,?,?,?,?,?,?,?,?) "
                        "ON CONFLICT (job_id, target) DO UPDATE SET "
                        "destination=excluded.destination, fingerprint=excluded.fingerprint, "
                        "status=excluded.status, reason=excluded.reason, location=excluded.location, "
                        "attempts=CASE WHEN excluded.status='failed' THEN exports.attempts + 1 ELSE 0 END, "
                        "updated_at=excluded.updated_at",
                        (*row, 1 if e.status == "failed" else 0, now),
                    )
                    conn.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", (now, *row))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def history(self, prefix: str = "", limit: int = 200) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT at, job_id, destination, target, status, reason, location FROM events "
                "WHERE job_id LIKE ? ORDER BY at DESC, rowid DESC LIMIT ?",
                (prefix.replace("%", r"\%") + "%", limit),
            ).fetchall()
        keys = ("at", "job_id", "destination", "target", "status", "reason", "location")
        return [dict(zip(keys, row, strict=True)) for row in rows]
