"""Per-sample records: what one harness row says about one input, read lazily.

A reader yields these from its per-sample file (a JSONL stream, the entries of an Inspect ``.eval``
zip, ...) one at a time, so a result with a million samples never sits in memory unless a sink
collects them. The fields keep each harness's own values (a prompt may be a string or a list of
chat messages); ``scores`` holds what the harness scored, numeric or not (Inspect's "C"/"I").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Sample:
    #: Unique within its result: the harness's own id, with the epoch or repeat when there are several.
    id: str
    input: Any
    target: Any
    output: Any
    scores: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
