"""Resolving invocation and job ids, full or as unique prefixes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from evalport.domain.errors import AmbiguousIdError, UnknownIdError


def job_sort_key(job_id: str) -> tuple[str, int, str]:
    inv, _, idx = job_id.partition(".")
    return (inv, int(idx) if idx.isdigit() else -1, idx)


def resolve_id(ident: str, invocation_ids: Iterable[str], job_ids: Iterable[str]) -> list[str]:
    """The job ids ``ident`` names: an invocation (all its jobs) or one job, exact or by prefix.

    An exact match wins over prefixes; a prefix matching several invocations (or several jobs of
    different invocations) is ambiguous and the error lists the candidates.
    """
    ident = ident.strip()
    if not ident:
        raise UnknownIdError(ident, "give an invocation or job id")
    job_ids = list(job_ids)
    invs = set(invocation_ids)
    if ident in invs:
        return _jobs_of(ident, job_ids, ident)
    if ident in set(job_ids):
        return [ident]
    if "." in ident:
        inv_part, _, idx = ident.partition(".")
        matching_invs = [i for i in invs if i.startswith(inv_part)]
        if len(matching_invs) > 1:
            raise AmbiguousIdError(ident, [f"{i}.{idx}" for i in matching_invs])
        hits = [j for j in job_ids if j.split(".", 1)[0] in matching_invs and j.split(".", 1)[1] == idx]
        if not hits:
            raise UnknownIdError(ident)
        return hits
    matching = sorted(i for i in invs if i.startswith(ident))
    if len(matching) > 1:
        raise AmbiguousIdError(ident, matching)
    if not matching:
        raise UnknownIdError(ident)
    return _jobs_of(matching[0], job_ids, ident)


def _jobs_of(invocation_id: str, job_ids: Iterable[str], ident: str) -> list[str]:
    """The invocation's jobs; none at all is an error, never a silent empty export."""
    found = sorted((j for j in job_ids if j.split(".", 1)[0] == invocation_id), key=job_sort_key)
    if not found:
        raise UnknownIdError(ident, f"invocation {invocation_id} has no jobs recorded; nothing to export")
    return found


def resolve_ids(
    idents: Sequence[str], invocation_ids: Iterable[str], job_ids: Iterable[str]
) -> tuple[list[str], list[UnknownIdError | AmbiguousIdError]]:
    """All job ids named by ``idents`` (deduplicated, in order) and one error per bad ident."""
    invs, jobs = set(invocation_ids), list(job_ids)
    by_invocation: dict[str, list[str]] = {}
    for job_id in jobs:
        by_invocation.setdefault(job_id.split(".", 1)[0], []).append(job_id)
    known_jobs = set(jobs)
    out: dict[str, None] = {}
    errors: list[UnknownIdError | AmbiguousIdError] = []
    for ident in idents:
        if ident in by_invocation and ident in invs:
            out.update(dict.fromkeys(sorted(by_invocation[ident], key=job_sort_key)))
            continue
        if ident in known_jobs and ident not in invs:  # a full job id: no scan (thousands of them)
            out[ident] = None
            continue
        try:
            out.update(dict.fromkeys(resolve_id(ident, invs, jobs)))
        except (UnknownIdError, AmbiguousIdError) as exc:
            errors.append(exc)
    return list(out), errors
