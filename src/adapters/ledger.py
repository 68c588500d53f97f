"""The export ledger: a small sqlite database of what went where.

One row per (job, target) with the content fingerprint last sent and the outcome, plus an
append-only event log for ``evalport history``. A *target* is a destination with its settings
(``mlflow@3f2a...``): the same job sent to two tracking servers is two targets.

The ledger is a cache: a file that is not a database, a state folder that cannot be written or a
database locked for longer than ``busy_timeout`` never fails an export. The first such problem
becomes one warning (``take_warnings``, which the service puts in the report) and the ledger is
then switched off for this process: lookups find nothing and records are dropped. ``history``
cannot answer without the file, so it raises :class:`LedgerUnavailable`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path

from evalport.domain.errors import EvalportError
from evalport.domain.ports import LedgerEntry

__all__ = [
    "LEDGER_FILE",
    "LedgerEntry",
    "LedgerUnavailable",
    "SqliteLedger",
    "default_state_dir",
]

log = logging.getLogger("evalport.ledger")
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
CREATE TABLE IF NOT EXISTS signatures (
    job_id TEXT NOT NULL, target TEXT NOT NULL, signature TEXT NOT NULL, fingerprint TEXT NOT NULL,
    PRIMARY KEY (job_id, target));
"""
# ``signatures`` is its own table so that a ledger written by this version still works with older
# ones (they select ``exports.*``); a signature counts only beside the fingerprint it was stored
# with, so an older version re-exporting a job (a new fingerprint) voids it.
_ENTRY_COLUMNS = (
    "e.job_id, e.target, e.destination, e.fingerprint, e.status, e.reason, e.location, e.attempts, "
    "e.updated_at, CASE WHEN s.fingerprint = e.fingerprint THEN s.signature ELSE '' END"
)
_UPSERT_SIGNATURE = (
    "INSERT INTO signatures VALUES (?,?,?,?) ON CONFLICT (job_id, target) DO UPDATE SET "
    "signature=excluded.signature, fingerprint=excluded.fingerprint"
)


def default_state_dir() -> Path:
    """``$EVALPORT_STATE_DIR``, else ``$XDG_STATE_HOME/evalport``, else ``~/.local/state/evalport``."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / "evalport"


class LedgerUnavailable(EvalportError):
    """The ledger file cannot be read (not a database, unreadable, locked). Exit code 1 in the CLI.

    Its message names the file and says to move it aside; the CLI prints it as it is.
    """


class SqliteLedger:
    """Thread- and process-safe enough for a CLI: short transactions, WAL, a busy timeout."""

    #: Seconds to wait for another process's write transaction before giving the ledger up.
    busy_timeout: float = 15.0

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_state_dir() / LEDGER_FILE
        self._ready = False
        self._broken = ""
        self._warnings: list[str] = []

    @property
    def available(self) -> bool:
        """False once the ledger failed in this process (it is then neither read nor written)."""
        return not self._broken

    def take_warnings(self) -> list[str]:
        """Warnings not yet handed out (each problem is reported once)."""
        out, self._warnings = self._warnings, []
        return out

    def _give_up(self, exc: BaseException, doing: str) -> None:
        if self._broken:
            return
        self._broken = f"{type(exc).__name__}: {exc}"
        message = (
            f"the export ledger {self.path} cannot be {doing} ({self._broken}); exporting without it "
            "(nothing is skipped as unchanged, nothing recorded). If the file is damaged, move it "
            "aside (mv it to a backup name) and export again; a new ledger is created"
        )
        log.info("%s", message)
        self._warnings.append(message)

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        keys = list(keys)
        if not keys or self._broken or not self.path.exists():
            return {}
        try:
            return self._lookup(keys)
        except (sqlite3.Error, OSError, TypeError, ValueError) as exc:
            self._give_up(exc, "read")
            return {}

    def _lookup(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        out: dict[tuple[str, str], LedgerEntry] = {}
        with closing(self._connect()) as conn:
            targets = sorted({t for _, t in keys})
            wanted = set(keys)
            marks = ",".join("?" * len(targets))
            query = (
                f"SELECT {_ENTRY_COLUMNS} FROM exports e LEFT JOIN signatures s "
                f"ON s.job_id = e.job_id AND s.target = e.target WHERE e.target IN ({marks})"
            )
            for row in conn.execute(query, targets):
                entry = LedgerEntry(*row)
                if (entry.job_id, entry.target) in wanted:
                    out[(entry.job_id, entry.target)] = entry
        return out

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Upserts the latest state of each (job, target) and appends one event each.

        Never raises for the ledger's own problems: they become a warning (see the module doc).
        """
        if not entries or self._broken:
            return
        try:
            self._record(entries)
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc, "written")

    def _record(self, entries: Sequence[LedgerEntry]) -> None:
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
                    if e.signature:
                        conn.execute(_UPSERT_SIGNATURE, (e.job_id, e.target, e.signature, e.fingerprint))
                    else:
                        conn.execute(
                            "DELETE FROM signatures WHERE job_id = ? AND target = ?", (e.job_id, e.target)
                        )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def remember_signatures(self, entries: Sequence[LedgerEntry]) -> None:
        """Stores each entry's ``signature`` beside its (already recorded) fingerprint; no event.
        Never raises for the ledger's own problems, like :meth:`record`."""
        rows = [(e.job_id, e.target, e.signature, e.fingerprint) for e in entries if e.signature]
        if not rows or self._broken:
            return
        try:
            with closing(self._connect()) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_UPSERT_SIGNATURE, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc, "written")

    def history(self, job_ids: Sequence[str] | None = None, limit: int = 200) -> list[dict[str, object]]:
        """Events of ``job_ids`` (every job when None), newest first; raises LedgerUnavailable when
        the file cannot be read."""
        if not self.path.exists() or (job_ids is not None and not job_ids):
            return []
        where, args = "", []
        if job_ids is not None:
            where = f"WHERE job_id IN ({','.join('?' * len(job_ids))}) "
            args = list(job_ids)
        rows = self._query(
            "SELECT at, job_id, destination, target, status, reason, location FROM events "
            f"{where}ORDER BY at DESC, rowid DESC LIMIT ?",
            [*args, limit],
        )
        keys = ("at", "job_id", "destination", "target", "status", "reason", "location")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def known_job_ids(self) -> list[str]:
        """Every job id with an event; raises LedgerUnavailable when the file cannot be read."""
        if not self.path.exists():
            return []
        return [str(row[0]) for row in self._query("SELECT DISTINCT job_id FROM events", [])]

    def _query(self, sql: str, args: Sequence[object]) -> list[tuple[object, ...]]:
        try:
            with closing(self._connect()) as conn:
                return conn.execute(sql, list(args)).fetchall()
        except (sqlite3.Error, OSError) as exc:
            import shlex

            aside = f"mv {shlex.quote(str(self.path))} {shlex.quote(str(self.path) + '.broken')}"
            raise LedgerUnavailable(
                f"the export ledger {self.path} cannot be read ({type(exc).__name__}: {exc}); if it is "
                f"damaged, move it aside ({aside}): the next export starts a new one"
            ) from None
