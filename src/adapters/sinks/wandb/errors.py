"""W&B failures: which are worth another try, and how each reads in one line.

These are the W&B rules of what a shared remote layer does for every sink (transient or
permanent, a one-line summary, "the destination is down: the rest are not tried").
"""

from __future__ import annotations

from evalport.adapters.retry import is_transient
from evalport.adapters.sinks.wandb.credentials import LOGIN_HINT

# Words in a wrapped SDK error (``CommError``) that mean the server or the network, not the request.
TRANSIENT_WORDS = (
    "connection refused",
    "connection reset",
    "deadline exceeded",
    "timeout",
    "timed out",
    "temporarily",
    "unavailable",
    "bad gateway",
    "429",
    "500",
    "502",
    "503",
    "504",
    "eof",
)
MAX_SUMMARY = 300


class DestinationDown(Exception):
    """The server did not answer after every attempt; the rest of this export is not tried."""


class RunSkipped(Exception):
    """The run could not be opened for a reason that does not stop the other runs."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:MAX_SUMMARY]


def is_auth_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "401" in text or "403" in text or "permission" in text or "auth" in type(exc).__name__.lower()


def is_retryable(exc: BaseException) -> bool:
    """Connection problems, timeouts and 5xx/429, also when the SDK wraps them in a CommError."""
    if is_transient(exc):
        return True
    if type(exc).__name__ == "CommError":
        text = str(exc).lower()
        if "401" in text or "403" in text or "404" in text:
            return False
        return any(word in text for word in TRANSIENT_WORDS)
    return False


def open_failure(exc: BaseException, run_id: str, url: str, retries: int) -> str:
    """Why a run could not be opened, and what to do about it."""
    if is_retryable(exc):
        return (
            f"wandb: {url} did not answer after {retries} attempts ({one_line(exc)}); check "
            "WANDB_BASE_URL and the server, or export with mode=offline and `wandb sync` later"
        )
    if is_auth_error(exc):
        return f"wandb: {url} refused the credentials ({one_line(exc)}); {LOGIN_HINT}"
    return f"wandb: cannot open run {run_id} at {url}: {one_line(exc)}"


def not_tried(why: str) -> str:
    return f"not tried: {why}"
