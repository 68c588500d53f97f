"""The single composition root: settings -> source -> reader -> sink registry -> ExportService.

Tests and launchers override providers (``container.source.override(my_source)``) instead of
patching modules.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalport.domain.ports import ExportLedger, ResultSource


def _import_dependency_injector() -> Any:
    """Imports ``dependency_injector.containers`` without its optional web-framework hooks.

    Its wiring module imports fastapi, starlette and werkzeug when they are installed (mlflow
    brings fastapi), which costs about 0.2 s on every CLI call; evalport uses no wiring, so those
    imports are blocked for the duration of this one import and then unblocked.
    """
    if "dependency_injector.containers" in sys.modules:
        return sys.modules["dependency_injector.containers"]
    blocked = [m for m in ("fastapi", "starlette", "werkzeug", "flask") if m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        from dependency_injector import containers
    finally:
        for name in blocked:
            if sys.modules.get(name) is None:
                del sys.modules[name]
    return containers


containers = _import_dependency_injector()
from dependency_injector import providers  # noqa: E402

from evalport.adapters.formats.nemo_evaluator import NemoEvaluatorReader  # noqa: E402
from evalport.app.registry import sink_registry, source_registry  # noqa: E402
from evalport.app.service import ExportService  # noqa: E402


def make_ledger(setting: Any) -> ExportLedger | None:
    """``True``: the default ledger in the state directory; a path: that file; ``False``: none."""
    if setting is False or setting is None:
        return None
    if setting is True:
        from evalport.adapters.ledger import SqliteLedger

        return SqliteLedger()
    if isinstance(setting, (str, Path)):
        from evalport.adapters.ledger import SqliteLedger

        return SqliteLedger(setting)
    return setting


def make_source(name: str, exec_db: str | None, job_dirs: Sequence[str]) -> ResultSource:
    source_cls = source_registry().get(name)
    return source_cls(exec_db=exec_db, job_dirs=list(job_dirs or ()))


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()

    source = providers.Singleton(
        make_source,
        name=config.source.as_(lambda v: v or "slurm"),
        exec_db=config.exec_db,
        job_dirs=config.job_dirs.as_(lambda v: list(v or ())),
    )
    reader = providers.Singleton(NemoEvaluatorReader)
    sinks = providers.Singleton(sink_registry)
    ledger = providers.Singleton(make_ledger, config.ledger)
    service = providers.Factory(ExportService, source=source, reader=reader, sinks=sinks, ledger=ledger)


def build_container(
    *,
    exec_db: str | Path | None = None,
    job_dirs: Sequence[str | Path] = (),
    source: ResultSource | None = None,
    source_name: str = "slurm",
    ledger: ExportLedger | str | Path | bool = True,
) -> Container:
    """The wired container; ``ledger=False`` exports without consulting or recording the ledger."""
    container = Container()
    container.config.from_dict(
        {
            "source": source_name,
            "exec_db": str(exec_db) if exec_db else None,
            "job_dirs": [str(p) for p in job_dirs],
        }
    )
    container.ledger.override(providers.Object(make_ledger(ledger)))
    if source is not None:
        container.source.override(providers.Object(source))
    return container
