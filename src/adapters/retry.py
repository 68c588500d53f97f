"""Bounded retries for sinks that talk to servers (built on tenacity).

Every sink retries the same way: exponential backoff with jitter, a cap on attempts and on total
time, and only for errors a retry can fix (connection refused, timeouts, 429, 5xx). After that the
last error propagates and the sink turns it into a failed outcome. Sinks that talk to a server use
this through :mod:`evalport.adapters.sinks.remote`, which also stops retrying once the destination
is known to be down for the export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 8.0
    total_timeout: float = 60.0

    def call(
        self,
        fn: Callable[[], T],
        is_retryable: Callable[[BaseException], bool],
        give_up: Callable[[], bool] | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> T:
        """``fn()``, tried again on retryable errors.

        ``give_up()`` returning True ends the retries early; ``sleep`` replaces ``time.sleep``
        between attempts (an ``Event.wait`` lets another thread cut a wait short).
        """
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            stop_after_delay,
            stop_any,
            wait_exponential,
            wait_random,
        )

        stops: list[Any] = [stop_after_attempt(self.attempts), stop_after_delay(self.total_timeout)]
        if give_up is not None:
            stops.append(lambda _state: give_up())
        options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_any(*stops),
            wait=wait_exponential(multiplier=self.initial_wait, max=self.max_wait)
            + wait_random(0, self.initial_wait / 2),
            reraise=True,
            **options,
        )
        return retrying(fn)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by an exception from requests, gspread, mlflow or wandb, if any."""
    for attr in ("status_code", "code", "http_status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response: Any = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def is_transient(exc: BaseException) -> bool:
    """Connection problems, timeouts, 429 and 5xx: worth another try."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    status = status_of(exc)
    if status is not None:
        return status in RETRYABLE_STATUS
    name = type(exc).__name__
    return name in {
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "ChunkedEncodingError",
        "RemoteDisconnected",
        "ProtocolError",
        "MaxRetryError",
        "NewConnectionError",
    }
