"""Per-sample records are streamed: the first comes before the rest of the file is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalport.adapters.formats.detect import reader
from evalport.domain.errors import ResultError
from evalport.testing.reader_contract import copy_tree

DATA = Path(__file__).resolve().parents[1] / "data" / "harnesses"


@pytest.mark.parametrize(("name", "example"), [("lm_eval", "lm_eval"), ("nemo_engine", "nemo_engine/run-ok")])
def test_the_first_sample_arrives_before_a_broken_line_further_down_is_read(name, example, tmp_path):
    folder = copy_tree(DATA / example, tmp_path)
    the_reader = reader(name)
    result = next(r for r in the_reader.read(folder) if len(r.artifacts) > 1)
    rows = folder / result.artifacts[1]
    rows.write_text(rows.read_text(encoding="utf-8") + "{ broken\n", encoding="utf-8")
    stream = the_reader.samples(result, folder)
    first = next(stream)
    assert first.id and first.scores
    with pytest.raises(ResultError, match=r"line \d+ is not valid JSON") as caught:
        list(stream)
    assert rows.name in str(caught.value)


def test_lm_eval_samples_carry_prompt_target_output_and_scores(tmp_path):
    folder = copy_tree(DATA / "lm_eval", tmp_path)
    lm_eval = reader("lm_eval")
    gen = next(r for r in lm_eval.read(folder) if r.task == "tiny_gen")
    samples = list(lm_eval.samples(gen, folder))
    assert {s.id.split(",")[1] for s in samples} == {"strict-match", "flexible-extract"}
    first = samples[0]
    assert first.input.startswith("Question:") and isinstance(first.target, str)
    assert set(first.scores) == {"exact_match"} and first.metadata["filter"] in (
        "strict-match",
        "flexible-extract",
    )
