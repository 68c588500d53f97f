"""The ``.wandb`` reader decodes what the real W&B SDK writes in offline mode (no mocks, no network)."""

from __future__ import annotations

import base64
import hashlib
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

wandb = pytest.importorskip("wandb")

from .wandb_records import (  # noqa: E402
    BLOCK_SIZE,
    CorruptWandbFileError,
    TruncatedWandbFileError,
    WandbFileError,
    find_run_files,
    load_merged_run,
    load_run,
    read_records,
    record_spans,
    wait_for_exit,
)

CLOSED_PORT_URL = "http://127.0.0.1:9"

# Settings that make an offline run cheap; x_save_requirements=False matters most
# (it skips a scan of every installed distribution, ~70 ms per init).
FAST_SETTINGS: dict[str, Any] = {
    "mode": "offline",
    "silent": True,
    "base_url": CLOSED_PORT_URL,
    "console": "off",
    "disable_git": True,
    "save_code": False,
    "disable_job_creation": True,
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "x_save_requirements": False,
}


def _settings(**overrides: Any) -> Any:
    known = set(wandb.Settings.model_fields)
    values = {k: v for k, v in {**FAST_SETTINGS, **overrides}.items() if k in known}
    return wandb.Settings(**values)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Offline W&B with every SDK directory under tmp_path; returns an ``init`` that writes there."""
    for name in (
        "WANDB_API_KEY",
        "WANDB_ENTITY",
        "WANDB_PROJECT",
        "WANDB_RUN_ID",
        "WANDB_RESUME",
        "WANDB_NAME",
        "WANDB_NOTES",
        "WANDB_TAGS",
        "WANDB_RUN_GROUP",
        "WANDB_JOB_TYPE",
        "WANDB_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        folder = tmp_path / name.lower()
        folder.mkdir()
        monkeypatch.setenv(name, str(folder))
    root = tmp_path / "wandb-root"
    root.mkdir()

    def init(**kwargs: Any) -> Any:
        settings = _settings(**kwargs.pop("settings", {}))
        # WANDB_DIR is read once per process, so the root always goes through dir=.
        return wandb.init(dir=str(root), settings=settings, **kwargs)

    init.root = root  # type: ignore[attr-defined]
    yield init
    if wandb.run is not None:
        wandb.run.finish()


def test_a_finished_offline_run_reads_back_every_field_it_was_given(offline, tmp_path: Path) -> None:
    config = {"lr": 0.001, "model": {"name": "tiny", "layers": [1, 2, 3], "dropout": None}, "ok": True}
    run = offline(
        project="evalport-test",
        entity="acme",
        id="run-0001",
        name="baseline",
        group="nightly",
        job_type="eval",
        tags=["a", "b"],
        notes="first try",
        config=config,
    )
    run.config.update({"extra": "é"})
    run.summary["accuracy"] = 0.75
    run.summary["details"] = {"f1": 0.5}
    run.log({"loss": 0.5, "eval": {"f1": 0.1}})
    run.log({"loss": 0.25})
    first, second = tmp_path / "first.txt", tmp_path / "second.json"
    first.write_bytes(b"hello")
    second.write_bytes(b'{"x": 1}')
    artifact = wandb.Artifact("eval-results", type="evaluation", metadata={"n": 2})
    artifact.add_file(str(first))
    artifact.add_file(str(second), name="sub/second.json")
    run.log_artifact(artifact)
    wandb_file = Path(run.settings.sync_file)
    run.finish()

    loaded = load_run(wandb_file.parent)

    assert loaded.path == wandb_file
    assert (loaded.run_id, loaded.name, loaded.group, loaded.job_type) == (
        "run-0001",
        "baseline",
        "nightly",
        "eval",
    )
    assert loaded.tags == ["a", "b"]
    assert loaded.notes == "first try"
    assert (loaded.project, loaded.entity) == ("evalport-test", "acme")
    assert loaded.config == {**config, "extra": "é"}
    assert loaded.user_summary == {
        "accuracy": 0.75,
        "details": {"f1": 0.5},
        "loss": 0.25,
        "eval": {"f1": 0.1},
    }
    assert loaded.summary["_step"] == 1
    assert loaded.user_history == [{"loss": 0.5, "eval": {"f1": 0.1}}, {"loss": 0.25}]
    assert [row["_step"] for row in loaded.history] == [0, 1]
    assert len(loaded.artifacts) == 1
    logged = loaded.artifacts[0]
    assert (logged["name"], logged["type"], logged["used"]) == ("eval-results", "evaluation", False)
    assert logged["metadata"] == {"n": 2}
    assert logged["aliases"] == ["latest"]
    assert logged["manifest"] == {
        "first.txt": {"digest": _md5_b64(b"hello"), "size": 5},
        "sub/second.json": {"digest": _md5_b64(b'{"x": 1}'), "size": 8},
    }
    assert loaded.resumed is False
    assert loaded.exited is True
    assert loaded.exit_code == 0
    # Offline runs keep everything in the .wandb file: no config.yaml, no wandb-summary.json.
    assert not (wandb_file.parent / "files" / "config.yaml").exists()
    assert not (wandb_file.parent / "files" / "wandb-summary.json").exists()


def test_the_run_record_is_resent_when_name_tags_or_notes_change_and_the_last_one_wins(offline) -> None:
    run = offline(project="p", id="rename-me", name="before", tags=["old"], notes="n1")
    run.name = "after"
    run.tags = ("new", "newer")
    run.notes = "n2"
    run.finish(exit_code=3)

    loaded = load_run(offline.root)

    assert (loaded.name, loaded.tags, loaded.notes) == ("after", ["new", "newer"], "n2")
    assert loaded.exit_code == 3


def test_resuming_a_run_by_id_writes_a_second_file_and_both_are_found_in_order(offline) -> None:
    first = offline(project="p", id="resumable", config={"a": 1})
    first.log({"step_value": 1})
    first.finish()
    second = offline(project="p", id="resumable", resume="allow", config={"b": 2})
    second.log({"step_value": 2})
    second.finish()
    other = offline(project="p", id="someone-else")
    other.finish()

    files = find_run_files(offline.root, run_id="resumable")

    assert files == [Path(first.settings.sync_file), Path(second.settings.sync_file)]
    assert files[0].parent != files[1].parent
    assert len(find_run_files(offline.root)) == 3
    before, after = (load_run(f) for f in files)
    assert before.resumed is False
    assert after.resumed is True
    # Offline, nothing is merged: each file holds only its own init's config and history.
    assert (before.config, after.config) == ({"a": 1}, {"b": 2})
    assert after.user_history == [{"step_value": 2}]
    assert after.history[0]["_step"] == 0


def test_a_record_larger_than_a_block_is_reassembled_from_its_chunks(offline) -> None:
    big = "x" * (3 * BLOCK_SIZE)
    run = offline(project="p", id="big-config", config={"big": big, "small": 1})
    run.finish()

    wandb_file = find_run_files(offline.root)[0]
    loaded = load_run(wandb_file)  # waits for the exit record: finish() may return before the flush
    spans = record_spans(wandb_file)

    assert max(span.chunks for span in spans) >= 4
    assert wandb_file.stat().st_size > 3 * BLOCK_SIZE
    assert loaded.config == {"big": big, "small": 1}
    assert loaded.exited


@pytest.fixture
def finished_file(offline) -> Path:
    run = offline(project="p", id="to-damage", config={"big": "y" * BLOCK_SIZE})
    run.log({"loss": 1.0})
    run.finish()
    wandb_file = find_run_files(offline.root)[0]
    wait_for_exit(wandb_file)
    return wandb_file


def test_a_file_cut_inside_a_record_raises_a_truncation_error(finished_file: Path, tmp_path: Path) -> None:
    data = finished_file.read_bytes()
    multi_chunk = next(span for span in record_spans(finished_file) if span.chunks > 1)
    cut = tmp_path / "cut.wandb"
    cut.write_bytes(data[: multi_chunk.start + BLOCK_SIZE // 2])

    with pytest.raises(TruncatedWandbFileError, match=r"cut\.wandb: file ends inside"):
        read_records(cut)
    with pytest.raises(TimeoutError, match="truncated"):
        wait_for_exit(cut, timeout=0.1)


def test_a_flipped_byte_raises_a_checksum_error_with_its_offset(finished_file: Path, tmp_path: Path) -> None:
    data = bytearray(finished_file.read_bytes())
    last = record_spans(finished_file)[-1]
    data[last.end - 1] ^= 0xFF
    bad = tmp_path / "bad.wandb"
    bad.write_bytes(bytes(data))

    with pytest.raises(CorruptWandbFileError, match=rf"checksum mismatch .* at byte offset {last.start}"):
        read_records(bad)
    with pytest.raises(CorruptWandbFileError):
        wait_for_exit(bad, timeout=5)


def test_a_file_that_is_not_a_wandb_log_is_rejected_by_its_header(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.wandb"
    wrong.write_bytes(b"PK\x03\x04 not a wandb file")
    short = tmp_path / "short.wandb"
    short.write_bytes(b":W&B")

    with pytest.raises(CorruptWandbFileError, match=r"not a \.wandb file"):
        read_records(wrong)
    with pytest.raises(TruncatedWandbFileError, match="shorter than the 7-byte header"):
        read_records(short)
    assert issubclass(TruncatedWandbFileError, WandbFileError)
    assert issubclass(CorruptWandbFileError, ValueError)


def test_a_file_without_an_exit_record_times_out_while_waiting(finished_file: Path, tmp_path: Path) -> None:
    spans = record_spans(finished_file)
    assert read_records(finished_file)[-1].WhichOneof("record_type") == "exit"
    unfinished = tmp_path / "unfinished.wandb"
    unfinished.write_bytes(finished_file.read_bytes()[: spans[-1].start])

    with pytest.raises(TimeoutError, match="no exit record"):
        wait_for_exit(unfinished, timeout=0.1)
    assert load_run(unfinished, require_exit=False).exited is False


def test_waiting_for_exit_returns_once_a_growing_file_is_complete(
    finished_file: Path, tmp_path: Path
) -> None:
    data = finished_file.read_bytes()
    growing = tmp_path / "growing.wandb"

    def write_slowly() -> None:
        with growing.open("wb") as fh:
            for start in range(0, len(data), 5000):
                fh.write(data[start : start + 5000])
                fh.flush()
                time.sleep(0.01)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        records = wait_for_exit(growing, timeout=10)
    finally:
        writer.join()

    assert len(records) == len(read_records(finished_file))


def test_fast_settings_keep_an_offline_run_under_a_tenth_of_a_second_after_the_first(offline) -> None:
    durations = []
    for index in range(6):
        started = time.perf_counter()
        run = offline(project="p", id=f"timed-{index}", config={"i": index})
        run.log({"loss": 0.1})
        run.summary["done"] = True
        run.finish()
        durations.append(time.perf_counter() - started)

    assert statistics.median(durations[1:]) < 0.1, durations
    assert len(find_run_files(offline.root)) == 6


def test_the_folders_of_one_resumed_run_merge_with_later_values_winning(offline) -> None:
    first = offline(project="p", id="merged", name="one", tags=["t1"], config={"a": {"x": 1, "y": 1}})
    first.summary.update({"score": 0.1, "kept": 1.0})
    first.finish()
    second = offline(project="p", id="merged", resume="allow", config={"a": {"y": 2}, "b": 3})
    second.summary.update({"score": 0.2})
    second.finish()

    merged = load_merged_run(offline.root, "merged")

    assert merged is not None
    assert merged.config == {"a": {"x": 1, "y": 2}, "b": 3}
    assert merged.user_summary == {"score": 0.2, "kept": 1.0}
    assert (merged.name, merged.tags) == ("one", ["t1"])
    assert load_merged_run(offline.root, "no-such-run") is None


def test_logged_artifacts_tell_where_the_sdk_staged_each_file(offline, tmp_path: Path) -> None:
    source = tmp_path / "payload.txt"
    source.write_text("staged body")
    run = offline(project="p", id="staged")
    artifact = wandb.Artifact("payload", type="evaluation")
    artifact.add_file(str(source))
    run.log_artifact(artifact)
    run.finish()

    logged = load_run(offline.root).artifacts[0]

    staged = Path(logged["local_paths"]["payload.txt"])
    assert staged != source and staged.read_text() == "staged body"
