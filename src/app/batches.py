"""How one run is cut into batches for the sinks that take several, and what the batches add up to."""

from __future__ import annotations

from collections.abc import Sequence

from evalport.app.items import emptied_note
from evalport.app.ledgered import gone_note
from evalport.domain.ports import ReadRequest, ResultSink

#: A run is read and sent in batches of about this share of its jobs (whole invocations each), so
#: sinks that take batches write one while the reader's workers read the next.
_BATCHES_PER_RUN = 8
_MIN_BATCH = 32
#: The first batch is this much smaller: the sinks wait for it with nothing else to do.
_FIRST_SHARE = 8


def by_invocation(requests: Sequence[ReadRequest]) -> list[ReadRequest]:
    """``requests`` with each invocation's jobs together, invocations in order of first appearance."""
    groups: dict[str, list[ReadRequest]] = {}
    for request in requests:
        groups.setdefault(request[0].invocation_id, []).append(request)
    return [r for group in groups.values() for r in group]


def batch_sizes(requests: Sequence[ReadRequest], per_run: int = _BATCHES_PER_RUN) -> list[int]:
    """Sizes of consecutive batches of ``requests`` (grouped by invocation) that never split an
    invocation: a sink writing one run per invocation (``multi_task``) gets each whole."""
    target = max(_MIN_BATCH, -(-len(requests) // per_run))
    first = max(_MIN_BATCH, target // _FIRST_SHARE)
    sizes: list[int] = []
    count = 0
    for i, (job, _dir, _state) in enumerate(requests):
        if count >= (target if sizes else first) and job.invocation_id != requests[i - 1][0].invocation_id:
            sizes.append(count)
            count = 0
        count += 1
    if count:
        sizes.append(count)
    return sizes


class Tally:
    """What the batches of one run add up to, for notes said once per sink."""

    def __init__(self) -> None:
        self.emptied: dict[int, tuple[int, int]] = {}
        self.gone: dict[str, int] = {}
        self.extra: list[str] = []

    def count(self, sink: ResultSink, emptied: int, total: int) -> None:
        had = self.emptied.get(id(sink), (0, 0))
        self.emptied[id(sink)] = (had[0] + emptied, had[1] + total)

    def notes(self, sinks: Sequence[ResultSink]) -> list[str]:
        out: list[str] = []
        for sink in sinks:
            if note := emptied_note(sink, *self.emptied.get(id(sink), (0, 0))):
                out.append(note)
        out.extend(self.extra)
        out.extend(gone_note(d, n) for d, n in self.gone.items())
        return out
