"""Other harnesses' output folders as sources: ``--job-dir`` (and ``ls``, ``show``, ``report``,
``watch``) read lm-evaluation-harness, Inspect and NeMo Evaluator engine folders like job directories.

The folders are the real example outputs in tests/data/harnesses (made by its make.sh).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from evalport.adapters.formats.detect import reader
from evalport.app.cli import main
from evalport.app.container import build_container
from evalport.app.request import ExportRequest

DATA = Path(__file__).resolve().parents[1] / "data" / "harnesses"
LM_EVAL = DATA / "lm_eval" / "run-suite"
INSPECT = DATA / "inspect"
ENGINE_OK = DATA / "nemo_engine" / "run-ok"
NO_DB = "/nonexistent/exec.v1.jsonl"


@pytest.fixture(autouse=True)
def _own_state(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALPORT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def lm_eval(tmp_path) -> Path:
    return Path(shutil.copytree(LM_EVAL, tmp_path / "lm-eval-out"))


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args] + ["--exec-db", NO_DB])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listed(capsys, *folders: Path, extra: tuple[str, ...] = ()) -> list[dict]:
    args: list[object] = ["ls", "--json", *extra]
    for folder in folders:
        args += ["--job-dir", folder]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return json.loads(out)


def job_ids(listing: list[dict]) -> set[str]:
    return {job["job_id"] for inv in listing for job in inv["jobs"]}


def runs_in(out: Path) -> list[dict]:
    """The entries of the local sink's multi-run summary."""
    return json.loads((out / "results.json").read_text())["runs"]


def lm_eval_results_doc(folder: Path) -> dict:
    (results_file,) = folder.rglob("results_*.json")
    return json.loads(results_file.read_text())


def test_ls_lists_a_job_per_task_of_each_harness_folder_with_ids_from_their_content(capsys, tmp_path):
    listing = listed(capsys, LM_EVAL, INSPECT, ENGINE_OK)
    expected = {
        r.job_id
        for name, f in [("lm_eval", LM_EVAL), ("inspect", INSPECT), ("nemo_engine", ENGINE_OK)]
        for r in reader(name).read(f)
    }
    assert job_ids(listing) == expected
    tasks = {job["task"] for inv in listing for job in inv["jobs"]}
    assert set(lm_eval_results_doc(LM_EVAL)["results"]) <= tasks
    moved = shutil.copytree(LM_EVAL, tmp_path / "elsewhere" / "copy")
    assert job_ids(listed(capsys, moved)) == job_ids(listed(capsys, LM_EVAL)), "same content, same ids"


def test_an_lm_eval_folder_exports_to_local_with_its_values_and_files(capsys, tmp_path, lm_eval):
    out = tmp_path / "out"
    code, _, err = run(capsys, "export", "--job-dir", lm_eval, "--dest", "local", "--output-dir", out)
    assert code == 0, err
    doc = lm_eval_results_doc(lm_eval)
    by_task = {entry["task"]: entry for entry in runs_in(out)}
    assert set(by_task) == set(doc["results"])
    assert by_task["tiny_mc"]["metrics"]["tiny_mc_acc"] == pytest.approx(
        doc["results"]["tiny_mc"]["acc,none"]
    )
    gen = doc["results"]["tiny_gen"]
    assert by_task["tiny_gen"]["metrics"]["tiny_gen_exact_match_strict-match"] == pytest.approx(
        gen["exact_match,strict-match"]
    )
    assert by_task["tiny_gen"]["metrics"]["tiny_gen_exact_match_flexible-extract"] == pytest.approx(
        gen["exact_match,flexible-extract"]
    )
    job = by_task["tiny_mc"]
    sent = sorted(
        p.name for p in (out / job["invocation_id"] / job["job_id"] / "artifacts").rglob("*") if p.is_file()
    )
    assert any(n.startswith("results_") for n in sent) and any(n.startswith("samples_tiny_mc_") for n in sent)


def test_re_exporting_an_unchanged_harness_folder_is_unchanged_and_a_rewritten_file_updates(
    capsys, tmp_path, lm_eval
):
    args = ("export", "--job-dir", lm_eval, "--dest", "local", "--output-dir", tmp_path / "out", "--json")
    first = json.loads(run(capsys, *args)[1])
    again = json.loads(run(capsys, *args)[1])
    assert first["counts"] == {"exported": 4} and again["counts"] == {"unchanged": 4}
    (results_file,) = lm_eval.rglob("results_*.json")
    doc = json.loads(results_file.read_text())
    doc["results"]["tiny_mc"]["acc,none"] = 0.125
    results_file.write_text(json.dumps(doc))
    os.utime(results_file, ns=(results_file.stat().st_mtime_ns + 10**10,) * 2)
    changed = json.loads(run(capsys, *args)[1])
    assert changed["counts"]["updated"] >= 1
    assert {e["task"]: e for e in runs_in(tmp_path / "out")}["tiny_mc"]["metrics"]["tiny_mc_acc"] == 0.125


def test_a_failed_inspect_log_is_skipped_unless_include_failed(capsys, tmp_path):
    failed = next(r for r in reader("inspect").read(INSPECT) if r.state.value == "failed")
    code, out, err = run(
        capsys, "export", "--job-dir", INSPECT, "--dest", "local", "--output-dir", tmp_path / "a"
    )
    assert code == 0, err
    assert "1 skipped" in out + err
    held = {e["job_id"] for e in runs_in(tmp_path / "a")}
    assert failed.job_id not in held and held
    code, _, err = run(
        capsys,
        "export",
        "--job-dir",
        INSPECT,
        "--dest",
        "local",
        "--output-dir",
        tmp_path / "b",
        "--include-failed",
    )
    assert code == 0, err
    assert failed.job_id in {e["job_id"] for e in runs_in(tmp_path / "b")}


def test_a_folder_no_reader_recognises_is_a_usage_error_naming_what_each_looked_for(capsys, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("nothing here")
    code, _, err = run(capsys, "export", "--job-dir", tmp_path / "notes", "--dest", "local")
    assert code == 2
    for name in ("nemo_evaluator", "lm_eval", "inspect", "nemo_engine"):
        assert f"{name}:" in err
    assert "results_<timestamp>.json" in err and "--reader" in err


def test_reader_forces_the_format_and_a_wrong_one_says_what_it_looked_for(capsys, lm_eval):
    assert job_ids(listed(capsys, lm_eval, extra=("--reader", "lm_eval"))) == {
        r.job_id for r in reader("lm_eval").read(lm_eval)
    }
    code, _, err = run(capsys, "ls", "--job-dir", lm_eval, "--reader", "inspect")
    assert code == 2 and "Inspect" in err and str(lm_eval) in err
    code, _, err = run(capsys, "ls", "--job-dir", lm_eval, "--reader", "lm-evil")
    assert code == 2 and "no such reader" in err and "lm_eval" in err


def test_a_config_reader_key_forces_the_format_too(capsys, tmp_path, lm_eval):
    config = tmp_path / "export.yaml"
    config.write_text("reader: inspect\ndestinations: [local]\n")
    code, _, err = run(
        capsys, "export", "--job-dir", lm_eval, "--config", config, "--output-dir", tmp_path / "o"
    )
    assert code == 2 and "Inspect" in err


def test_a_launcher_job_dir_and_harness_folders_export_together(capsys, tmp_path, home, lm_eval):
    job = home.jobs[0]
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        "export",
        "--job-dir",
        job.directory,
        "--job-dir",
        lm_eval,
        "--job-dir",
        ENGINE_OK,
        "--dest",
        "local",
        "--output-dir",
        out,
    )
    assert code == 0, err
    expected = {job.job_id} | {r.job_id for r in reader("lm_eval").read(lm_eval)}
    expected |= {r.job_id for r in reader("nemo_engine").read(ENGINE_OK)}
    assert {e["job_id"] for e in runs_in(out)} == expected


def test_a_symlinked_file_in_a_harness_folder_fails_that_job_and_the_others_export(capsys, tmp_path, lm_eval):
    (samples,) = lm_eval.rglob("samples_tiny_mc_*.jsonl")
    secret = tmp_path / "secret.jsonl"
    secret.write_text(samples.read_text())
    samples.unlink()
    samples.symlink_to(secret)
    out = tmp_path / "out"
    code, printed, _ = run(
        capsys, "export", "--job-dir", lm_eval, "--dest", "local", "--output-dir", out, "--json"
    )
    assert code == 1
    (failed,) = [o for o in json.loads(printed)["outcomes"] if o["status"] == "failed"]
    assert samples.name in failed["reason"] and "not a regular file" in failed["reason"]
    held = {e["task"] for e in runs_in(out)}
    assert "tiny_mc" not in held and "tiny_gen" in held
    assert not list(out.rglob("secret.jsonl")) and not [p for p in out.rglob("*") if p.is_symlink()]


def test_results_read_through_the_container_carry_their_samples(lm_eval):
    service = build_container(job_dirs=[lm_eval], source_kind="job_dirs", ledger=False).service()
    results, report = service.read_results(ExportRequest(ids=[], include_failed=True))
    assert not report.problems
    by_task = {r.task: r for r in results}
    expected = sum(1 for line in next(lm_eval.rglob("samples_tiny_mc_*.jsonl")).open() if line.strip())
    assert by_task["tiny_mc"].samples is not None
    assert sum(1 for _ in by_task["tiny_mc"].samples()) == expected


def test_watch_once_exports_a_harness_folder(capsys, tmp_path, lm_eval):
    code, out, err = run(
        capsys, "watch", "--once", "--job-dir", lm_eval, "--dest", "local", "--output-dir", tmp_path / "w"
    )
    assert code == 0, err
    assert out.count("-> local: exported") == 4


def test_report_compares_harness_folders(capsys, tmp_path, lm_eval):
    code, out, err = run(
        capsys, "report", "--job-dir", lm_eval, "--job-dir", INSPECT, "--format", "md", "--output", "-"
    )
    assert code == 0, err
    assert "acme/dummy-7b" in out and "mockllm/model" in out and "tiny\\_mc" in out


def test_an_lm_eval_folder_exports_to_mlflow_with_its_values(capsys, tmp_path, lm_eval, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # the sqlite store keeps its artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, _, err = run(
        capsys,
        "export",
        "--job-dir",
        lm_eval,
        "--dest",
        "mlflow",
        "-o",
        f"tracking_uri={uri}",
        "-o",
        "experiment_name=harnesses",
    )
    assert code == 0, err
    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "harnesses"]
    runs = client.search_runs([experiment.experiment_id])
    doc = lm_eval_results_doc(lm_eval)
    assert len(runs) == len(doc["results"])
    mc = next(r for r in runs if r.data.tags.get("task") == "tiny_mc")
    assert mc.data.metrics["tiny_mc_acc"] == pytest.approx(doc["results"]["tiny_mc"]["acc,none"])
    files = {f.path for f in client.list_artifacts(mc.info.run_id, "artifacts")}
    assert any(Path(f).name.startswith("results_") for f in files)


def test_the_python_api_exports_harness_folders_and_takes_a_reader(tmp_path, lm_eval):
    import evalport

    report = evalport.export(
        [], "local", {"local": {"output_dir": str(tmp_path / "api")}}, job_dirs=[lm_eval]
    )
    assert report.counts() == {"exported": 4}
    from evalport.domain.errors import UsageError

    with pytest.raises(UsageError, match="no such reader"):
        evalport.export([], "local", job_dirs=[lm_eval], reader="lm-evil")


def test_a_symlinked_results_file_is_not_read_and_the_error_names_it(capsys, tmp_path, lm_eval):
    (results_file,) = lm_eval.rglob("results_*.json")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(results_file.read_bytes())
    results_file.unlink()
    results_file.symlink_to(elsewhere)
    code, _, err = run(capsys, "ls", "--job-dir", lm_eval)
    assert code == 2
    assert results_file.name in err and "symbolic link" in err


def test_a_results_file_over_the_size_limit_is_an_error_naming_the_limit(capsys, lm_eval, monkeypatch):
    (results_file,) = lm_eval.rglob("results_*.json")
    monkeypatch.setenv("EVALPORT_JSON_MAX_BYTES", str(results_file.stat().st_size - 1))
    code, _, err = run(capsys, "ls", "--job-dir", lm_eval)
    assert code == 2
    assert results_file.name in err and "EVALPORT_JSON_MAX_BYTES" in err


def test_a_samples_line_over_the_limit_fails_that_jobs_samples_naming_the_line(lm_eval, monkeypatch):
    from evalport.domain.errors import ResultError

    (samples,) = lm_eval.rglob("samples_tiny_mc_*.jsonl")
    longest = max(len(line) for line in samples.read_bytes().splitlines(keepends=True))
    monkeypatch.setenv("EVALPORT_JSONL_MAX_LINE_BYTES", str(longest - 1))
    (result,) = [r for r in reader("lm_eval").read(lm_eval) if r.task == "tiny_mc"]
    assert result.samples is not None
    with pytest.raises(ResultError, match=r"line \d+ is over .* EVALPORT_JSONL_MAX_LINE_BYTES") as caught:
        list(result.samples())
    assert samples.name in str(caught.value)


def test_a_symlinked_samples_file_is_never_read_for_samples(tmp_path, lm_eval):
    from evalport.domain.errors import ResultError

    (samples,) = lm_eval.rglob("samples_tiny_mc_*.jsonl")
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(samples.read_bytes())
    samples.unlink()
    samples.symlink_to(outside)
    (result,) = [r for r in reader("lm_eval").read(lm_eval) if r.task == "tiny_mc"]
    assert result.samples is not None
    with pytest.raises(ResultError, match="symbolic link"):
        list(result.samples())


def test_a_truncated_inspect_log_fails_alone_and_the_folders_other_logs_export(capsys, tmp_path):
    logs = Path(shutil.copytree(INSPECT, tmp_path / "logs"))
    broken = sorted(logs.glob("*tiny-qa*.json"))[0]
    broken.write_bytes(broken.read_bytes()[:200])
    out = tmp_path / "out"
    code, _, err = run(capsys, "export", "--job-dir", logs, "--dest", "local", "--output-dir", out)
    assert code == 1
    assert broken.name in err
    exported = {e["task"] for e in runs_in(out)}
    assert exported and len(exported) >= 2
