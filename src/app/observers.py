"""Who hears about an export while it runs: the progress bar, a watcher's printer, nobody.

The service reports to one ExportObserver; there is no second code path for a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from evalport.domain.report import ExportReport, Outcome


class ExportObserver(Protocol):
    def started(self, jobs: int, destinations: int) -> None:
        """Before anything is read: how many jobs go to how many destinations."""
        ...

    def outcome(self, outcome: Outcome) -> None: ...

    def finished(self, report: ExportReport) -> None: ...


class NullObserver:
    def started(self, jobs: int, destinations: int) -> None:
        return None

    def outcome(self, outcome: Outcome) -> None:
        return None

    def finished(self, report: ExportReport) -> None:
        return None


class CallbackObserver(NullObserver):
    """Calls ``on_outcome`` for each outcome as it happens."""

    def __init__(self, on_outcome: Callable[[Outcome], None]) -> None:
        self.on_outcome = on_outcome

    def outcome(self, outcome: Outcome) -> None:
        self.on_outcome(outcome)


class ProgressObserver(NullObserver):
    """A transient rich progress bar on ``console`` (a terminal), one step per outcome."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._progress: Any = None
        self._task: Any = None

    def started(self, jobs: int, destinations: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("export", total=jobs * destinations or None)

    def outcome(self, outcome: Outcome) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def finished(self, report: ExportReport) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ProgressObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finished(ExportReport())
