"""Who hears about an export while it runs: the progress bar, a watcher's printer, nobody.

The service reports to one ExportObserver; there is no second code path for a terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from evalport.domain.report import ExportReport, Outcome


class ExportObserver(Protocol):
    def started(self, jobs: int, destinations: int, names: Sequence[str] = ()) -> None:
        """Before anything is read: how many jobs go to how many destinations (``names``, in order)."""
        ...

    def outcome(self, outcome: Outcome) -> None: ...

    def finished(self, report: ExportReport) -> None: ...


class NullObserver:
    def started(self, jobs: int, destinations: int, names: Sequence[str] = ()) -> None:
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
    """A transient rich progress bar on ``console`` (a terminal), one step per outcome.

    The total (jobs x destinations) is set before the first frame is drawn, and each destination
    shows its own count beside the bar (``local 3/6  mlflow 2/6``).
    """

    def __init__(self, console: Any) -> None:
        self.console = console
        self._progress: Any = None
        self._task: Any = None
        self._done: Counter[str] = Counter()
        self._totals: dict[str, int] = {}

    def started(self, jobs: int, destinations: int, names: Sequence[str] = ()) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._totals = {name: jobs * n for name, n in Counter(names).items()}
        self._progress = Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        # The task first, so the first frame start() draws already carries the total.
        self._task = self._progress.add_task(self._counts(), total=jobs * destinations)
        self._progress.start()

    def _counts(self) -> str:
        return "  ".join(f"{name} {self._done[name]}/{total}" for name, total in self._totals.items())

    def outcome(self, outcome: Outcome) -> None:
        if self._progress is not None:
            self._done[outcome.destination] += 1
            self._progress.update(self._task, advance=1, description=self._counts())

    def finished(self, report: ExportReport) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ProgressObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finished(ExportReport())
