"""Rules for exports nobody watches (``auto-export``, ``watch``): no store is chosen by default.

An interactive ``evalport export --dest mlflow`` without a tracking URI writes ``./mlflow.db``
where the user stands, and says so. In a cluster job that folder is the job's work dir, often on
scratch space, and nobody reads the line: the results would be lost without a word. So the
unattended entry points refuse such a plan before anything is read or sent.
"""

from __future__ import annotations

import os

from evalport.app.plan import ExportPlan
from evalport.domain.errors import ConfigError

#: Config fields whose ``None`` means "an embedded store in the current directory", and the
#: environment variable that, when set, chooses the store instead.
IMPLICIT_STORES = {"tracking_uri": "MLFLOW_TRACKING_URI"}


def require_explicit_stores(plan: ExportPlan, command: str) -> None:
    """Raises ConfigError (exit 2) naming each destination that would fall back to a local store."""
    problems = []
    destinations = plan.settings.destinations or [getattr(s, "name", "?") for s in plan.sinks]
    for destination, sink in zip(destinations, plan.sinks, strict=False):
        config = getattr(sink, "config", None)
        fields = getattr(type(config), "model_fields", {})
        for key, env in IMPLICIT_STORES.items():
            if key in fields and getattr(config, key, None) is None and not os.environ.get(env):
                problems.append(
                    f"destination {destination!r} has no {key}: under `evalport {command}` it would "
                    f"silently write ./mlflow.db in {os.getcwd()}, where nobody looks. Set {key} in its "
                    f"config (execution.auto_export.configs.{destination}.{key} or "
                    f"export.{destination}.{key}), pass -o {destination}.{key}=URI, or export {env} "
                    f"(a local store too: {key}: sqlite:////shared/path/mlflow.db)"
                )
    if problems:
        raise ConfigError("; ".join(problems))
