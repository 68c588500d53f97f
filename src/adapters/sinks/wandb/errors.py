"""W&B failures: which are worth another try, and how a run that could not be opened is reported.

The W&B rules plugged into the shared remote layer (:mod:`evalport.adapters.sinks.remote`): the
SDK wraps wire problems in a ``CommError`` whose text alone tells them from a refused request.
"""

from __future__ import annotations

from evalport.adapters.sinks.remote import CallFailed, ErrorRules
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


def _comm_error(exc: BaseException) -> bool | None:
    """A ``CommError`` is settled by its text (401/403/404, or the wire); others by the common rules."""
    if type(exc).__name__ != "CommError":
        return None
    text = str(exc).lower()
    if "401" in text or "403" in text or "404" in text:
        return False
    return True if any(word in text for word in TRANSIENT_WORDS) else None


WANDB_RULES = ErrorRules(decide=_comm_error)


def is_auth_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "401" in text or "403" in text or "permission" in text or "auth" in type(exc).__name__.lower()


def open_failure(failure: CallFailed, url: str) -> str:
    """Why a call (``failure.what``: "open run <id>") failed, and what to do about it."""
    if failure.transient:
        return (
            f"wandb: {url} did not answer after {failure.attempts} attempts ({failure.summary}); check "
            "WANDB_BASE_URL and the server, or export with mode=offline and `wandb sync` later"
        )
    if is_auth_error(failure.error):
        return f"wandb: {url} refused the credentials ({failure.summary}); {LOGIN_HINT}"
    return f"wandb: cannot {failure.what} at {url}: {failure.summary}"
