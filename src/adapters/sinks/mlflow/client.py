"""Where an MLflow sink writes (the tracking store) and the client it writes with.

mlflow is imported only when a client is opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalport.adapters.sinks.mlflow.locks import held, store_lock_path
from evalport.domain.redact import redact_text

log = logging.getLogger("evalport.sinks.mlflow")

DEFAULT_DB = "mlflow.db"


@dataclass(frozen=True)
class TrackingStore:
    """A tracking URI and what follows from it: a sqlite file, a server, how to view it."""

    uri: str

    @classmethod
    def resolve(cls, configured: str | None) -> TrackingStore:
        """The configured URI, else ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db`` (sqlite)."""
        uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
        return cls(uri or f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve().as_posix()}")

    @property
    def is_http(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    @property
    def shown(self) -> str:
        """The URI as printed and reported (credentials masked)."""
        return redact_text(self.uri)

    @property
    def sqlite_path(self) -> Path | None:
        if not self.uri.startswith("sqlite:///"):
            return None
        raw = self.uri[len("sqlite:///") :].split("?", 1)[0]
        return Path(raw) if raw and raw != ":memory:" else None

    def describe(self, experiment: str) -> str:
        """Where results went and how to look at them (printed by the CLI after an export)."""
        uri = self.shown
        exp = f"experiment {experiment!r}"
        if self.uri.startswith("sqlite:"):
            # Quoted for a POSIX shell: a path with spaces or ``$(...)`` pastes as one safe word.
            return f"{uri}, {exp} (view: mlflow ui --backend-store-uri {shlex.quote(uri)})"
        if self.is_http:
            return f"{uri}, {exp} (open {uri.rstrip('/')} in a browser)"
        return f"{uri}, {exp}"

    def location(self, run_id: str) -> str:
        """Where a run is, as outcomes report it (and ``still_holds`` reads it back)."""
        if self.is_http:
            return f"{self.shown.rstrip('/')}/#/experiments/-/runs/{run_id}"
        return f"runs:/{run_id}"

    def open_client(self) -> Any:
        """A client; opening a sqlite store (which creates it on first use) holds the store's lock."""
        from mlflow import MlflowClient

        db = self.sqlite_path
        if db is None:
            return MlflowClient(tracking_uri=self.uri)
        with held(store_lock_path(db)):
            if not db.exists():
                _forget_engine(self.uri)
            if not db.exists() or db.stat().st_size == 0:
                announce_store_creation(db)
            return MlflowClient(tracking_uri=self.uri)


def announce_store_creation(db: Path) -> None:
    """One line on stderr while MLflow builds a new sqlite store's schema (seconds, silent otherwise)."""
    print(
        f"evalport: creating the MLflow store {db} (first use, takes a few seconds)",
        file=sys.stderr,
        flush=True,
    )


def _forget_engine(uri: str) -> None:
    """Drops what MLflow cached for a sqlite store whose file is gone (private MLflow state).

    MLflow keeps one store object and one SQLAlchemy engine per store URI for the life of the
    process; after the file was deleted they go on using the deleted file (or a new empty one
    without tables), so a second export in the same process (the Python API, a test) would find
    runs that no longer exist. Without those caches the next client creates the store afresh.
    """
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.tracking._tracking_service import utils

        engines = getattr(SqlAlchemyStore, "_engine_map", None)
        engine = engines.pop(uri, None) if isinstance(engines, dict) else None
        if engine is not None:
            engine.dispose()
        cached = getattr(type(utils._tracking_store_registry), "_get_store_with_resolved_uri", None)
        cache_clear = getattr(cached, "cache_clear", None)
        if callable(cache_clear):
            cache_clear()
    except Exception:  # another MLflow version: a new process still sees the new store
        log.debug("mlflow: cannot drop the cached store of %s", uri, exc_info=True)


# ---- MLflow's own HTTP client: no hidden retries, a short timeout (our retries retry) ----------
_ENV_LOCK = threading.Lock()
_ENV_USERS = 0
_ENV_SET: dict[str, str] = {}


@contextlib.contextmanager
def mlflow_http_settings(timeout: int, max_retries: int = 0) -> Iterator[None]:
    """Sets ``MLFLOW_HTTP_REQUEST_TIMEOUT``/``_MAX_RETRIES`` (and quiets stdout) unless the user set them.

    MLflow reads them on every request; its defaults (7 retries, 120 s) make a dead server take
    minutes to report. Nested or concurrent blocks share one setting and restore it at the end.
    """
    global _ENV_USERS
    wanted = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
        # set_terminated would print "View run ... at ..." for every run to stdout.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    with _ENV_LOCK:
        if _ENV_USERS == 0:
            for name, value in wanted.items():
                if name not in os.environ:
                    os.environ[name] = value
                    _ENV_SET[name] = value
        _ENV_USERS += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_USERS -= 1
            if _ENV_USERS == 0:
                for name, value in _ENV_SET.items():
                    if os.environ.get(name) == value:
                        del os.environ[name]
                _ENV_SET.clear()
