"""evalport: export the results of finished LLM-evaluation runs.

The public API is loaded lazily so that ``import evalport`` (and the CLI's ``--help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ExportReport",
    "ExportRequest",
    "ExportService",
    "__version__",
    "export",
    "export_results",
    "register_exporter",
    "register_sink",
]

if TYPE_CHECKING:
    from evalport.app.api import export, export_results
    from evalport.app.registry import register_exporter, register_sink
    from evalport.app.request import ExportRequest
    from evalport.app.service import ExportService
    from evalport.domain.report import ExportReport

_LAZY = {
    "export": "evalport.app.api",
    "export_results": "evalport.app.api",
    "ExportService": "evalport.app.service",
    "ExportRequest": "evalport.app.request",
    "ExportReport": "evalport.domain.report",
    "register_sink": "evalport.app.registry",
    "register_exporter": "evalport.app.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalport' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
