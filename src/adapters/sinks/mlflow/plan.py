"""What an export writes into an MLflow run: pure decisions, no mlflow import, no I/O.

:func:`plan_run_delta` compares what a run holds (:class:`RunState`) with what the job wants it
to hold (:class:`WantedRun`) and returns the :class:`RunDelta` to write: metrics whose value
differs, params not logged yet (MLflow never changes a logged param: those that differ are
``kept`` and reported), tags that differ, whether the files go up again (their digest differs,
or the run never finished, so an upload cut short is redone) and whether the run is to be
finished. Applying a delta (:meth:`RunState.applied`) and planning again gives an empty delta.

:func:`choose_run` picks the run a job goes into among those a search found: evalport's own (by
its run-key tag), else one nemo-evaluator-launcher made for the job (by its ``job_id`` tag), which
is adopted rather than duplicated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evalport.adapters.sinks.mlflow.names import clip
from evalport.domain.report import Status

#: A float64's largest value: what MLflow's SQL stores keep for +-inf.
FLOAT_MAX = 1.7976931348623157e308
_SHOWN_KEPT = 3


def same_value(stored: float | None, wanted: float) -> bool:
    """Whether a stored metric already holds ``wanted`` (NaN equals NaN; +-inf its clamped value)."""
    if stored is None:
        return False
    if math.isnan(wanted):
        return math.isnan(stored)
    if math.isinf(wanted):
        return stored == wanted or stored == math.copysign(FLOAT_MAX, wanted)
    return stored == wanted


@dataclass(frozen=True)
class RunDelta:
    """What to write into one run; ``kept``: params that differ but cannot change (logged, wanted)."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    upload: bool = False
    finish: bool = False
    kept: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        """Anything to send (a kept param is only reported)."""
        return bool(self.metrics or self.params or self.tags or self.upload or self.finish)

    @property
    def logs(self) -> bool:
        """Anything for ``log_batch``."""
        return bool(self.metrics or self.params or self.tags)

    def note(self) -> str:
        """The outcome's note about kept params ("" when none)."""
        if not self.kept:
            return ""
        shown = "; ".join(
            f"{k}: {clip(old, 60)!r} -> {clip(new, 60)!r}"
            for k, (old, new) in list(self.kept.items())[:_SHOWN_KEPT]
        )
        more = "; ..." if len(self.kept) > _SHOWN_KEPT else ""
        return (
            f"MLflow params cannot change, so {len(self.kept)} param(s) keep their logged value "
            f"({shown}{more})"
        )


@dataclass(frozen=True)
class RunState:
    """What a run holds as far as this export knows (read once, then kept up to date)."""

    run_id: str
    artifact_uri: str
    finished: bool
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, run: Any) -> RunState:
        """The state of an ``mlflow.entities.Run``."""
        data = run.data
        info = run.info
        return cls(
            info.run_id,
            info.artifact_uri,
            info.status == "FINISHED",
            dict(data.metrics),
            dict(data.params),
            dict(data.tags),
        )

    def applied(self, delta: RunDelta) -> RunState:
        """The state once ``delta`` is written."""
        return replace(
            self,
            finished=self.finished or delta.finish,
            metrics={**self.metrics, **delta.metrics},
            params={**self.params, **delta.params},
            tags={**self.tags, **delta.tags},
        )


@dataclass(frozen=True)
class WantedRun:
    """What one job puts into its run. ``digest``: of the files to upload (None: no files)."""

    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]
    digest_tag: str
    digest: str | None = None

    def creation_tags(self, limit: int) -> dict[str, str]:
        """The tags a new run is created with (the digest too: a run counts once FINISHED)."""
        tags = dict(self.tags)
        if self.digest is not None:
            tags[self.digest_tag] = self.digest
        return dict(list(tags.items())[:limit])


def plan_run_delta(existing: RunState, wanted: WantedRun) -> RunDelta:
    """What to write so that the run ``existing`` holds what ``wanted`` describes."""
    digest_tag = wanted.digest_tag
    new_digest = wanted.digest is not None and existing.tags.get(digest_tag) != wanted.digest
    tags = {k: v for k, v in wanted.tags.items() if k != digest_tag and existing.tags.get(k) != v}
    if new_digest:
        assert wanted.digest is not None
        tags[digest_tag] = wanted.digest  # logged after the upload, so it never names missing files
    return RunDelta(
        metrics={k: v for k, v in wanted.metrics.items() if not same_value(existing.metrics.get(k), v)},
        params={k: v for k, v in wanted.params.items() if k not in existing.params},
        tags=tags,
        upload=wanted.digest is not None and (new_digest or not existing.finished),
        finish=not existing.finished,
        kept={
            k: (existing.params[k], v)
            for k, v in wanted.params.items()
            if k in existing.params and existing.params[k] != v
        },
    )


def holds_job(state: RunState | None, job_tag: str, multi_task: bool) -> bool:
    """Whether the run already holds the job: it exists (per task), or names the job's task (multi)."""
    if state is None:
        return False
    return job_tag in state.tags if multi_task else True


def outcome_status(known: bool, delta: RunDelta) -> Status:
    """exported (new to the run), updated (something written) or unchanged."""
    if not known:
        return Status.EXPORTED
    return Status.UPDATED if delta.writes else Status.UNCHANGED


# ---- which existing run a job goes into -----------------------------------------------------------
#: The tag nemo-evaluator-launcher 0.2.6 finds a job's run by (``tags.job_id = '<job id>'``).
LAUNCHER_JOB_TAG = "job_id"


@dataclass(frozen=True)
class FoundRun:
    """A run a search returned, as far as choosing one needs: its id, start time and tags."""

    run_id: str
    start_time: int
    tags: Mapping[str, str]

    @classmethod
    def of(cls, run: Any) -> FoundRun:
        """The ``mlflow.entities.Run`` ``run`` as a candidate."""
        return cls(run.info.run_id, int(run.info.start_time or 0), dict(run.data.tags))


@dataclass(frozen=True)
class RunChoice:
    """The run a job goes into. ``adopted``: a run evalport did not make (the launcher's), found by
    its ``job_id`` tag; ``reason``: what the outcome says about the choice ("" when nothing to say)."""

    run_id: str
    adopted: bool = False
    reason: str = ""


def choose_run(
    candidates: Sequence[FoundRun], *, key_tag: str, stored_key: str, job_id: str | None
) -> RunChoice | None:
    """The run for a job among ``candidates`` (None: a new run is made).

    First a run carrying evalport's run key (``key_tag`` = ``stored_key``). Else, when ``job_id`` is
    given (per_task), a run without a run key whose ``job_id`` tag is the job's: one the launcher
    made, adopted (updated in place, and given the run key, so the next export finds it by key).
    When several match, the oldest (then the smallest run id) is chosen and the reason says so.
    """
    by_key = [c for c in candidates if c.tags.get(key_tag) == stored_key]
    adopted = False
    if not by_key and job_id is not None:
        by_key = [c for c in candidates if key_tag not in c.tags and c.tags.get(LAUNCHER_JOB_TAG) == job_id]
        adopted = True
    if not by_key:
        return None
    ordered = sorted(by_key, key=lambda c: (c.start_time, c.run_id))
    chosen = ordered[0]
    what = f"tag {LAUNCHER_JOB_TAG}={job_id}" if adopted else "this job's run key"
    reasons = []
    if adopted:
        reasons.append(f"adopted run {chosen.run_id}, found by {what} (not made by evalport)")
    if len(ordered) > 1:
        others = ", ".join(c.run_id for c in ordered[1:4]) + (", ..." if len(ordered) > 4 else "")
        reasons.append(
            f"{len(ordered)} MLflow runs carry {what}; the oldest, {chosen.run_id}, was used "
            f"and the others ({others}) left as they are"
        )
    return RunChoice(chosen.run_id, adopted, "; ".join(reasons))
