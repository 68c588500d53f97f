"""Test support shipped to adapter authors: contract suites and a launcher-data factory.

``from evalport.testing import SinkContract`` needs pytest; the factory needs nothing beyond PyYAML.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LauncherHome", "ReaderContract", "SinkContract", "SourceContract", "write_launcher_home"]


def __getattr__(name: str) -> Any:
    if name in ("SinkContract",):
        from evalport.testing.sink_contract import SinkContract

        return SinkContract
    if name in ("SourceContract",):
        from evalport.testing.source_contract import SourceContract

        return SourceContract
    if name in ("ReaderContract",):
        from evalport.testing.reader_contract import ReaderContract

        return ReaderContract
    if name in ("LauncherHome", "write_launcher_home"):
        from evalport.testing import factory

        return getattr(factory, name)
    raise AttributeError(name)
