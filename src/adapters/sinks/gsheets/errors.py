"""Sheets API failures: which are worth another try, and how each reads for a person.

The Sheets rules plugged into the shared remote layer (:mod:`evalport.adapters.sinks.remote`):
the HTTP status settles an error (429 and 5xx are transient); creating is retried only when Google
surely did nothing; :func:`explain` words a final failure in Google's terms, with a hint per status.
"""

from __future__ import annotations

from evalport.adapters.retry import RETRYABLE_STATUS, status_of
from evalport.adapters.sinks.remote import CallFailed, ErrorRules, one_line


class SheetsError(Exception):
    """A destination problem, already phrased for a person (no credentials in it)."""


def google_message(exc: BaseException) -> str:
    """Google's words for an error (``429 RESOURCE_EXHAUSTED: Quota exceeded ...``); no credentials."""
    error = getattr(exc, "error", None)
    if isinstance(error, dict) and error.get("message"):
        code, status = error.get("code"), error.get("status") or ""
        if code == -1:  # not Google's JSON: a proxy or load balancer answered
            code = http_status(exc)
            status = "(not a Google API response)"
        return f"{code} {status}: {one_line(str(error['message']))}".replace(" :", ":")
    return one_line(exc)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status; gspread reports ``code -1`` when the body is not Google's JSON (a proxy's 502)."""
    status = status_of(exc)
    if status is not None and status < 0:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status


def _by_status(exc: BaseException) -> bool | None:
    status = http_status(exc)
    return status in RETRYABLE_STATUS if status is not None else None


def _nothing_happened(exc: BaseException) -> bool:
    status = http_status(exc)
    if status is not None:
        return status == 429
    return type(exc).__name__ in {"ConnectionError", "NewConnectionError"}


#: 429, 5xx and connection problems.
SHEETS_RULES = ErrorRules(decide=_by_status)
#: Creating is not idempotent: retried only when Google surely did nothing (429, a refused connection).
CREATE_RULES = ErrorRules(decide=_nothing_happened)


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx and connection problems (see :func:`evalport.adapters.retry.is_transient`)."""
    return SHEETS_RULES.is_transient(exc)


def retry_create(exc: BaseException) -> bool:
    """Whether a create call may be tried again (Google surely did nothing)."""
    return CREATE_RULES.is_transient(exc)


def explain(failure: CallFailed, endpoint: str) -> str:
    """One line for a person: what failed, Google's words, and what to do (no credentials)."""
    from google.auth.exceptions import GoogleAuthError

    what, exc, tries = failure.what, failure.error, failure.attempts
    after = f" (gave up after {tries} attempts in {failure.elapsed:.1f}s)" if tries > 1 else ""
    status = http_status(exc)
    if isinstance(exc, GoogleAuthError):
        return (
            f"could not obtain a Google access token while {what}: {google_message(exc)}; "
            "check the credentials file and that its service account still exists"
        )
    if status is None:
        return (
            f"cannot reach the Google Sheets API at {endpoint} while {what}: "
            f"{type(exc).__name__}{after}; check the network or the endpoint option"
        )
    hint = {
        401: "the credentials were refused; create a new key for the service account",
        403: "share the spreadsheet with the service account's e-mail as Editor",
        404: "check spreadsheet_id (the long id in the spreadsheet's URL) and that it is shared "
        "with the service account",
        429: "the Sheets quota is exhausted; export again in a minute or export fewer jobs at once",
    }.get(status, "try again later" if status >= 500 else "check the gsheets options")
    return f"Google Sheets refused {what} ({google_message(exc)}){after}; {hint}"
