"""The launcher's execution database: ``~/.nemo-evaluator/exec-db/exec.v1.jsonl``.

Every line is validated (:mod:`records`) before it counts: a line that is no JSON object, or whose
fields have the wrong shape, is skipped with a warning naming ``<file>:<line>`` and the field, and
never replaces an earlier valid line for the same job.

The launcher appends a line per job and update, so a team's DB holds many lines per job and only
the last valid one counts. The file is read backwards: a line that plainly names (see
:func:`named_job`) a job already decided by a later valid line is superseded, and is not parsed.
A superseded line's problems are therefore not reported; it is of no consequence.

Resolving ids needs only the jobs they can name: :func:`read_exec_db` with ``wanted`` (id prefixes,
see :func:`wanted_prefixes`) looks only at the lines that could name a job starting with one of
them, found by a search in C over the whole file (:func:`_wanted_pattern`: the ``"job_id"`` key
followed by a wanted prefix or spaced unusually, or any ``\\u`` escape), and of those parses the
ones :func:`named_job` does not attribute to another job. A line left out could never have become
a record of a wanted job; its problems are not reported by that read (``ls``, and an export
without ids, read every line and report them).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.scanner import make_scanner
from pathlib import Path
from typing import Any

from evalport.adapters.sources.records import ExecDbRecord, parse_record
from evalport.domain.collector import fewer_collections

log = logging.getLogger("evalport.sources.execdb")

DEFAULT_EXEC_DB = Path("~/.nemo-evaluator/exec-db/exec.v1.jsonl")
EXEC_DB_ENV = "EVALPORT_EXEC_DB"


def default_exec_db_path() -> Path:
    return Path(os.environ.get(EXEC_DB_ENV) or DEFAULT_EXEC_DB).expanduser()


@dataclass
class ExecDbRecords:
    records: dict[str, ExecDbRecord] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Whether a read for wanted prefixes left lines of the file unread (they name other jobs).
    unread: bool = False


def wanted_prefixes(ids: Sequence[str]) -> tuple[str, ...] | None:
    """The job-id prefixes a record must start with to be named by one of ``ids`` (an invocation or
    a job id, whole or a prefix of its invocation part); None when one of them could name any job
    (empty, or nothing before its dot): then every line is needed."""
    prefixes = []
    for ident in ids:
        needle = ident.strip().split(".", 1)[0]
        if not needle:
            return None
        prefixes.append(needle)
    return tuple(dict.fromkeys(prefixes))


_JOB_ID_KEY = b'"job_id"'
_NAMED_JOB = re.compile(rb'"job_id"\s*:\s*"([^"\\]{1,255})"')


def named_job(line: bytes) -> str | None:
    """The job id ``line`` plainly names, without parsing it: the key occurs once, its value has no
    escape, and the line holds no ``\\u`` escape (which could spell the key a second time). None
    when in doubt; a wrong answer could only ever skip a line naming a job decided later."""
    if line.count(_JOB_ID_KEY) != 1 or b"\\u" in line:
        return None
    m = _NAMED_JOB.search(line)
    return m[1].decode("utf-8", "replace") if m else None


def named_job_in(view: mmap.mmap | bytes, start: int, end: int, escaped: bool) -> str | None:
    """``named_job(view[start:end])`` found in place, ``escaped`` saying whether the line holds a
    ``\\u`` (:func:`_escaped_lines`): a superseded line of a team's DB (most of its lines) is
    neither copied out of the map nor searched twice."""
    first = view.find(_JOB_ID_KEY, start, end)
    if escaped or first == -1 or view.find(_JOB_ID_KEY, first + 1, end) != -1:
        return None
    m = _NAMED_JOB.match(view, first, end)
    return m[1].decode("utf-8", "replace") if m else None


def read_exec_db(path: Path, wanted: tuple[str, ...] | None = None) -> ExecDbRecords:
    """Valid records by job id (in the order jobs first appear); a later valid line for a job
    replaces an earlier one. With ``wanted`` (:func:`wanted_prefixes`), only the jobs whose id
    starts with one of those prefixes (see the module doc)."""
    out = ExecDbRecords()
    if not path.exists():
        return out
    if not path.is_file():
        out.warnings.append(f"{path}: the execution DB is not a regular file; it is not read")
        return out
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if not size:
                return out
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view, fewer_collections():
                _read_backwards(path, view, size, out, wanted)
    except (OSError, ValueError) as exc:
        out.warnings.append(f"{path}: cannot read the execution DB: {getattr(exc, 'strerror', None) or exc}")
    return out


def _read_backwards(
    path: Path, view: mmap.mmap, size: int, out: ExecDbRecords, wanted: tuple[str, ...] | None = None
) -> None:
    """Fills ``out`` from the mapped file, last line first (each line copied out of the map alone,
    so a DB of any size costs the memory of its records, not of the file)."""
    pattern = _wanted_pattern(wanted) if wanted is not None else None
    if pattern is None:
        lines: Iterable[tuple[int, int, int]] = _all_lines_backwards(view, size)
    else:
        candidates = _lines_matching(view, size, pattern)
        out.unread = sum(end - start + 1 for _, start, end in candidates) < size
        lines = reversed(candidates)
    exact = frozenset(wanted or ())
    configs: dict[bytes, dict[str, object]] = {}
    decided: dict[str, ExecDbRecord] = {}
    first_seen: dict[str, int] = {}
    problems: list[tuple[int, int, str]] = []  # (start, line number or 0, what follows "<file>:<line>: ")
    shapes: dict[int, list[str]] = {}  # by config (records share their invocation's): checked once
    escaped = _escaped_lines(view, size)
    for lineno, start, end in lines:
        named = named_job_in(view, start, end, start in escaped)
        if named is not None:
            if named in decided:
                first_seen[named] = start
                continue
            if wanted is not None and named.partition(".")[0] not in exact and not named.startswith(wanted):
                continue
        raw = view[start:end]
        if not raw.strip():
            continue
        try:
            record = parse_record(_decode_line(raw, configs))
        except (ValueError, RecursionError) as exc:
            problems.append((start, lineno, f"skipped a corrupt execution-DB line: {_clip(_problem(exc))}"))
            continue
        if wanted is not None and not record.job_id.startswith(wanted):
            continue
        first_seen[record.job_id] = start
        if record.job_id in decided:
            continue
        decided[record.job_id] = record
        shape = shapes.get(id(record.config))  # each config stays alive in ``decided``: ids stay unique
        if shape is None:
            shape = shapes[id(record.config)] = record.shape_problems()
        if shape:
            problems.extend((start, lineno, f"job {record.job_id}: {p}; that part is ignored") for p in shape)
    out.records = {j: decided[j] for j in sorted(decided, key=first_seen.__getitem__)}
    problems.sort(key=lambda p: p[0])
    numbers = _line_numbers(view, [start for start, lineno, _ in problems if not lineno])
    for start, lineno, text in problems:
        message = f"{path}:{lineno or numbers[start]}: {text}"
        log.debug(message)
        out.warnings.append(message)


_CONFIG_KEY = b'"config": {'


def _decode_line(raw: bytes, configs: dict[bytes, dict[str, object]]) -> object:
    """``json.loads(raw)``, the top-level ``"config"`` object decoded once per distinct text.

    The launcher writes an invocation's whole config on each of its jobs' lines, and decoding it is
    most of the time of reading a team's DB. A line with no ``\\u`` escape (which could spell a
    key otherwise) is split at its first ``"config": {`` not after a backslash (a quote in a JSON
    string is always escaped, so this is the key ``config``) and its closing brace: the line
    with ``{}`` in place of that value must decode to an object whose ``config`` is ``{}`` (so the
    key is the top-level one: a nested one would leave a brace unclosed) and the text cut out to
    one object (so it was that key's whole value, the last key: another top-level ``config``
    after it would make it no single value). Then the result is the plain decode's; in any other
    case the line is decoded whole, as before (errors included). Records decoded from identical
    config texts share one dict: nothing may change a job's config in place.
    """
    at = raw.find(_CONFIG_KEY)
    end = raw.rfind(b"}")
    if at < 1 or end < at or raw[at - 1] == 0x5C or b"\\u" in raw:  # a backslash: maybe inside a key
        return json.loads(raw)
    start = at + len(_CONFIG_KEY) - 1
    text = raw[start:end]
    try:
        rest = _loads(raw[:start] + b"{}" + raw[end:])
        if type(rest) is not dict or rest.get("config") != {}:
            return json.loads(raw)
        config = configs.get(text)
        if config is None:
            config = _loads(text)
            if type(config) is not dict:
                return json.loads(raw)
            configs[text] = config
    except (ValueError, RecursionError):
        return json.loads(raw)
    rest["config"] = config
    return rest


# What json.loads scans with (in C), without its wrapper (typeshed types its argument wrongly).
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_JSON_SPACE = " \t\n\r"


def _loads(raw: bytes) -> Any:
    """``json.loads(raw)``, a few microseconds sooner per line: UTF-8 text scanned from its first
    character to its end (only JSON whitespace after the value). Anything else (other encodings, a
    byte-order mark, leading whitespace, errors) is decoded by ``json.loads`` itself, so values and
    errors are always its own."""
    try:
        text = raw.decode("utf-8")
        value, end = _SCAN_ONCE(text, 0)
    except (ValueError, StopIteration, RecursionError):
        return json.loads(raw)
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        return json.loads(raw)
    return value


def _escaped_lines(view: mmap.mmap, size: int) -> set[int]:
    """The start of each line holding a ``\\u`` escape (one search in C over the whole map)."""
    starts: set[int] = set()
    found = _ESCAPE.search(view)
    while found is not None:
        start = view.rfind(b"\n", 0, found.start()) + 1
        starts.add(start)
        end = view.find(b"\n", found.start())
        found = _ESCAPE.search(view, size if end == -1 else end + 1)
    return starts


def _all_lines_backwards(view: mmap.mmap, size: int) -> Iterator[tuple[int, int, int]]:
    """(line number, start, end) of every line, last first."""
    starts = array("q", [0])
    position = view.find(b"\n")
    while position != -1:
        starts.append(position + 1)
        position = view.find(b"\n", position + 1)
    for index in range(len(starts) - 1, -1, -1):
        end = starts[index + 1] - 1 if index + 1 < len(starts) else size
        yield index + 1, starts[index], end


_ESCAPE = re.compile(rb"\\u")  # re's literal search is several times faster here than mmap.find


_MAX_SEARCHED_PREFIXES = 16


def _wanted_pattern(wanted: tuple[str, ...]) -> re.Pattern[bytes] | None:
    """What a line must hold to possibly name a job whose id starts with a ``wanted`` prefix: its
    ``"job_id"`` key followed by ``: "`` and a prefix (as JSON writes it in a string), or followed
    by anything else (another spacing: such a line is always looked at). A ``\\u`` escape can spell
    the key or the id in other bytes: :func:`_lines_matching` looks at those lines too. None when a
    prefix cannot be encoded, or there are so many that one pass over each line costs less than
    the search: then every line is read (those plainly naming other jobs still unparsed)."""
    if len(wanted) > _MAX_SEARCHED_PREFIXES:
        return None
    try:
        spelled = sorted({json.dumps(p, ensure_ascii=False)[1:-1].encode("utf-8") for p in wanted})
    except UnicodeEncodeError:
        return None
    alternatives = b"|".join(re.escape(p) for p in spelled)
    return re.compile(b'"job_id"(?:: "(?:' + alternatives + b')|(?!: "))')


def _lines_matching(view: mmap.mmap, size: int, pattern: re.Pattern[bytes]) -> list[tuple[int, int, int]]:
    """(0, start, end) of each line ``pattern`` matches or holding a ``\\u`` escape, in file order
    (0: its number is counted only if a warning needs it). Both searches run in C over the map:
    the lines that match neither cost no Python work."""
    spans: dict[int, int] = {}

    def add(position: int) -> int:
        start = view.rfind(b"\n", 0, position) + 1
        end = view.find(b"\n", position)
        end = size if end == -1 else end
        spans[start] = end
        return end + 1

    for search in (pattern, _ESCAPE):
        found = search.search(view)
        while found is not None:
            found = search.search(view, add(found.start()))
    return [(0, start, spans[start]) for start in sorted(spans)]


_CHUNK = 1 << 22


def _line_numbers(view: mmap.mmap, starts: list[int]) -> dict[int, int]:
    """The line number of each line start in ``starts`` (ascending), counting line breaks a few
    MiB at a time up to the last one only."""
    numbers: dict[int, int] = {}
    line, counted_to = 1, 0
    for start in starts:
        for offset in range(counted_to, start, _CHUNK):
            line += view[offset : min(offset + _CHUNK, start)].count(b"\n")
        counted_to = start
        numbers[start] = line
    return numbers


def _problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "not valid JSON (nested too deeply)"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc)


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
