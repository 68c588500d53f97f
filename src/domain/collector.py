"""Fewer runs of Python's cyclic garbage collector while evalport builds many objects at once.

Reading an execution DB, parsing results and writing summaries make hundreds of thousands of small
containers, nearly all freed by reference counting alone. With the default thresholds the collector
runs after every 700 new containers and, every so often, walks everything alive: on 20,000 jobs
that is about half the time of reading the execution DB. :func:`fewer_collections` freezes what is
alive when it starts (the modules, the settings: never collected during the block) and lets the
youngest generation grow to :data:`YOUNG_THRESHOLD` before a collection; cycles are still
collected, later. Re-entrant: only the outermost block changes and restores the collector; a
process that froze objects itself keeps its freeze (nothing more is frozen).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 50_000
_depth = 0


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    global _depth
    if _depth or not gc.isenabled():
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    thresholds = gc.get_threshold()
    # A process that froze objects itself (a preforking server, for copy-on-write) keeps them
    # frozen: unfreezing at the end would undo its freeze too, so nothing is frozen here then.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        gc.set_threshold(*thresholds)
        if freezing:
            gc.unfreeze()
