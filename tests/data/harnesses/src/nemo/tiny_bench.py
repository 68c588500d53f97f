"""A BYOB benchmark for nemo-evaluator 0.3.0 over a local JSONL file."""

from pathlib import Path

from nemo_evaluator.environments.custom import benchmark, scorer
from nemo_evaluator.scoring import ScorerInput, exact_match

DATA = str(Path(__file__).with_name("data.jsonl"))


@benchmark(name="tiny-qa", dataset=DATA, prompt="Question: {question}\nAnswer:", target_field="answer")
@scorer
def tiny_qa_scorer(sample: ScorerInput) -> dict:
    return exact_match(sample)


@benchmark(
    name="tiny-broken",
    dataset=str(Path(__file__).with_name("missing.jsonl")),
    prompt="{question}",
    target_field="answer",
)
@scorer
def tiny_broken_scorer(sample: ScorerInput) -> dict:
    return exact_match(sample)
