"""Which MLflow errors are worth another try, and how a failed call is reported."""

from __future__ import annotations

from evalport.adapters.sinks.remote import CallFailed, ErrorRules

#: MLflow wraps wire problems in MlflowException; these words and codes give them away.
MLFLOW_RULES = ErrorRules(
    markers=(
        "temporarily_unavailable",
        "resource_exhausted",
        "too many 429",
        "too many 5",
        "database is locked",
    ),
    codes=frozenset({"TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL_ERROR", "DEADLINE_EXCEEDED"}),
)


def explain(where: str, failure: CallFailed) -> str:
    """The reason a job failed, naming the (redacted) tracking URI ``where`` and what to do."""
    if failure.transient:
        tries = f" after {failure.attempts} attempts" if failure.attempts > 1 else ""
        return (
            f"MLflow at {where} did not answer ({failure.what}: {failure.summary}){tries}; make sure the "
            f"tracking server is running and tracking_uri is right, then export again"
        )
    return f"MLflow at {where} refused to {failure.what}: {failure.summary}"


class ExperimentDeleted(Exception):
    """The experiment exists but is deleted: MLflow cannot add runs to it."""

    def __init__(self) -> None:
        super().__init__(
            "it is deleted; restore it (mlflow experiments restore) or choose another experiment_name"
        )
