"""sample_rows: samples as flat rows, masked, capped, filtered and streamed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from evalport.adapters.sinks.base import SampleSinkConfig
from evalport.domain.filters import MetricFilter
from evalport.domain.model import TaskResult
from evalport.domain.sample_rows import CUT_MARK, SampleOptions, headline_score, sample_rows
from evalport.domain.samples import Sample

ON = SampleOptions(mode="parquet")


def _result(samples) -> TaskResult:
    return TaskResult(
        "inv1.0", "inv1", "gsm8k", "lm-evaluation-harness", "acme/m", "local", (), samples=samples
    )


def _samples(n: int, **extra) -> Iterator[Sample]:
    for i in range(n):
        yield Sample(
            id=str(i), input=f"q{i}", target="t", output=["o"], scores={"acc": i % 2, "f1": "C"}, **extra
        )


def test_rows_carry_the_job_and_the_sample_as_text_with_numeric_scores():
    rows = list(sample_rows(_result(lambda: _samples(2)), ON, MetricFilter()))
    assert [(r.job_id, r.invocation_id, r.model, r.task, r.sample_id) for r in rows] == [
        ("inv1.0", "inv1", "acme/m", "gsm8k", "0"),
        ("inv1.0", "inv1", "acme/m", "gsm8k", "1"),
    ]
    assert rows[0].output == '["o"]' and rows[0].input == "q0"
    assert rows[1].scores == {"acc": 1.0, "f1": "C"}
    assert rows[0].score == 0.0 and rows[0].metadata == ""


def test_the_stream_reads_samples_one_at_a_time():
    pulled = []

    def counting():
        for sample in _samples(1000):
            pulled.append(sample.id)
            yield sample

    stream = iter(sample_rows(_result(counting), ON, MetricFilter()))
    next(stream)
    assert len(pulled) == 1


def test_max_samples_stops_the_stream_and_says_so():
    stream = sample_rows(
        _result(lambda: _samples(10)), SampleOptions("parquet", max_samples=3), MetricFilter()
    )
    assert len(list(stream)) == 3
    assert stream.cut_rows and any("max_samples" in n for n in stream.notes)


def test_exactly_max_samples_is_no_cut():
    stream = sample_rows(
        _result(lambda: _samples(3)), SampleOptions("parquet", max_samples=3), MetricFilter()
    )
    assert len(list(stream)) == 3 and stream.notes == ()


def test_long_cells_are_cut_and_counted():
    def long():
        yield Sample(id="a", input="y" * 50, target="t", output="z" * 20)

    stream = sample_rows(_result(long), SampleOptions("parquet", max_chars=10), MetricFilter())
    (row,) = stream
    assert row.input == "y" * 10 + CUT_MARK and row.output == "z" * 10 + CUT_MARK and row.truncated
    assert stream.truncated_cells == 2 and "max_sample_chars" in stream.notes[0]


def test_secrets_in_text_and_metadata_are_masked_and_counted():
    def secret():
        yield Sample(
            id="a",
            input="run it with --api-key abcdef123456",
            target="t",
            output="Authorization: Bearer qwertyuiop123",
            metadata={"api_key": "zzzsecretzzz", "doc": {"x": 1}},
        )

    stream = sample_rows(_result(secret), ON, MetricFilter())
    (row,) = stream
    stored = row.input + row.output + row.metadata
    for secret_value in ("abcdef123456", "qwertyuiop123", "zzzsecretzzz"):
        assert secret_value not in stored
    assert '"doc"' in row.metadata and stream.masked_cells == 3


def test_the_metric_filter_drops_scores_by_flat_name():
    rows = list(sample_rows(_result(lambda: _samples(2)), ON, MetricFilter.of("!gsm8k_f1")))
    assert all(set(r.scores) == {"acc"} for r in rows)
    rows = list(sample_rows(_result(lambda: _samples(2)), ON, MetricFilter.of("acc")))
    assert all(set(r.scores) == {"acc"} for r in rows)


def test_no_rows_when_off_or_when_the_job_has_no_samples():
    assert list(sample_rows(_result(lambda: _samples(2)), SampleOptions(), MetricFilter())) == []
    assert list(sample_rows(_result(None), ON, MetricFilter())) == []


def test_inspect_letters_count_as_a_headline_score():
    assert headline_score({"match": "C"}) == 1.0
    assert headline_score({"match": "I", "acc": 0.5}) == 0.0
    assert headline_score({"note": "free text"}) is None


class _Config(SampleSinkConfig):
    sample_modes = ("none", "table", "traces")


def test_the_samples_option_takes_the_sinks_modes_and_booleans():
    assert _Config().samples == "none"
    assert _Config(samples=True).samples == "table"
    assert _Config(samples="Traces").samples == "traces"
    assert _Config(samples=False).sample_options == SampleOptions("none", None, 10_000)
    with pytest.raises(ValidationError, match="not one of 'none', 'table', 'traces'"):
        _Config(samples="parquet")
    with pytest.raises(ValidationError):
        _Config(max_samples=0)
