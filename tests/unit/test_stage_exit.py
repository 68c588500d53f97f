"""A job's state from its ``logs/stage.*`` markers, read on a string path with one open."""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalport.adapters.formats.nemo_evaluator import read_stage_exit
from evalport.domain.model import JobState


def _job(tmp_path, **files):
    job = tmp_path / "task.0"
    (job / "logs").mkdir(parents=True)
    (job / "artifacts").mkdir()
    for name, text in files.items():
        (job / name.replace("__", "/")).write_text(text)
    return job


@pytest.mark.parametrize(
    ("files", "state"),
    [
        ({"logs__stage.exit": "1767225600 0\n"}, JobState.SUCCEEDED),
        ({"logs__stage.exit": "1767225600 3\n"}, JobState.FAILED),
        ({"logs__stage.exit": ""}, JobState.UNKNOWN),
        ({"logs__stage.exit": "garbage"}, JobState.UNKNOWN),
        ({"logs__stage.running": ""}, JobState.RUNNING),
        ({"logs__stage.pre-start": ""}, JobState.PENDING),
        ({"artifacts__results.yml": "results: {}\n"}, JobState.SUCCEEDED),
        ({}, JobState.UNKNOWN),
    ],
)
def test_the_state_on_a_string_path_is_the_state_on_a_path(tmp_path, files, state):
    job = _job(tmp_path, **files)
    assert read_stage_exit(str(job)) is state and read_stage_exit(job) is state


def test_a_fifo_a_link_or_an_oversized_stage_exit_is_unknown_with_a_warning_naming_it(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "evalport.formats.nemo_evaluator")
    fifo = _job(tmp_path / "fifo")
    os.mkfifo(fifo / "logs" / "stage.exit")
    link = _job(tmp_path / "link", **{"artifacts__x": "1 0"})
    os.symlink(link / "artifacts" / "x", link / "logs" / "stage.exit")
    big = _job(tmp_path / "big", **{"logs__stage.exit": "0 " * 40_000})
    linked_logs = _job(tmp_path / "logs-link")
    (linked_logs / "logs").rmdir()
    os.symlink(big / "logs", linked_logs / "logs")
    for job in (fifo, link, big, linked_logs):
        assert read_stage_exit(str(job)) is JobState.UNKNOWN
    text = caplog.text
    assert "not a regular file" in text and "symbolic link; only regular files" in text
    assert "over the limit" in text and f"{linked_logs / 'logs'} is a symbolic link; not followed" in text


def _state_by_definition(content: bytes) -> JobState:
    """What ``stage.exit`` means: its last word (UTF-8, undecodable bytes replaced) as an exit code."""
    words = content.decode("utf-8", "replace").split()
    if not words:
        return JobState.UNKNOWN
    try:
        return JobState.SUCCEEDED if int(words[-1]) == 0 else JobState.FAILED
    except ValueError:
        return JobState.UNKNOWN


_ODD_ENDINGS = [
    b" 0\n",
    b" 0",
    b"0",
    b" 00\n",
    b" -0\n",
    b" 0\x1c",
    b"\x1c0",
    b" \xff0\n",
    b" \xc20\n",
    b" 1\n",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    head=st.binary(max_size=12)
    | st.sampled_from([b"", b"1767225600", b"2026-01-01T00:00:00Z", "٣".encode()]),
    tail=st.sampled_from(_ODD_ENDINGS) | st.binary(max_size=4),
)
def test_every_stage_exit_content_gives_the_state_its_last_word_says(tmp_path, head, tail):
    job = tmp_path / "task.0"
    (job / "logs").mkdir(parents=True, exist_ok=True)
    (job / "logs" / "stage.exit").write_bytes(head + tail)
    assert read_stage_exit(str(job)) is _state_by_definition(head + tail)


def test_a_job_folder_named_with_a_trailing_slash_or_relatively_reads_the_same_file(tmp_path, monkeypatch):
    job = _job(tmp_path, **{"logs__stage.exit": "1767225600 4\n"})
    monkeypatch.chdir(job)
    assert read_stage_exit(f"{job}/") is JobState.FAILED
    assert read_stage_exit("") is JobState.FAILED and read_stage_exit(".") is JobState.FAILED
