"""Errors the domain and its ports raise. Every message says what is wrong and what to do."""

from __future__ import annotations

from collections.abc import Sequence


class EvalportError(Exception):
    """Base class of every error evalport raises on purpose."""


class UsageError(EvalportError):
    """The caller asked for something that cannot work (exit code 2)."""


class ConfigError(UsageError):
    """A configuration value or key is invalid."""


class UnknownIdError(UsageError):
    def __init__(self, ident: str, hint: str = "") -> None:
        self.ident = ident
        msg = f"no invocation or job matches {ident!r}"
        super().__init__(f"{msg}; {hint}" if hint else f"{msg}; run `evalport ls` to see the known ids")


class AmbiguousIdError(UsageError):
    def __init__(self, ident: str, candidates: Sequence[str]) -> None:
        self.ident = ident
        self.candidates = sorted(candidates)
        shown = ", ".join(self.candidates[:10]) + (" ..." if len(self.candidates) > 10 else "")
        super().__init__(f"id prefix {ident!r} is ambiguous: it matches {shown}; type more characters")


class ResultError(EvalportError):
    """A job's result files cannot be read or make no sense. Names the job and the file."""

    def __init__(self, message: str, *, job_id: str | None = None, path: object | None = None) -> None:
        self.job_id = job_id
        self.path = path
        parts = []
        if job_id:
            parts.append(f"job {job_id}")
        if path is not None:
            parts.append(str(path))
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class MetricConflictError(ResultError):
    def __init__(self, key: str, first: float, second: float) -> None:
        self.key = key
        self.values = (first, second)
        super().__init__(
            f"metric {key!r} appears twice with different values ({first!r} and {second!r}); "
            "fix the results file or filter one of them out"
        )
