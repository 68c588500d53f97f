"""The one definition of "unchanged": a short hash of what an export item sends.

The service computes it once per item per export (after the sink's metric filter and file
selection) and passes it along on :attr:`ExportItem.fingerprint`; the ledger stores and compares
that value, and sinks that decide "unchanged" themselves (the local summary, MLflow, W&B) read it
from the item instead of hashing again.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalport.domain.ports import ExportItem


def file_signatures(item: ExportItem) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of each file an item would send; a missing file is (path, -1, -1).

    Cheap to compute (lstat only: a link is never followed), and changes whenever a file is
    rewritten, so a touched file changes the fingerprint.
    """
    out = []
    for rel, path in item.artifact_paths():
        try:
            st = os.lstat(path)
            out.append((rel, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((rel, -1, -1))
    return out


def item_fingerprint(item: ExportItem) -> str:
    """What ``item`` sends, as a short hash: the result's summary and its files' signatures."""
    body = json.dumps([item.result.summary(), file_signatures(item)], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:24]
