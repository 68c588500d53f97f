import pytest

from evalport.domain.errors import AmbiguousIdError, UnknownIdError
from evalport.domain.identity import LogMode, RunIdentity
from evalport.domain.ids import resolve_id, resolve_ids
from evalport.domain.model import TaskResult

INVS = ["abcd111122223333", "abcd999988887777", "ef01000000000000"]
JOBS = [f"{i}.{n}" for i in INVS for n in (0, 1, 2, 10)]


def test_a_full_invocation_id_gives_its_jobs_in_index_order():
    assert resolve_id("ef01000000000000", INVS, JOBS) == [f"ef01000000000000.{n}" for n in (0, 1, 2, 10)]


def test_a_unique_prefix_names_its_invocation():
    assert resolve_id("ef0", INVS, JOBS)[0] == "ef01000000000000.0"


def test_a_job_id_and_a_job_prefix_name_one_job():
    assert resolve_id("abcd1111.2", INVS, JOBS) == ["abcd111122223333.2"]
    assert resolve_id("abcd111122223333.10", INVS, JOBS) == ["abcd111122223333.10"]


def test_an_ambiguous_prefix_lists_the_candidates():
    with pytest.raises(AmbiguousIdError) as err:
        resolve_id("abcd", INVS, JOBS)
    assert "abcd111122223333" in str(err.value) and "abcd999988887777" in str(err.value)


def test_unknown_ids_are_errors_and_the_rest_still_resolve():
    jobs, errors = resolve_ids(["nope", "ef01", "ef01"], INVS, JOBS)
    assert len(jobs) == 4 and len(errors) == 1 and isinstance(errors[0], UnknownIdError)
    assert "'nope'" in str(errors[0])


def _result(inv, harness, task):
    return TaskResult(f"{inv}.0", inv, task, harness, "m", "local", ())


def test_run_ids_are_deterministic_and_distinct_per_task():
    a = RunIdentity.for_result(_result("i1", "h", "t1"))
    b = RunIdentity.for_result(_result("i1", "h", "t2"))
    assert a.run_id() == RunIdentity.for_result(_result("i1", "h", "t1")).run_id()
    assert a.run_id() != b.run_id()
    assert a.key == "i1/h/t1"


def test_multi_task_runs_are_one_per_invocation():
    a = RunIdentity.for_result(_result("i1", "h", "t1"), LogMode.MULTI_TASK)
    b = RunIdentity.for_result(_result("i1", "h2", "t2"), "multi_task")
    assert a == b and a.key == "i1"
    assert a.run_id() != RunIdentity.for_result(_result("i1", "h", "t1")).run_id()


def test_an_invocation_known_without_any_job_is_an_error_not_an_empty_success():
    invocations = [*INVS, "0000aaaa0000aaaa"]
    for ident in ("0000aaaa0000aaaa", "0000aa"):
        with pytest.raises(UnknownIdError) as err:
            resolve_id(ident, invocations, JOBS)
        assert "has no jobs" in str(err.value)
    job_ids, errors = resolve_ids(["0000aaaa0000aaaa", "ef01"], invocations, JOBS)
    assert job_ids == [f"ef01000000000000.{n}" for n in (0, 1, 2, 10)]
    assert [e.ident for e in errors] == ["0000aaaa0000aaaa"]
