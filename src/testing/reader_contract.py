"""ReaderContract: the behaviour every reader of a harness's output must show, on real files.

Subclass it in a test module, set ``reader_name`` and supply the fixtures below; every test is
inherited::

    class TestMyReader(ReaderContract):
        reader_name = "my_harness"

        @pytest.fixture
        def example(self, tmp_path):        # a copy of real output (the contract may damage it)
            return copy_of(REAL_OUTPUT, tmp_path)

        @pytest.fixture
        def expected(self):                 # -> Expected, computed from the raw files, not typed in
            ...

        @pytest.fixture
        def failed_example(self, tmp_path): # a folder holding a failed run, or None when the
            ...                             # harness never writes one (the test then skips)

        def aggregate_file(self, example, result):   # the file read() parses for ``result``
            ...

        def samples_file(self, example, result):     # the per-sample file, or None
            ...
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evalport.adapters.formats.detect import detect, reader
from evalport.adapters.formats.harness_files import HarnessReader
from evalport.domain.errors import EvalportError, ResultError
from evalport.domain.model import JobState, TaskResult


@dataclass
class Expected:
    """What the example holds, per task: some metric values (flat names) and the number of samples."""

    metrics: Mapping[str, Mapping[str, float]]
    samples: Mapping[str, int] = field(default_factory=dict)
    #: A task whose name is not ASCII, present in the example.
    unicode_task: str | None = None


def copy_tree(source: Path, into: Path) -> Path:
    target = into / source.name
    shutil.copytree(source, target)
    return target


class ReaderContract:
    reader_name: str = ""

    @pytest.fixture
    def example(self, tmp_path: Path) -> Path:
        raise NotImplementedError("provide example: a copy of real output in tmp_path")

    @pytest.fixture
    def expected(self) -> Expected:
        raise NotImplementedError("provide expected: an Expected computed from the raw files")

    @pytest.fixture
    def failed_example(self, tmp_path: Path) -> Path | None:
        return None

    def aggregate_file(self, example: Path, result: TaskResult) -> Path:
        return example / result.artifacts[0]

    def samples_file(self, example: Path, result: TaskResult) -> Path | None:
        return example / result.artifacts[1] if len(result.artifacts) > 1 else None

    @pytest.fixture
    def the_reader(self) -> HarnessReader:
        return reader(self.reader_name)

    # ------------------------------------------------------------------ aggregates
    def test_detection_names_this_reader(self, example):
        assert detect(example) == self.reader_name

    def test_aggregates_are_read_with_the_values_the_files_hold(self, the_reader, example, expected):
        results = {r.task: r for r in the_reader.read(example)}
        for task, metrics in expected.metrics.items():
            assert task in results, f"task {task!r} missing; read {sorted(results)}"
            flat = results[task].flat_metrics()
            for name, value in metrics.items():
                assert flat.get(name) == pytest.approx(value), f"{task}: {name}"

    def test_every_result_names_its_model_harness_and_time(self, the_reader, example):
        for result in the_reader.read(example):
            assert result.model_id and result.harness and result.task
            assert result.timestamp is None or result.timestamp > 1e9

    def test_ids_are_stable_and_follow_the_invocation_dot_index_rule(self, the_reader, example, tmp_path):
        first = [r.job_id for r in the_reader.read(example)]
        moved = shutil.copytree(example, tmp_path / "elsewhere" / example.name)
        assert [r.job_id for r in the_reader.read(example)] == first
        assert [r.job_id for r in the_reader.read(moved)] == first
        for result in the_reader.read(example):
            inv, _, index = result.job_id.rpartition(".")
            assert inv == result.invocation_id and index.isdigit()
        assert len(set(first)) == len(first)

    def test_aggregates_do_not_parse_the_per_sample_files(self, the_reader, example):
        results = the_reader.read(example)
        for result in results:
            samples = self.samples_file(example, result)
            if samples is not None and samples != self.aggregate_file(example, result):
                samples.write_text("{ this is not json\n")
        assert [r.flat_metrics() for r in the_reader.read(example)] == [r.flat_metrics() for r in results]

    # ------------------------------------------------------------------ samples
    def test_each_result_yields_its_samples(self, the_reader, example, expected):
        for result in the_reader.read(example):
            if result.task in expected.samples:
                samples = list(the_reader.samples(result, example))
                assert len(samples) == expected.samples[result.task], result.task
                assert len({s.id for s in samples}) == len(samples), "sample ids must be unique"
                assert all(s.scores for s in samples) or result.state is not JobState.SUCCEEDED

    def test_a_result_carries_its_samples_as_a_lazy_accessor(self, the_reader, example, expected):
        for result in the_reader.read(example):
            if not expected.samples.get(result.task):
                continue
            assert result.samples is not None, f"{result.task}: read() must set samples"
            stream = result.samples()
            assert iter(stream) is stream, "samples() must return an iterator, not a list"
            assert sum(1 for _ in stream) == expected.samples[result.task], result.task
            assert sum(1 for _ in result.samples()) == expected.samples[result.task], "a second call re-reads"

    def test_a_result_without_per_sample_records_has_no_accessor(self, the_reader, example):
        for result in the_reader.read(example):
            if self.samples_file(example, result) is None and result.samples is not None:
                assert list(result.samples()) == [], f"{result.task}: samples set, but no per-sample file"

    def test_samples_are_streamed_lazily(self, the_reader, example):
        result = next(r for r in the_reader.read(example) if self.samples_file(example, r) is not None)
        stream = the_reader.samples(result, example)
        assert iter(stream) is stream, "samples() must return an iterator, not a list"

    def test_a_truncated_samples_file_is_an_error_naming_the_file(self, the_reader, example):
        result = next(r for r in the_reader.read(example) if self.samples_file(example, r) is not None)
        path = self.samples_file(example, result)
        assert path is not None
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ResultError) as caught:
            list(the_reader.samples(result, example))
        assert path.name in str(caught.value)

    # ------------------------------------------------------------------ failures
    def test_a_failed_run_is_a_failed_job(self, the_reader, failed_example):
        if failed_example is None:
            pytest.skip(f"{self.reader_name} writes no output for a run that failed")
        results = the_reader.read(failed_example)
        assert any(r.state in (JobState.FAILED, JobState.CANCELLED) for r in results)
        for r in results:
            if r.state is JobState.FAILED:
                assert r.notes, "a failed job says why"

    def test_a_truncated_aggregate_file_is_an_error_naming_the_file(self, the_reader, example):
        result = the_reader.read(example)[0]
        path = self.aggregate_file(example, result)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(EvalportError) as caught:
            the_reader.read(path)
        assert path.name in str(caught.value)

    def test_a_malformed_aggregate_file_is_an_error_naming_the_file(self, the_reader, example):
        result = the_reader.read(example)[0]
        path = self.aggregate_file(example, result)
        path.write_bytes(b"\x00\xffnot what this reader expects")
        with pytest.raises(EvalportError) as caught:
            the_reader.read(path)
        assert path.name in str(caught.value)

    def test_unicode_task_names_are_kept(self, the_reader, example, expected):
        if expected.unicode_task is None:
            pytest.skip("the example holds no non-ASCII task name")
        results = {r.task: r for r in the_reader.read(example)}
        result = results[expected.unicode_task]
        assert all(name.startswith(f"{expected.unicode_task}_") for name in result.flat_metrics())
