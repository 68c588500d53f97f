"""Which harness wrote a folder (or file), and the registry of readers by name.

``detect(path)`` asks each reader, in ``ORDER``, whether the path holds its format (by file names
only: nothing is parsed); the launcher's job directory (``artifacts/results.yml``) comes first, so it
stays the default. A path no reader recognises is a UsageError naming what each one looked for.
``reader(name)`` is what a ``--reader NAME`` / ``reader: NAME`` option resolves through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from evalport.adapters.formats.harness_files import HarnessReader
from evalport.domain.errors import UsageError

NEMO_EVALUATOR = "nemo_evaluator"
#: Detection order: the launcher's format first, then the others (their file names never overlap).
ORDER: tuple[str, ...] = (NEMO_EVALUATOR, "lm_eval", "inspect", "nemo_engine")

LAUNCHER_LOOKS_FOR = "artifacts/results.yml (a launcher job directory) or results.yml"


def _lm_eval() -> HarnessReader:
    from evalport.adapters.formats.lm_eval import LmEvalReader

    return LmEvalReader()


def _inspect() -> HarnessReader:
    from evalport.adapters.formats.inspect_log import InspectLogReader

    return InspectLogReader()


def _nemo_engine() -> HarnessReader:
    from evalport.adapters.formats.nemo_engine import NemoEngineReader

    return NemoEngineReader()


#: Readers of other harnesses' output, built on first use (their modules import nothing heavy).
HARNESS_READERS: dict[str, Callable[[], HarnessReader]] = {
    "lm_eval": _lm_eval,
    "inspect": _inspect,
    "nemo_engine": _nemo_engine,
}


def reader_names() -> tuple[str, ...]:
    return ORDER


def reader(name: str) -> HarnessReader:
    """The reader registered as ``name``; an unknown name is a UsageError listing the known ones.

    ``nemo_evaluator`` (the launcher's job directories) is read by the existing
    ``evalport.adapters.formats.nemo_evaluator`` path, not through this protocol.
    """
    factory = HARNESS_READERS.get(name)
    if factory is None:
        hint = " (read by the launcher job-dir path)" if name == NEMO_EVALUATOR else ""
        raise UsageError(f"unknown reader {name!r}{hint}; the readers are: {', '.join(ORDER)}")
    return factory()


def is_launcher_job_dir(path: Path) -> bool:
    if path.is_file():
        return path.name == "results.yml"
    return (path / "artifacts" / "results.yml").is_file() or (path / "results.yml").is_file()


def _looks_for() -> Iterator[tuple[str, str]]:
    yield NEMO_EVALUATOR, LAUNCHER_LOOKS_FOR
    for name, factory in HARNESS_READERS.items():
        yield name, factory().looks_for


def detect(path: Path) -> str:
    """The name of the reader for ``path`` (see ``ORDER``); a UsageError when none matches."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if is_launcher_job_dir(path):
        return NEMO_EVALUATOR
    for name in ORDER[1:]:
        if HARNESS_READERS[name]().matches(path):
            return name
    wanted = "; ".join(f"{name}: {what}" for name, what in _looks_for())
    raise UsageError(
        f"{path}: no reader recognises it. Looked for {wanted}. "
        "Point at the harness's output folder, or force one with --reader NAME"
    )
