"""Staging scans every text file for secrets, streamed, and never follows links or opens special files.

Real files in tmp_path; the concurrency test runs real processes.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from evalport.adapters.staging import CHUNK_BYTES, StageResult, place_file, stage_item
from evalport.domain.model import TaskResult
from evalport.domain.ports import ExportItem

TOKEN = "nvapi-CANARY_r2Xb9kLmQ4tYz7Wv1Pc3Nd5Ef8Gh0"
PEM_BODY = [f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{i:02d}CANARY" for i in range(40)]
PEM = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END PRIVATE KEY-----\n"


def _result(job_id: str = "inv1.0") -> TaskResult:
    return TaskResult(job_id, "inv1", "mmlu", "simple_evals", "m", "local", ())


def _job(tmp_path: Path, files: dict[str, bytes | str]) -> ExportItem:
    job = tmp_path / "job"
    for rel, content in files.items():
        path = job / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return _item(job, files)


def _item(job: Path, rels) -> ExportItem:
    arts = tuple(r.removeprefix("artifacts/") for r in rels if r.startswith("artifacts/"))
    logs = tuple(r.removeprefix("logs/") for r in rels if r.startswith("logs/"))
    return ExportItem(_result(), job, arts, logs)


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "rel",
    [
        "artifacts/report.html",
        "logs/slurm-123.out",
        "logs/requests.jsonl",
        "logs/stdout",
        "artifacts/progress",
    ],
)
def test_a_secret_in_a_text_file_of_any_name_is_masked(tmp_path, rel):
    item = _job(tmp_path, {rel: f"<p>calling with key {TOKEN}</p>\nline two\n"})
    out = tmp_path / "out"
    result = stage_item(item, out)
    assert result.files == (rel,) and result.withheld == ()
    staged = (out / rel).read_text()
    assert "CANARY" not in staged and staged.endswith("</p>\nline two\n")


def test_a_file_with_no_secret_is_an_independent_copy_never_a_link_to_the_jobs_file(tmp_path):
    item = _job(tmp_path, {"artifacts/results.yml": "results:\n  score: 0.5\n"})
    out = tmp_path / "out"
    stage_item(item, out)
    source, copy = tmp_path / "job/artifacts/results.yml", out / "artifacts/results.yml"
    assert copy.read_bytes() == source.read_bytes()
    assert copy.stat().st_ino != source.stat().st_ino and source.stat().st_nlink == 1
    copy.write_text("edited by hand\n")
    assert source.read_text() == "results:\n  score: 0.5\n"


def test_a_masked_copy_keeps_its_sources_mtime_so_a_second_staging_changes_nothing(tmp_path):
    item = _job(tmp_path, {"artifacts/run_config.yml": f"api_key: {TOKEN}\n"})
    out = tmp_path / "out"
    assert stage_item(item, out).changed == 1
    assert stage_item(item, out) == StageResult(("artifacts/run_config.yml",), 0, ())


def test_a_pem_block_straddling_a_chunk_boundary_of_a_big_log_is_masked(tmp_path):
    filler = "".join(f"{i:08d} [I] request ok status=200 padding padding padding\n" for i in range(30_000))
    head = filler[: CHUNK_BYTES - 300]
    head = head[: head.rfind("\n") + 1]
    text = head + PEM + filler + "tail line\n"
    assert len(head) < CHUNK_BYTES < len(head) + len(PEM) and len(text) > 2 * CHUNK_BYTES
    item = _job(tmp_path, {"logs/server.log": text})
    out = tmp_path / "out"
    stage_item(item, out)
    staged = (out / "logs/server.log").read_text()
    assert "CANARY" not in staged
    assert staged == head + "***\n" + filler + "tail line\n"


@pytest.mark.parametrize("chunk", [64, 100, 257, 4096])
def test_multi_line_secrets_are_masked_whatever_the_chunk_size(tmp_path, chunk):
    text = (
        "line\n" * 20
        + PEM
        + "x: 1\nprivate_key: |\n  first CANARY\n\n  second CANARY\nnext: 2\n"
        + '{"credentials": {\n  "a": "CANARY",\n  "b": ["CANARY"]\n}, "model": "m"}\n'
        + "hf_token:\n  value: CANARY\n"
    )
    src, dst = tmp_path / "in.log", tmp_path / "out.log"
    src.write_text(text)
    assert place_file(src, dst, src.stat(), chunk_bytes=chunk) is None
    staged = dst.read_text()
    assert "CANARY" not in staged
    assert "x: 1\nprivate_key: |\n  ***\nnext: 2\n" in staged and ', "model": "m"}\n' in staged


def test_a_log_that_is_not_utf8_is_scanned_and_its_other_bytes_are_kept(tmp_path):
    raw = b"caf\xe9 \xff\xfe latin-1 line\nexport HF_TOKEN=plaincanary42 \xe9t\xe9\n\x80 end\n"
    item = _job(tmp_path, {"logs/client.log": raw})
    out = tmp_path / "out"
    stage_item(item, out)
    assert (out / "logs/client.log").read_bytes() == raw.replace(b"plaincanary42", b"***")


def test_a_text_file_bigger_than_64_mib_is_scanned(tmp_path):
    src = tmp_path / "job" / "logs" / "huge.log"
    src.parent.mkdir(parents=True)
    line = b"0123456789 request done status=200 " * 3 + b"\n"
    with src.open("wb") as f:
        f.write(line * ((65 << 20) // len(line)))
        f.write(f"api_key={TOKEN}\n".encode())
    out = tmp_path / "out"
    stage_item(_item(tmp_path / "job", ["logs/huge.log"]), out)
    staged = out / "logs/huge.log"
    with staged.open("rb") as f:
        f.seek(-200, os.SEEK_END)
        assert f.read().endswith(b"\napi_key=***\n")
    assert staged.stat().st_size == src.stat().st_size - len(TOKEN) + 3


def test_a_binary_file_is_placed_as_it_is(tmp_path):
    data = b"\x00\x01binary api_key=" + TOKEN.encode() + b"\x00" * 100
    item = _job(tmp_path, {"artifacts/model.bin": data})
    out = tmp_path / "out"
    assert stage_item(item, out).withheld == ()
    assert (out / "artifacts/model.bin").read_bytes() == data


def test_a_file_with_a_line_too_long_to_scan_is_withheld_and_named(tmp_path):
    item = _job(tmp_path, {"logs/one-line.json": '{"a": "' + "x" * 5000 + f'", "api_key": "{TOKEN}"}}'})
    out = tmp_path / "out"
    result = stage_item(item, out, chunk_bytes=512, max_line_bytes=2048)
    assert result.files == ()
    [(rel, why)] = result.withheld
    assert rel == "logs/one-line.json" and "line longer than 2048 bytes" in why
    assert not (out / "logs/one-line.json").exists()
    assert not [p for p in out.rglob("*") if p.is_file()], "nothing partial is left"


def test_a_file_already_staged_and_now_withheld_is_removed_from_the_folder(tmp_path):
    item = _job(tmp_path, {"logs/a.log": "ok\n"})
    out = tmp_path / "out"
    stage_item(item, out)
    (tmp_path / "job/logs/a.log").unlink()
    os.mkfifo(tmp_path / "job/logs/a.log")
    result = stage_item(item, out)
    assert result.withheld == (("logs/a.log", "a FIFO, not a regular file"),)
    assert not (out / "logs/a.log").exists()


@pytest.mark.timeout(20)
def test_a_fifo_in_the_job_dir_is_skipped_with_a_note_and_never_blocks(tmp_path):
    item = _job(tmp_path, {"artifacts/results.yml": "score: 1\n", "logs/client.log": "ok\n"})
    os.mkfifo(tmp_path / "job/logs/stage.exit")
    os.mkfifo(tmp_path / "job/artifacts/eval_factory_metrics.json")
    item = _item(
        tmp_path / "job",
        [
            "artifacts/results.yml",
            "artifacts/eval_factory_metrics.json",
            "logs/client.log",
            "logs/stage.exit",
        ],
    )
    out = tmp_path / "out"
    result = stage_item(item, out)
    assert result.files == ("artifacts/results.yml", "logs/client.log")
    assert dict(result.withheld) == {
        "artifacts/eval_factory_metrics.json": "a FIFO, not a regular file",
        "logs/stage.exit": "a FIFO, not a regular file",
    }


@pytest.mark.timeout(20)
def test_place_file_on_a_fifo_opens_it_without_blocking_and_refuses_it(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert place_file(fifo, tmp_path / "out", os.lstat(fifo)) == "a FIFO, not a regular file"


def test_a_logs_folder_that_links_outside_the_job_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secrets.log").write_text("private data\n")
    item = _job(tmp_path, {"artifacts/results.yml": "score: 1\n"})
    (tmp_path / "job/logs").symlink_to(outside, target_is_directory=True)
    item = _item(tmp_path / "job", ["artifacts/results.yml", "logs/secrets.log"])
    out = tmp_path / "out"
    result = stage_item(item, out)
    assert result.files == ("artifacts/results.yml",)
    assert result.withheld == (("logs/secrets.log", "logs is a symbolic link (not followed)"),)
    assert b"private data" not in _all_bytes(out)


def test_a_linked_log_file_is_not_followed(tmp_path):
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("private data\n")
    item = _job(tmp_path, {"logs/real.log": "ok\n"})
    (tmp_path / "job/logs/linked.log").symlink_to(outside)
    item = _item(tmp_path / "job", ["logs/linked.log", "logs/real.log"])
    out = tmp_path / "out"
    result = stage_item(item, out)
    assert result.files == ("logs/real.log",)
    assert result.withheld == (("logs/linked.log", "a symbolic link (not followed)"),)
    assert not os.path.lexists(out / "logs/linked.log")


def test_a_path_that_leaves_the_job_dir_is_withheld(tmp_path):
    (tmp_path / "secret.txt").write_text("private data\n")
    item = _job(tmp_path, {"logs/ok.log": "ok\n"})
    item = ExportItem(_result(), tmp_path / "job", (), ("../../secret.txt", "ok.log"))
    out = tmp_path / "out"
    result = stage_item(item, out)
    assert result.files == ("logs/ok.log",)
    assert result.withheld == (("logs/../../secret.txt", "its path leaves the job directory"),)


def test_a_selected_file_that_vanished_fails_the_staging_naming_it(tmp_path):
    item = _job(tmp_path, {"artifacts/results.yml": "score: 1\n"})
    (tmp_path / "job/artifacts/results.yml").unlink()
    with pytest.raises(FileNotFoundError) as caught:
        stage_item(item, tmp_path / "out")
    assert caught.value.filename.endswith("artifacts/results.yml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_withheld(tmp_path):
    item = _job(tmp_path, {"logs/locked.log": "x\n"})
    (tmp_path / "job/logs/locked.log").chmod(0)
    result = stage_item(item, tmp_path / "out")
    assert result.withheld == (("logs/locked.log", "cannot read it: Permission denied"),)


def _stage_in_process(job: str, out: str, start, rounds: int) -> None:
    item = _item(Path(job), sorted(str(p.relative_to(job)) for p in Path(job).rglob("*") if p.is_file()))
    start.wait()
    for _ in range(rounds):
        stage_item(item, Path(out))
        # a source rewritten (new mtime) is staged again: keep the processes racing on every round
        os.utime(Path(job) / "logs/client_stdout.log")


@pytest.mark.timeout(120)
def test_eight_processes_staging_the_same_job_into_one_folder_leave_only_complete_files(tmp_path):
    lines = "".join(
        f"{i:06d} [I] request ok api_key={TOKEN}\n"
        if i % 100 == 0
        else f"{i:06d} [I] request ok status=200\n"
        for i in range(20_000)
    )
    files = {f"logs/worker-{k}.log": lines for k in range(4)}
    files.update({f"artifacts/plain-{k}.txt": "no secret here\n" * 20_000 for k in range(4)})
    files["logs/client_stdout.log"] = lines
    item = _job(tmp_path, files)
    out = tmp_path / "out"
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(8)
    procs = [
        ctx.Process(target=_stage_in_process, args=(str(item.directory), str(out), start, 3))
        for _ in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(100)
    assert [p.exitcode for p in procs] == [0] * 8
    left = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert left == sorted(Path(rel).name for rel in files)
    expected_log = lines.replace(TOKEN, "***")
    for rel, content in files.items():
        assert (out / rel).read_text() == (expected_log if rel.startswith("logs/") else content), rel
