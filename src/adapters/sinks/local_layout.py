"""What the local sink's files look like: folder names from ids, and CSV rows a spreadsheet can open safely.

Pure functions, no I/O. Two rules live here because every CSV the sink writes or reads back
needs them the same way:

* **Folder names.** An id becomes a folder name only when it is one plain path component:
  not empty, ``.`` or ``..``, no ``/``, ``\\``, NUL or other control character, valid Unicode,
  at most 255 bytes. Anything else is refused (:func:`folder_name_problem`), never rewritten,
  so a folder always carries the id it names.
* **Cells.** A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return would be run as a formula by a spreadsheet; it is written with a leading apostrophe,
  the spreadsheet convention for "this is text" (:func:`csv_cell`). Numbers (``-0.5``,
  ``-inf``) are left alone. The rule is reversible (:func:`read_cell`): a text that already
  starts with apostrophes before such a character gets one more, so reading back gives the
  original and re-exports find their rows by job id.
* **Dates.** ``timestamp`` stays the epoch seconds it always was; ``timestamp_iso`` beside it is
  the same instant in UTC, ISO 8601, to the second (:func:`iso_utc`).
* **No repeated columns.** A statistic named ``mean`` equal to its metric's value is left out of
  CSV rows (it would be a second copy of the value column); JSON keeps every statistic.
* **Columns.** A metric whose flat name equals a base column (``job_id``, ``model_id``,
  ``fingerprint``, ...) is written under ``<name> (metric)``, so it never overwrites the job's
  own cells (:func:`metric_column`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import stat as file_mode
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalport.domain.fingerprint import item_fingerprint
from evalport.domain.ports import ExportItem

BASE_COLUMNS = (
    "model_id",
    "harness",
    "task",
    "executor",
    "container",
    "invocation_id",
    "job_id",
    "timestamp",
    "timestamp_iso",
)
FINGERPRINT = "fingerprint"
RESERVED_COLUMNS = frozenset((*BASE_COLUMNS, FINGERPRINT))
METRIC_SUFFIX = " (metric)"
MAX_NAME_BYTES = 255
FORMULA_STARTS = frozenset("=+-@\t\r")
_SUSPECT_STARTS = frozenset((*FORMULA_STARTS, "'"))  # only cells starting so need a closer look
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|-?inf|nan")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---- folder names --------------------------------------------------------------------------------


def folder_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as one folder name, or None when it can."""
    if not value.strip():
        return "is empty"
    if value in (".", ".."):
        return f"is {value!r}, which names a folder that already exists"
    if "/" in value or "\\" in value:
        return "holds a path separator"
    if "\x00" in value:
        return "holds a NUL byte"
    if _CONTROL.search(value):
        return "holds a control character"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    if size > MAX_NAME_BYTES:
        return f"is {size} bytes long (a folder name holds at most {MAX_NAME_BYTES})"
    return None


def shown(value: str, limit: int = 60) -> str:
    """``value`` for a message: quoted, control characters escaped, long ones cut."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


# ---- cells ---------------------------------------------------------------------------------------


def _would_run(text: str) -> bool:
    """True for a text that, after its leading apostrophes, starts like a formula and is no number."""
    body = text.lstrip("'")
    return bool(body) and body[0] in FORMULA_STARTS and not _NUMBER.fullmatch(body)


def csv_cell(value: Any) -> Any:
    """The cell to write: text that a spreadsheet would evaluate gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in _SUSPECT_STARTS and _would_run(value):
        return "'" + value
    return value


def read_cell(text: str) -> str:
    """The inverse of :func:`csv_cell` for a cell read back from a CSV file."""
    if text.startswith("'") and _would_run(text):
        return text[1:]
    return text


def metric_column(name: str) -> str:
    """The column of a metric (or statistic) by flat name; never one of the job's own columns."""
    if name in RESERVED_COLUMNS or name.endswith(METRIC_SUFFIX):
        return name + METRIC_SUFFIX
    return name


def iso_utc(epoch: Any) -> str | None:
    """``1767227658.0`` -> ``"2026-01-01T00:34:18Z"``; None for no (or no finite) timestamp."""
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool) or not math.isfinite(epoch):
        return None
    try:
        moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- entries and rows ----------------------------------------------------------------------------


def json_number(value: float) -> float | str:
    """Strict JSON has no NaN or infinity: those are written as the strings "nan", "inf", "-inf"."""
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def summary_entry(item: ExportItem, files: Sequence[str], job_dir: str) -> dict[str, Any]:
    result = item.result
    entry = result.summary()
    entry["timestamp_iso"] = iso_utc(entry.get("timestamp"))
    entry["metrics"] = {k: json_number(v) for k, v in entry["metrics"].items()}
    entry["stats"] = {k: {s: json_number(v) for s, v in st.items()} for k, st in entry["stats"].items()}
    entry["files"] = list(files)
    entry["path"] = job_dir
    # The service's fingerprint of the item (the ledger's too): one definition of "unchanged".
    entry["fingerprint"] = item.fingerprint or item_fingerprint(item)
    return entry


def flat_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One CSV row from a summary entry: base columns, each metric and statistic, the fingerprint."""
    row = {k: entry.get(k) for k in BASE_COLUMNS}
    for name, value in entry["metrics"].items():
        row[metric_column(name)] = value
    metrics = entry["metrics"]
    for name, stats in entry["stats"].items():
        for stat, value in stats.items():
            if stat == "mean" and name in metrics and value == metrics[name]:
                continue  # the value column already says it
            row[metric_column(f"{name}_{stat}")] = value
    row[FINGERPRINT] = entry[FINGERPRINT]
    return row


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows (from :func:`flat_row` or :func:`read_csv_rows`) as CSV: base, metric columns, fingerprint."""
    rows = list(rows)
    metric_cols = sorted({k for r in rows for k in r} - RESERVED_COLUMNS)
    columns = [*BASE_COLUMNS, *metric_cols, FINGERPRINT]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in columns])
    suspect = _SUSPECT_STARTS
    for row in rows:
        cells = ["" if (v := row.get(k)) is None else v for k in columns]
        writer.writerow([csv_cell(v) if type(v) is str and v[:1] in suspect else v for v in cells])
    return buf.getvalue()


def read_csv_rows(text: str) -> dict[str, dict[str, str]]:
    """job id -> row of a CSV summary, cells and header as they were before :func:`csv_cell`."""
    reader = csv.reader(io.StringIO(text))
    header = [read_cell(c) for c in next(reader, [])]
    rows: dict[str, dict[str, str]] = {}
    for cells in reader:
        row = dict(zip(header, (read_cell(c) if c[:1] == "'" else c for c in cells), strict=False))
        if row.get("job_id"):
            rows[row["job_id"]] = row
    return rows


def held_job_folders(
    root: str, located: Mapping[str, str], entries: Collection[str] | None, job_file: str | None
) -> set[str]:
    """The jobs of ``located`` (job id -> its recorded folder) whose folder is still
    ``<root>/<invocation>/<job id>``, both real folders (a symbolic link put in their place holds
    nothing), with its per-job file, and (``entries`` given) in the multi-run summary.

    Lexical checks and one ``lstat`` per job and per invocation: no path is resolved per job.
    """
    real_dirs: dict[str, bool] = {}
    held: set[str] = set()
    for job_id, location in located.items():
        if not location or (entries is not None and job_id not in entries):
            continue
        folder = os.path.normpath(location)
        invocation = os.path.dirname(folder)
        if os.path.basename(folder) != job_id or os.path.dirname(invocation) != root:
            continue
        if invocation not in real_dirs:
            real_dirs[invocation] = _is_real(invocation, file_mode.S_ISDIR)
        if not real_dirs[invocation] or not _is_real(folder, file_mode.S_ISDIR):
            continue
        if not job_file or _is_real(os.path.join(folder, job_file), file_mode.S_ISREG):
            held.add(job_id)
    return held


def _is_real(path: str, kind: Callable[[int], bool]) -> bool:
    """``path`` is that kind of file itself (lstat: a symbolic link is never taken for its target)."""
    try:
        return kind(os.lstat(path).st_mode)
    except OSError:
        return False


class UnplaceableJob(Exception):
    """A job whose ids cannot name a folder inside the output folder; the message says why."""


def job_folder(
    item: ExportItem, output_dir: Path, root: Path, checked: dict[str, bool] | None = None
) -> Path:
    """``<output_dir>/<invocation>/<job>``, checked: its ids are plain folder names and it stays
    inside ``root`` (the resolved output folder). A symbolic link already at ``<inv>`` or
    ``<inv>/<job>`` must resolve inside it. Raises :class:`UnplaceableJob` otherwise: ids come from
    an execution DB that anyone with write access to it can shape. ``checked`` (kept by the caller
    for one batch) spares checking an invocation's folder again for its next job.
    """
    result = item.result
    for what, value in (("invocation id", result.invocation_id), ("job id", result.job_id)):
        problem = folder_name_problem(value)
        if problem:
            raise UnplaceableJob(
                f"the {what} {shown(value)} {problem}, so it cannot name a folder under "
                f"{output_dir}; nothing was written (check the execution DB record)"
            )
    inv_dir = f"{os.fspath(output_dir)}/{result.invocation_id}"
    job_dir = f"{inv_dir}/{result.job_id}"
    # Plain names cannot climb out; only a symbolic link at one of the two steps can.
    if checked is None or inv_dir not in checked:
        _not_linked_outside(inv_dir, root)
        if checked is not None:
            checked[inv_dir] = True
    _not_linked_outside(job_dir, root)
    return Path(job_dir)


def _not_linked_outside(step: str, root: Path) -> None:
    if os.path.islink(step) and not (resolved := Path(step).resolve()).is_relative_to(root):
        raise UnplaceableJob(
            f"the folder {step} is a symbolic link to {resolved}, outside the output folder "
            f"{root}; nothing was written"
        )
