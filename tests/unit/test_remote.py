"""The shared layer of remote sinks: options, error rules, one-line summaries, retries that stop
once a destination is down, and staging for upload with one digest of what is sent."""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ValidationError

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.base import SinkConfig
from evalport.adapters.sinks.remote import (
    CallFailed,
    Destination,
    DestinationDown,
    ErrorRules,
    RemoteOptions,
    RenamedOptionWarning,
    one_line,
    retries_option,
    stage_for_upload,
)
from evalport.domain.model import TaskResult
from evalport.domain.ports import ExportItem

TOKEN = "nvapi-CANARY_r2Xb9kLmQ4tYz7Wv1Pc3Nd5Ef8Gh0"
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02, total_timeout=5)


class Options(SinkConfig, RemoteOptions):
    deprecated_options: ClassVar[dict[str, str]] = {"attempts": "retries", "retry_attempts": "retries"}


class Refused(Exception):
    """What an SDK raises when the server refuses a request (a 400)."""

    status_code = 400


def failing(error: BaseException, calls: list[int]):
    def call() -> None:
        calls.append(1)
        raise error

    return call


# ---- options --------------------------------------------------------------------------------------
def test_retries_and_retry_wait_are_options_and_build_the_retry_policy():
    policy = Options(retries=2, retry_wait=0.25).retry_policy(max_wait=4.0, total_timeout=30.0)
    assert (policy.attempts, policy.initial_wait, policy.max_wait, policy.total_timeout) == (
        2,
        0.25,
        4.0,
        30.0,
    )
    with pytest.raises(ValidationError):
        Options(retries=0)


def test_an_old_option_name_keeps_working_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="'attempts' is deprecated; use 'retries'"):
        assert Options.model_validate({"attempts": 7}).retries == 7


def test_an_old_and_a_new_name_with_different_values_are_an_error():
    with warnings.catch_warnings(), pytest.raises(ValidationError, match="give only 'retries'"):
        warnings.simplefilter("ignore", DeprecationWarning)
        Options.model_validate({"attempts": 7, "retries": 3})


def test_retry_options_are_not_part_of_the_dumped_config_the_ledger_hashes():
    assert Options(retries=9).model_dump() == Options().model_dump()


# ---- transient or permanent -----------------------------------------------------------------------
def test_a_wire_problem_anywhere_in_the_cause_chain_is_transient():
    try:
        try:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        except OSError as inner:
            raise RuntimeError("API request failed") from inner
    except RuntimeError as outer:
        assert ErrorRules().is_transient(outer)


def test_a_refused_request_is_permanent_and_an_sdk_marker_or_code_is_transient():
    assert not ErrorRules().is_transient(Refused("bad param"))
    rules = ErrorRules(markers=("database is locked",), codes=frozenset({"TEMPORARILY_UNAVAILABLE"}))
    assert rules.is_transient(RuntimeError("sqlite3: Database is locked"))
    coded = RuntimeError("busy")
    coded.error_code = "TEMPORARILY_UNAVAILABLE"  # type: ignore[attr-defined]
    assert rules.is_transient(coded) and not ErrorRules().is_transient(coded)


def test_an_sdk_rule_settles_an_error_before_the_common_rules():
    rules = ErrorRules(decide=lambda exc: False if "401" in str(exc) else None)
    assert not rules.is_transient(RuntimeError("401 unauthorized: timed out waiting for login"))
    assert rules.is_transient(TimeoutError("timed out"))


# ---- one line -------------------------------------------------------------------------------------
def test_the_summary_is_the_first_meaningful_line_with_secrets_masked():
    error = RuntimeError(f"\n  ---\nbad   request for key {TOKEN}\nTraceback (most recent call last):\n  ...")
    assert one_line(error) == "bad request for key ***"


def test_the_summary_names_the_error_code_and_is_clipped():
    error = RuntimeError("x" * 1000)
    error.error_code = "INVALID_PARAMETER_VALUE"  # type: ignore[attr-defined]
    line = one_line(error)
    assert line.startswith("INVALID_PARAMETER_VALUE: xxx") and len(line) == 300 and line.endswith("...")


def test_wire_problems_are_summarised_in_plain_words():
    assert (
        one_line(OSError("HTTPConnectionPool: Max retries exceeded (Connection refused)"))
        == "connection refused"
    )
    assert one_line(TimeoutError("Read timed out. (read timeout=15)")) == "the request timed out"


# ---- retries, and down for the export -------------------------------------------------------------
def test_a_transient_error_is_retried_then_the_destination_is_down_and_later_calls_are_not_tried():
    dest = Destination(FAST, ErrorRules(), explain=lambda f: f"server did not answer ({f.summary})")
    first, later = [], []
    with pytest.raises(CallFailed) as failed:
        dest.call("create a run", failing(ConnectionRefusedError("Connection refused"), first))
    assert len(first) == 3 and failed.value.transient and failed.value.attempts == 3
    assert failed.value.reason == "server did not answer (connection refused)"
    assert dest.down == "server did not answer (connection refused)"
    started = time.monotonic()
    with pytest.raises(DestinationDown) as skipped:
        dest.call("log metrics", failing(ConnectionRefusedError("Connection refused"), later))
    assert later == [] and time.monotonic() - started < 0.01
    assert skipped.value.reason == "not tried: server did not answer (connection refused)" == dest.not_tried


def test_a_call_may_bring_its_own_rules_and_the_failure_says_how_long_it_took():
    dest = Destination(FAST, ErrorRules())
    never_again = ErrorRules(decide=lambda exc: False)  # a create: retried only if nothing happened
    calls: list[int] = []
    with pytest.raises(CallFailed) as failed:
        dest.call("create", failing(ConnectionRefusedError("Connection refused"), calls), never_again)
    assert calls == [1] and not failed.value.transient and dest.down is None
    assert 0 <= failed.value.elapsed < 1


def test_a_sink_may_give_retries_another_default_and_keeps_the_shared_constraints():
    class Patient(SinkConfig, RemoteOptions):
        retries: int = retries_option(7)

    assert Patient().retries == 7
    with pytest.raises(ValidationError):
        Patient(retries=0)
    assert "retries" not in Patient().model_dump()


def test_an_old_option_name_warns_with_the_one_renaming_warning():
    with pytest.warns(RenamedOptionWarning, match="'retry_attempts' is deprecated; use 'retries'"):
        assert Options.model_validate({"retry_attempts": 2}).retries == 2


def test_a_permanent_error_is_not_retried_and_the_destination_stays_up():
    dest = Destination(FAST, ErrorRules())
    calls: list[int] = []
    with pytest.raises(CallFailed) as failed:
        dest.call("log a param", failing(Refused("param refused"), calls))
    assert calls == [1] and not failed.value.transient and dest.down is None
    assert failed.value.reason == "log a param: param refused"
    assert dest.call("look up", lambda: 42) == 42


def test_a_call_retrying_in_another_thread_stops_once_the_destination_is_down():
    dest = Destination(
        RetryPolicy(attempts=50, initial_wait=2.0, max_wait=2.0, total_timeout=100), ErrorRules()
    )
    calls: list[int] = []
    outcome: list[BaseException] = []

    def retrying() -> None:
        try:
            dest.call("upload", failing(TimeoutError("timed out"), calls))
        except CallFailed as exc:
            outcome.append(exc)

    thread = threading.Thread(target=retrying)
    started = time.monotonic()
    thread.start()
    while not calls:
        time.sleep(0.001)
    dest.mark_down("the server went away")
    thread.join(timeout=10)
    assert time.monotonic() - started < 1.5, "the 2 s wait between tries was cut short"
    assert len(calls) == 1 and outcome and dest.down == "the server went away"


# ---- staging for upload ---------------------------------------------------------------------------
def item_with(tmp_path: Path, files: dict[str, str]) -> ExportItem:
    job = tmp_path / "job"
    for rel, text in files.items():
        (job / rel).parent.mkdir(parents=True, exist_ok=True)
        (job / rel).write_text(text)
    result = TaskResult("inv1.0", "inv1", "mmlu", "simple_evals", "m", "local", ())
    arts = tuple(r.removeprefix("artifacts/") for r in files if r.startswith("artifacts/"))
    logs = tuple(r.removeprefix("logs/") for r in files if r.startswith("logs/"))
    return ExportItem(result, job, arts, logs)


def test_staged_files_are_masked_and_their_digest_is_of_what_is_sent(tmp_path):
    item = item_with(tmp_path, {"artifacts/results.yml": "acc: 1\n", "logs/run.log": f"key {TOKEN}\n"})
    staged = stage_for_upload(item, tmp_path, {"evalport/names.json": b"{}\n"})
    assert staged is not None and staged.note == ""
    assert staged.files == ("artifacts/results.yml", "evalport/names.json", "logs/run.log")
    sent = {rel: (staged.directory / rel).read_bytes() for rel in staged.files}
    assert TOKEN.encode() not in sent["logs/run.log"]
    expected = hashlib.sha256(b"".join(rel.encode() + b"\0" + sent[rel] + b"\0" for rel in staged.files))
    assert staged.digest == expected.hexdigest()[:32]


def test_the_digest_is_the_same_for_the_same_files_and_changes_with_their_content(tmp_path):
    item = item_with(tmp_path / "a", {"artifacts/results.yml": "acc: 1\n"})
    first = stage_for_upload(item, tmp_path)
    again = stage_for_upload(item, tmp_path)
    assert first is not None and again is not None and first.digest == again.digest
    assert first.directory != again.directory, "each upload gets a folder of its own"
    (item.directory / "artifacts/results.yml").write_text("acc: 2\n")
    changed = stage_for_upload(item, tmp_path)
    assert changed is not None and changed.digest != first.digest


def test_nothing_to_send_stages_nothing(tmp_path):
    result = TaskResult("inv1.0", "inv1", "mmlu", "simple_evals", "m", "local", ())
    assert stage_for_upload(ExportItem(result, tmp_path), tmp_path) is None


def test_staging_without_a_digest_copies_the_same_masked_files(tmp_path):
    item = item_with(tmp_path, {"artifacts/results.yml": "acc: 1\n", "logs/run.log": f"key {TOKEN}\n"})
    staged = stage_for_upload(item, tmp_path, digest=False)
    assert staged is not None and staged.digest == ""
    assert staged.files == ("artifacts/results.yml", "logs/run.log")
    assert TOKEN not in (staged.directory / "logs/run.log").read_text()
