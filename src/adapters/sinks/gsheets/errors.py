"""Sheets API failures: which are worth another try, and how each reads in one line.

These are the Sheets rules of what a shared remote layer does for every sink: transient or
permanent (429, 5xx, connection problems), a one-line summary in Google's words, and a hint.
"""

from __future__ import annotations

from evalport.adapters.retry import RETRYABLE_STATUS, is_transient, status_of

MAX_SUMMARY = 300


class SheetsError(Exception):
    """A destination problem, already phrased for a person (no credentials in it)."""


def one_line(text: str) -> str:
    """Whitespace collapsed, cut to a few hundred characters."""
    text = " ".join(text.split())
    return text if len(text) < MAX_SUMMARY else text[: MAX_SUMMARY - 3] + "..."


def google_message(exc: BaseException) -> str:
    """Google's words for an error (``429 RESOURCE_EXHAUSTED: Quota exceeded ...``); no credentials."""
    error = getattr(exc, "error", None)
    if isinstance(error, dict) and error.get("message"):
        code, status = error.get("code"), error.get("status") or ""
        if code == -1:  # not Google's JSON: a proxy or load balancer answered
            code = http_status(exc)
            status = "(not a Google API response)"
        return f"{code} {status}: {one_line(str(error['message']))}".replace(" :", ":")
    return one_line(str(exc) or type(exc).__name__)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status; gspread reports ``code -1`` when the body is not Google's JSON (a proxy's 502)."""
    status = status_of(exc)
    if status is not None and status < 0:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx and connection problems (see :func:`evalport.adapters.retry.is_transient`)."""
    status = http_status(exc)
    return status in RETRYABLE_STATUS if status is not None else is_transient(exc)


def retry_create(exc: BaseException) -> bool:
    """Creating is not idempotent: retry only when Google surely did nothing (429, refused connection)."""
    status = http_status(exc)
    return (
        status == 429
        if status is not None
        else type(exc).__name__ in {"ConnectionError", "NewConnectionError"}
    )


def explain(what: str, exc: BaseException, tries: int, seconds: float, endpoint: str) -> str:
    """One line for a person: what failed, Google's words, and what to do (no credentials)."""
    from google.auth.exceptions import GoogleAuthError

    after = f" (gave up after {tries} attempts in {seconds:.1f}s)" if tries > 1 else ""
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


def not_tried(why: str) -> str:
    return f"not tried: {why}"
