"""What a caller asks for: one ExportRequest, whichever entry point it comes from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from evalport.domain.model import JobState


@dataclass(frozen=True)
class ExportRequest:
    """Ids, destinations, the config document in any accepted shape, and the run's flags.

    ``config`` is a launcher run config (``execution.auto_export``), an evalport config
    (``export.<dest>``, ``destinations``, ``exec_db``, ``job_dirs``), options keyed by destination
    (``{"mlflow": {...}}``) or flat options for every destination; a mapping, inline JSON, or a
    YAML/JSON file. ``flags`` are CLI options that go to every destination having them (``None``
    values are not given). ``states`` override the source's view of job states (auto-export knows
    its own job's exit code before the launcher writes it down).
    """

    ids: Sequence[str] = ()
    destinations: Sequence[str] = ()
    config: Mapping[str, Any] | str | Path | None = None
    overrides: Sequence[str] = ()
    flags: Mapping[str, Any] = field(default_factory=dict)
    include_failed: bool = False
    dry_run: bool = False
    force: bool = False
    states: Mapping[str, JobState] = field(default_factory=dict)
    #: Results roots searched for ids the execution DB does not know (``--job-dirs``).
    job_dirs_roots: Sequence[str] = ()

    def __post_init__(self) -> None:
        ids = [self.ids] if isinstance(self.ids, str) else list(self.ids)
        dests = [self.destinations] if isinstance(self.destinations, str) else list(self.destinations)
        object.__setattr__(self, "ids", tuple(ids))
        object.__setattr__(self, "destinations", tuple(dests))
        object.__setattr__(self, "overrides", tuple(self.overrides))

    @cached_property
    def document(self) -> dict[str, Any]:
        """The config document, loaded once (a file is read here, before anything else)."""
        from evalport.app.settings import load_document

        return load_document(self.config)

    @property
    def exec_db(self) -> str | None:
        value = self.document.get("exec_db")
        return str(value) if value else None

    @property
    def reader(self) -> str | None:
        """The config's ``reader:`` (which format every ``--job-dir`` holds; detected when None)."""
        value = self.document.get("reader")
        return str(value) if value else None

    @property
    def search_roots(self) -> list[str]:
        """The launcher's ``job_dirs``: ``--job-dirs``, then the config's, at the top, in any
        ``export.<dest>`` (or ``execution.auto_export.configs.<dest>``) block, or in ``-o``."""
        from evalport.app.settings import job_dirs_in

        return list(dict.fromkeys([*self.job_dirs_roots, *job_dirs_in(self.document, self.overrides)]))
