"""Per-sample records made ready for a destination: flat, masked, capped, filtered, streamed.

A sink that stores samples never touches :class:`~evalport.domain.samples.Sample` itself: it asks
:func:`sample_rows` for a :class:`SampleStream`, which reads ``result.samples()`` one record at a
time and yields :class:`SampleRow` values whose text cells are secret-masked (the project's text
rules, :mod:`evalport.domain.secret_text`) and cut to ``max_chars``, whose scores passed the sink's
metric filter, and stops after ``max_samples``. Once exhausted, :attr:`SampleStream.notes` says
what was cut or masked, for the export report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from evalport.domain.filters import MetricFilter
from evalport.domain.model import TaskResult
from evalport.domain.secret_text import redact_text

#: How a sink stores samples: not at all, or in one of its own shapes (``parquet`` for local,
#: ``table``/``traces`` for MLflow, ``table`` for W&B).
SampleMode = str
NO_SAMPLES: SampleMode = "none"
#: Appended to a text cell cut at ``max_chars`` (the row's ``truncated`` says so too).
CUT_MARK = "…"
DEFAULT_MAX_CHARS = 10_000
#: Inspect's letter scores, as numbers (its own ``value_to_float``): correct, incorrect, partial, no answer.
_LETTER_SCORES: Mapping[str, float] = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}

ScoreValue = float | str | None


@dataclass(frozen=True, slots=True)
class SampleOptions:
    """What a sink asked for: ``mode`` (``none`` stores nothing), at most ``max_samples`` rows per
    job (None: all) and at most ``max_chars`` characters per text cell (None: no cap)."""

    mode: SampleMode = NO_SAMPLES
    max_samples: int | None = None
    max_chars: int | None = DEFAULT_MAX_CHARS

    @property
    def enabled(self) -> bool:
        return self.mode != NO_SAMPLES


@dataclass(slots=True)
class SampleRow:
    """One sample as every sink stores it. Text cells are masked and capped; ``input``, ``target``
    and ``output`` are the harness's value as text (JSON when it was not a string: chat messages,
    a list of responses); ``metadata`` is JSON text (not valid JSON when ``truncated`` cut it).
    Not frozen: a hundred thousand rows are made per export, and a frozen init costs 3x."""

    job_id: str
    invocation_id: str
    model: str
    task: str
    harness: str
    sample_id: str
    input: str
    target: str
    output: str
    scores: dict[str, ScoreValue]
    metadata: str
    #: A text cell of this row was cut at ``max_chars``.
    truncated: bool = False

    @property
    def score(self) -> float | None:
        """The row's headline: its first score that is a number (Inspect's C/I/P/N read as numbers)."""
        return headline_score(self.scores)


def headline_score(scores: Mapping[str, ScoreValue]) -> float | None:
    for value in scores.values():
        if isinstance(value, float):
            return value
        if isinstance(value, str) and value in _LETTER_SCORES:
            return _LETTER_SCORES[value]
    return None


# One encoder for every cell: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None:
        return ""
    else:
        text = _encode(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON \\ud800 escape: not storable as UTF-8
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _score(value: Any) -> ScoreValue:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return _as_text(value)


class SampleStream:
    """An iterator of :class:`SampleRow`; after it is exhausted, :attr:`notes` and the counters say
    what was left out (rows beyond ``max_samples``), cut (cells over ``max_chars``) and masked."""

    def __init__(self, result: TaskResult, options: SampleOptions, metric_filter: MetricFilter) -> None:
        self.result = result
        self.options = options
        self.metric_filter = metric_filter
        self.rows = 0
        #: True when the source had more samples than ``max_samples``.
        self.cut_rows = False
        self.truncated_cells = 0
        self.masked_cells = 0
        self.dropped_scores: set[str] = set()
        self._kept_scores: dict[str, bool] = {}
        # A score is kept when its flat name (``<task>_<score>``) or its own name passes the filter and
        # neither hits an exclusion: ``acc`` and ``gsm8k_acc`` both select it, ``!gsm8k_f1`` drops f1.
        self._exclusions = MetricFilter(tuple(p for p in metric_filter.patterns if p.strip().startswith("!")))
        self._iterator: Iterator[SampleRow] | None = None

    def __iter__(self) -> Iterator[SampleRow]:
        if self._iterator is None:
            self._iterator = self._rows()
        return self._iterator

    def __next__(self) -> SampleRow:
        return next(iter(self))

    def _allowed(self, name: str) -> bool:
        kept = self._kept_scores.get(name)
        if kept is None:
            names = (f"{self.result.task}_{name}", name)
            kept = any(map(self.metric_filter.allows, names)) and all(map(self._exclusions.allows, names))
            if not kept:
                self.dropped_scores.add(name)
            self._kept_scores[name] = kept
        return kept

    def _masked(self, cells: list[str]) -> list[str]:
        """``cells`` with secrets masked. Most rows hold none: one pass over all of them joined
        says so (each cell starts a line there, as it does alone), and only then is each masked."""
        joined = "\n".join(cells)
        if redact_text(joined) == joined:
            return cells
        out = []
        for cell in cells:
            masked = redact_text(cell)
            if masked != cell:
                self.masked_cells += 1
            out.append(masked)
        return out

    def _rows(self) -> Iterator[SampleRow]:
        result, limit, cap = self.result, self.options.max_samples, self.options.max_chars
        if result.samples is None or not self.options.enabled:
            return
        job_id, invocation_id, model, task, harness = (
            result.job_id,
            result.invocation_id,
            result.model_id,
            result.task,
            result.harness,
        )
        allowed, keep_all = self._allowed, self.metric_filter.includes_all
        for sample in result.samples():
            if limit is not None and self.rows >= limit:
                self.cut_rows = True
                break
            scores = {
                k if type(k) is str else str(k): v if type(v) is float else _score(v)
                for k, v in sample.scores.items()
                if keep_all or allowed(str(k))
            }
            labels = [name for name, value in scores.items() if isinstance(value, str)]
            metadata = sample.metadata
            cells = [
                _as_text(sample.input),
                _as_text(sample.target),
                _as_text(sample.output),
                _as_text(metadata if isinstance(metadata, dict) else dict(metadata)) if metadata else "",
                _as_text(sample.id),
                *(str(scores[name]) for name in labels),
            ]
            cells = self._masked(cells)
            for name, value in zip(labels, cells[5:], strict=True):
                scores[name] = value
            truncated = False
            if cap is not None:
                for i in range(4):
                    if len(cells[i]) > cap:
                        cells[i] = cells[i][:cap] + CUT_MARK
                        self.truncated_cells += 1
                        truncated = True
            self.rows += 1
            yield SampleRow(
                job_id=job_id,
                invocation_id=invocation_id,
                model=model,
                task=task,
                harness=harness,
                sample_id=cells[4],
                input=cells[0],
                target=cells[1],
                output=cells[2],
                scores=scores,
                metadata=cells[3],
                truncated=truncated,
            )

    @property
    def notes(self) -> tuple[str, ...]:
        """What a person should know about the rows sent (empty when nothing was cut or masked)."""
        out = []
        if self.cut_rows:
            out.append(
                f"samples: only the first {self.rows:,} were kept (max_samples); the rest were left out"
            )
        if self.truncated_cells:
            out.append(
                f"samples: {self.truncated_cells:,} text cells were cut to {self.options.max_chars:,} "
                "characters (max_sample_chars)"
            )
        if self.masked_cells:
            out.append(f"samples: secrets were masked in {self.masked_cells:,} cells")
        return tuple(out)


def sample_rows(result: TaskResult, options: SampleOptions, metric_filter: MetricFilter) -> SampleStream:
    """The job's samples as rows, streamed from ``result.samples()`` (nothing when it has none or
    ``options.mode`` is ``none``)."""
    return SampleStream(result, options, metric_filter)


def has_samples(result: TaskResult, options: SampleOptions) -> bool:
    """Whether a sink with ``options`` has samples of this job to store."""
    return options.enabled and result.samples is not None


def finite_or_none(value: float | None) -> float | None:
    """NaN and infinities as None, for destinations that cannot hold them."""
    return value if value is not None and math.isfinite(value) else None


__all__ = [
    "CUT_MARK",
    "DEFAULT_MAX_CHARS",
    "NO_SAMPLES",
    "SampleMode",
    "SampleOptions",
    "SampleRow",
    "SampleStream",
    "finite_or_none",
    "has_samples",
    "headline_score",
    "sample_rows",
]
