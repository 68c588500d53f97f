"""MetricFilter: which metrics go out (``log_metrics``)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from evalport.domain.errors import ConfigError
from evalport.domain.model import Metric, TaskResult

Matcher = Callable[[str], bool]
_GLOB_CHARS = frozenset("*?[")


def _compile(pattern: str) -> Matcher:
    """One pattern to a predicate.

    ``re:<regex>`` is a regular expression (searched, case-sensitive as written); a pattern with
    ``*``, ``?`` or ``[`` is a case-insensitive glob over the whole name; anything else is a
    case-insensitive substring, the reference launcher's rule.
    """
    if pattern.startswith("re:"):
        try:
            rx = re.compile(pattern[3:])
        except re.error as exc:
            raise ConfigError(f"log_metrics: {pattern!r} is not a valid regular expression: {exc}") from exc
        return lambda name: rx.search(name) is not None
    if _GLOB_CHARS & set(pattern):
        rx = re.compile(fnmatch.translate(pattern.lower()))
        return lambda name: rx.match(name.lower()) is not None
    needle = pattern.lower()
    return lambda name: needle in name.lower()


@dataclass(frozen=True)
class MetricFilter:
    """Include patterns (any may match; none means all) minus ``!`` exclusions (none may match)."""

    patterns: tuple[str, ...] = ()
    _include: tuple[Matcher, ...] = field(default=(), init=False, repr=False, compare=False)
    _exclude: tuple[Matcher, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        include, exclude = [], []
        for raw in self.patterns:
            if not isinstance(raw, str) or not raw.strip():
                raise ConfigError(f"log_metrics: {raw!r} is not a pattern; give a non-empty string")
            pattern = raw.strip()
            if pattern.startswith("!"):
                if len(pattern) == 1:
                    raise ConfigError("log_metrics: '!' needs a pattern after it, e.g. '!stderr'")
                exclude.append(_compile(pattern[1:]))
            else:
                include.append(_compile(pattern))
        object.__setattr__(self, "_include", tuple(include))
        object.__setattr__(self, "_exclude", tuple(exclude))

    @classmethod
    def of(cls, patterns: str | Sequence[str] | None) -> MetricFilter:
        if patterns is None:
            return cls()
        if isinstance(patterns, str):
            patterns = [p for p in patterns.split(",") if p.strip()]
        return cls(tuple(patterns))

    @property
    def includes_all(self) -> bool:
        return not self.patterns

    def allows(self, name: str) -> bool:
        if self._include and not any(m(name) for m in self._include):
            return False
        return not any(m(name) for m in self._exclude)

    def apply(self, metrics: Iterable[Metric]) -> list[Metric]:
        """Filters by flat name: a metric's value by its name, each statistic by ``<name>_<stat>``.

        A statistic that passes while its metric does not becomes a metric of its own, so the
        result's flat names are exactly the allowed subset of the input's.
        """
        if self.includes_all:
            return list(metrics)
        out: list[Metric] = []
        for m in metrics:
            stats = {s: v for s, v in m.stats.items() if self.allows(f"{m.name}_{s}")}
            if self.allows(m.name):
                out.append(m if len(stats) == len(m.stats) else Metric(m.name, m.value, stats))
            else:
                out.extend(Metric(f"{m.name}_{s}", v) for s, v in stats.items())
        return out

    def apply_to(self, result: TaskResult) -> TaskResult:
        return result if self.includes_all else result.with_metrics(self.apply(result.metrics))
