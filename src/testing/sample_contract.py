"""The sample behaviours of :class:`~evalport.testing.sink_contract.SinkContract` (issue 18), run
for a sink whose capabilities say ``samples``; kept here so that the contract stays readable.

The sink's test class provides ``read_samples`` (``(sink, result) -> list[StoredSample]``, every
sample row the destination holds for that job); :attr:`SampleBehaviours.sample_mode` picks the
``samples`` option (default: the config's first mode that is not ``none``). ``export`` and the
``results`` fixture come from SinkContract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from evalport.domain.model import TaskResult
from evalport.domain.ports import ResultSink
from evalport.domain.report import Outcome, Status
from evalport.domain.samples import Sample

SECRET = "nvapi-very-secret"
#: A bearer token planted in sample outputs (masked by shape after ``Bearer``).
SAMPLE_TOKEN = "tok9f8e7d6c5b4a3928"


@dataclass
class StoredSample:
    """One sample row a destination holds, as the adapter's ``read_samples`` fixture found it:
    its id, its scores and all its text cells (input, target, output, metadata) joined."""

    sample_id: str
    scores: dict[str, Any] = field(default_factory=dict)
    text: str = ""


def planted_samples(count: int = 5, *, long_output: int = 50_000) -> Callable[[], Any]:
    """A ``TaskResult.samples`` accessor: ``count`` samples scored ``acc`` and ``exact_match``, with a
    secret in an input (``--api-key``), an output (``Bearer``) and metadata (``api_key``), and one
    output ``long_output`` characters long."""

    def stream() -> Any:
        for i in range(count):
            text = f"Question {i}: what is {i} + {i}?"
            if i == 0:
                text += f" (called with --api-key {SECRET})"
            output = "x" * long_output if i == 3 else f"The answer is {2 * i if i % 2 == 0 else -1}"
            if i == 1:
                output += f"; Authorization: Bearer {SAMPLE_TOKEN}"
            metadata: dict[str, Any] = {"doc": {"n": i}}
            if i == 2:
                metadata["api_key"] = SECRET
            scores = {"acc": float(i % 2 == 0), "exact_match": float(i % 2 == 0)}
            yield Sample(
                id=f"s{i}", input=text, target=str(2 * i), output=output, scores=scores, metadata=metadata
            )

    return stream


class SampleBehaviours:
    """Inherited by SinkContract; every test skips unless the sink stores samples."""

    #: SinkContract's: exports ``results`` through ``sink`` as a user's export would.
    export: Callable[[ResultSink, Sequence[tuple[TaskResult, Path]]], list[Outcome]]

    @pytest.fixture
    def read_samples(self) -> Callable[[ResultSink, TaskResult], list[StoredSample]]:
        """Asked for by the sample behaviours, which skip first unless the sink stores samples."""

        def missing(sink: ResultSink, result: TaskResult) -> list[StoredSample]:
            raise NotImplementedError("provide a read_samples fixture: (sink, result) -> list[StoredSample]")

        return missing

    #: The ``samples`` mode the sample behaviours use (None: the config's first one that is not 'none').
    sample_mode: str | None = None

    def samples_on(self, make_sink) -> dict[str, Any]:
        sink_cls = type(make_sink())
        if not sink_cls.capabilities.samples:
            pytest.skip(f"{sink_cls.name} stores no samples")
        modes = [m for m in getattr(sink_cls.Config, "sample_modes", ()) if m != "none"]
        mode = self.sample_mode or (modes[0] if modes else None)
        assert mode, f"{sink_cls.name} says it stores samples but its config has no samples mode"
        return {"samples": mode}

    @pytest.fixture
    def sampled(self, results) -> list[tuple[TaskResult, Path]]:
        """The shared results, each with five planted samples (see :func:`planted_samples`)."""
        return [(replace(r, samples=planted_samples()), d) for r, d in results]

    def test_samples_are_stored_once_each_with_their_scores(self, make_sink, read_samples, sampled):
        sink = make_sink(**self.samples_on(make_sink))
        outcomes = self.export(sink, sampled[:2])
        assert {o.status for o in outcomes} == {Status.EXPORTED}, outcomes
        for result, _ in sampled[:2]:
            stored = {s.sample_id: s for s in read_samples(sink, result)}
            expected = {s.id: s for s in result.samples()}
            assert sorted(stored) == sorted(expected)
            for sample_id, sample in expected.items():
                assert stored[sample_id].scores == pytest.approx(dict(sample.scores)), sample_id
                assert f"Question {sample_id[1:]}:" in stored[sample_id].text

    def test_a_job_without_samples_stores_none_and_still_exports(self, make_sink, read_samples, results):
        sink = make_sink(**self.samples_on(make_sink))
        outcome = self.export(sink, results[:1])[0]
        assert outcome.status is Status.EXPORTED, outcome
        assert read_samples(sink, results[0][0]) == []

    def test_samples_are_off_when_the_option_says_none(self, make_sink, read_samples, sampled):
        self.samples_on(make_sink)
        sink = make_sink(samples="none")
        self.export(sink, sampled[:1])
        assert read_samples(sink, sampled[0][0]) == []

    def test_a_re_export_replaces_the_samples_without_duplicates_or_stale_rows(
        self, make_sink, read_samples, sampled
    ):
        options = self.samples_on(make_sink)
        result, directory = sampled[0]
        self.export(make_sink(**options), [(result, directory)])
        self.export(make_sink(**options), [(result, directory)])
        sink = make_sink(**options)
        ids = [s.sample_id for s in read_samples(sink, result)]
        assert sorted(ids) == ["s0", "s1", "s2", "s3", "s4"], ids
        fewer = replace(result, samples=planted_samples(3))
        self.export(sink, [(fewer, directory)])
        ids = [s.sample_id for s in read_samples(sink, fewer)]
        assert sorted(ids) == ["s0", "s1", "s2"], ids

    def test_the_metric_filter_applies_to_sample_scores(self, make_sink, read_samples, sampled):
        sink = make_sink(**self.samples_on(make_sink), log_metrics=["!exact_match"])
        self.export(sink, sampled[:1])
        stored = read_samples(sink, sampled[0][0])
        assert len(stored) == 5
        for sample in stored:
            assert set(sample.scores) == {"acc"}, sample

    def test_max_samples_and_max_sample_chars_cut_with_a_note(self, make_sink, read_samples, sampled):
        sink = make_sink(**self.samples_on(make_sink), max_samples=4, max_sample_chars=200)
        outcome = self.export(sink, sampled[:1])[0]
        assert outcome.status is Status.EXPORTED, outcome
        stored = read_samples(sink, sampled[0][0])
        assert sorted(s.sample_id for s in stored) == ["s0", "s1", "s2", "s3"]
        long_one = next(s for s in stored if s.sample_id == "s3")
        assert "x" * 200 in long_one.text and "x" * 201 not in long_one.text
        assert "max_samples" in outcome.reason and "max_sample_chars" in outcome.reason, outcome

    def test_secrets_in_sample_text_never_reach_the_destination(self, make_sink, read_samples, sampled):
        sink = make_sink(**self.samples_on(make_sink))
        self.export(sink, sampled[:1])
        stored = read_samples(sink, sampled[0][0])
        text = "\n".join(s.text for s in stored)
        assert "Question 0:" in text
        assert SECRET not in text and SAMPLE_TOKEN not in text
