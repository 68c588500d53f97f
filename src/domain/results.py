"""Turning the ``results`` tree of a nemo-evaluator results.yml into flat metrics.

Names follow the launcher's convention so existing dashboards keep working: ``<task>_<metric>``
when the score type equals the metric name, else ``<task>_<metric>_<score>``; nested groups prefix
their parent (``<group>_<subgroup>_...``); statistics become ``<flat name>_<stat>``. Statistics are
kept from both places results files put them (``scores.<s>.stats`` and ``metrics.<m>.stats``).
The same key with two different values is an error naming both values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from evalport.domain.errors import MetricConflictError, ResultError
from evalport.domain.model import Metric

_SECTIONS = ("tasks", "groups")


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


_NON_FINITE_WORDS = frozenset(
    {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"}
)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def as_number(value: Any, where: str) -> float:
    """A metric value as float; bools, None, non-numeric strings and numbers too large for a float
    (``10**400``, ``"1e400"``) are errors naming ``where``. ``inf``/``nan`` spelled as such are values."""
    if isinstance(value, bool) or value is None:
        raise ResultError(f"{where}: value {value!r} is not a number")
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ResultError(f"{where}: value {_shown(value)} is out of range for a number") from None
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number) or text.lower() in _NON_FINITE_WORDS:
                return number
            raise ResultError(f"{where}: value {_shown(value)} is out of range for a number")
    raise ResultError(f"{where}: value {_shown(value)} is not a number")


class _Collector:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.stats: dict[str, dict[str, float]] = {}
        self.order: list[str] = []

    def value(self, name: str, value: float) -> None:
        old = self.values.get(name)
        if old is None:
            self.values[name] = value
            self.order.append(name)
        elif not _same(old, value):
            raise MetricConflictError(name, old, value)

    def stat(self, name: str, stat: str, value: float) -> None:
        bucket = self.stats.setdefault(name, {})
        old = bucket.get(stat)
        if old is None:
            bucket[stat] = value
        elif not _same(old, value):
            raise MetricConflictError(f"{name}_{stat}", old, value)

    def metrics(self) -> list[Metric]:
        out = [Metric(n, self.values[n], self.stats.get(n, {})) for n in self.order]
        for name, stats in self.stats.items():
            if name not in self.values:
                out.extend(Metric(f"{name}_{s}", v) for s, v in stats.items())
        seen: dict[str, float] = {}
        for metric in out:
            for key, value in metric.flat().items():
                old = seen.setdefault(key, value)
                if old is not value and not _same(old, value):
                    raise MetricConflictError(key, old, value)
        return out


def _numeric_stats(stats: Any, where: str) -> dict[str, float]:
    """The numeric statistics (others, such as a text note, are ignored); an out-of-range one is an error."""
    if not isinstance(stats, Mapping):
        return {}
    out = {}
    for k, v in stats.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[str(k)] = as_number(v, f"{where}.stats.{k}")
    return out


def _walk(prefix: str, entry: Any, where: str, sink: _Collector) -> None:
    if not isinstance(entry, Mapping):
        raise ResultError(f"{where}: expected a mapping with 'metrics', got {type(entry).__name__}")
    metrics = entry.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise ResultError(f"{where}.metrics: expected a mapping, got {type(metrics).__name__}")
    for metric_name, metric in metrics.items():
        m_where = f"{where}.metrics.{metric_name}"
        if not isinstance(metric, Mapping):
            raise ResultError(f"{m_where}: expected a mapping with 'scores'")
        base = f"{prefix}_{metric_name}"
        scores = metric.get("scores") or {}
        if not isinstance(scores, Mapping):
            raise ResultError(f"{m_where}.scores: expected a mapping")
        # A statistic given for the whole metric belongs to each of its scores (the launcher's
        # names: <task>_<metric>_<score>_<stat>); a score's own statistic wins over it.
        metric_stats = _numeric_stats(metric.get("stats"), m_where)
        for score_name, score in scores.items():
            s_where = f"{m_where}.scores.{score_name}"
            if not isinstance(score, Mapping) or "value" not in score:
                raise ResultError(f"{s_where}: expected a mapping with 'value'")
            name = base if score_name == metric_name else f"{base}_{score_name}"
            sink.value(name, as_number(score["value"], f"{s_where}.value"))
            for stat, v in {**metric_stats, **_numeric_stats(score.get("stats"), s_where)}.items():
                sink.stat(name, stat, v)
        if not scores:
            for stat, v in metric_stats.items():
                sink.stat(base, stat, v)
    groups = entry.get("groups") or {}
    if not isinstance(groups, Mapping):
        raise ResultError(f"{where}.groups: expected a mapping")
    for sub, sub_entry in groups.items():
        _walk(f"{prefix}_{sub}", sub_entry, f"{where}.groups.{sub}", sink)


def flatten_results(results: Any) -> list[Metric]:
    """The metrics of a results.yml ``results`` block, flat and conflict-checked."""
    if not isinstance(results, Mapping):
        raise ResultError("'results' is missing or not a mapping; is this a nemo-evaluator results.yml?")
    if not any(isinstance(results.get(s), Mapping) for s in _SECTIONS):
        raise ResultError("'results' holds neither 'tasks' nor 'groups'; no metrics to export")
    sink = _Collector()
    for section in _SECTIONS:
        block = results.get(section) or {}
        if not isinstance(block, Mapping):
            raise ResultError(f"results.{section}: expected a mapping")
        for name, entry in block.items():
            _walk(str(name), entry, f"results.{section}.{name}", sink)
    return sink.metrics()
