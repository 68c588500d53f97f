"""Inspect tasks for evalport's reader tests: an inline dataset, mockllm/model, two scorers."""

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import includes, match
from inspect_ai.solver import generate, solver

ROWS = [
    Sample(id="a1", input="What is 2+2?", target="4"),
    Sample(
        id="a2", input="Echo: Default output from mockllm/model", target="Default output from mockllm/model"
    ),
    Sample(id="a3", input="Largest planet?", target="Jupiter", metadata={"kind": "astro"}),
]


@task
def tiny_qa():
    return Task(
        dataset=MemoryDataset(ROWS, name="inline"),
        solver=generate(),
        scorer=[match(location="any"), includes()],
    )


@task
def tâche_ünï():
    return Task(dataset=MemoryDataset(ROWS[:2], name="inline_unicode"), solver=generate(), scorer=includes())


@solver
def explode():
    async def solve(state, generate):
        raise RuntimeError("deliberate failure")

    return solve


@task
def tiny_fail():
    return Task(dataset=MemoryDataset(ROWS[:1], name="inline_fail"), solver=explode(), scorer=match())
