"""Names W&B accepts: artifact names, run ids and tags, and the run folders the SDK writes.

W&B rejects artifact names with characters other than letters, digits, ``-``, ``_`` and ``.``
(at most 128 of them), run ids containing any of ``:;,#?/'``, and tags longer than 64 characters.
"""

from __future__ import annotations

import hashlib
import re

ARTIFACT_NAME_MAX = 128
TAG_MAX = 64
_ARTIFACT_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
_RUN_ID_BAD = re.compile(r"[:;,#?/'\s]")
# Offline and online run folders: "<offline-run|run>-<YYYYMMDD_HHMMSS>-<run id>[-<collision suffix>]".
_RUN_FOLDER = re.compile(r"^(?:offline-run|run)-\d{8}_\d{6}-(?P<id>.+?)(?:-\d+)?$")


def _shorten(name: str, limit: int) -> str:
    """Cuts ``name`` to ``limit`` characters keeping it distinct: the cut tail becomes a short hash."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


def artifact_name(harness: str, task: str) -> str:
    """``<harness>.<task>`` with every run of invalid characters replaced by ``_``.

    Replacing changes the name, so a name that needed replacing also gets a short hash of the
    original: ``a/b`` and ``a:b`` never land in the same artifact collection.
    """
    raw = f"{harness}.{task}"
    clean = _ARTIFACT_BAD.sub("_", raw).strip(".") or "evaluation"
    if clean != raw:
        clean = f"{clean}-{hashlib.sha256(raw.encode()).hexdigest()[:6]}"
    return _shorten(clean, ARTIFACT_NAME_MAX)


def launcher_artifact_name(invocation_id: str, task: str | None = None) -> str:
    """The launcher's artifact name: ``<invocation>_<task>`` per task, ``<invocation>`` per invocation.

    The launcher sends the name as it is (W&B refuses one with other characters); here such a name
    is made valid the way :func:`artifact_name` does, so a valid name is exactly the launcher's.
    """
    raw = f"{invocation_id}_{task}" if task is not None else invocation_id
    clean = _ARTIFACT_BAD.sub("_", raw).strip(".") or "evaluation"
    if clean != raw:
        clean = f"{clean}-{hashlib.sha256(raw.encode()).hexdigest()[:6]}"
    return _shorten(clean, ARTIFACT_NAME_MAX)


def is_valid_run_id(run_id: str) -> bool:
    return bool(run_id) and len(run_id) <= 128 and not _RUN_ID_BAD.search(run_id)


def run_id_of_folder(folder_name: str) -> str | None:
    """The run id in a run folder's name (``offline-run-20260101_000000-<id>-1`` -> ``<id>``)."""
    match = _RUN_FOLDER.match(folder_name)
    return match["id"] if match else None


def run_ids_of_folder(folder_name: str) -> set[str]:
    """Every run id a run folder's name can mean: ``...-nightly-2`` is run ``nightly`` in its second
    folder, or run ``nightly-2`` (a run id may end in ``-<digits>`` too)."""
    match = _RUN_FOLDER.match(folder_name)
    if not match:
        return set()
    whole = (
        folder_name.split("-", 3)[-1] if folder_name.startswith("offline-") else folder_name.split("-", 2)[-1]
    )
    return {match["id"], whole}


def clean_tag(tag: str) -> str:
    tag = tag.strip()
    if not tag:
        raise ValueError("tags must not be empty")
    if len(tag) > TAG_MAX:
        raise ValueError(f"tag {tag[:20]!r}... is {len(tag)} characters; W&B allows at most {TAG_MAX}")
    return tag
