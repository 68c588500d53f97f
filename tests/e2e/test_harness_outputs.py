"""Each harness, run fresh and offline in a tmp dir (tests/data/harnesses/make.sh), is read back.

The venvs come from .ci/setup.d/40-harnesses.sh; a harness without one is skipped with the reason.
Expected values come from the raw files the run wrote, at the documented JSON paths.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from evalport.adapters.formats.detect import detect, reader
from evalport.domain.model import JobState

ROOT = Path(__file__).resolve().parents[2]
MAKE = ROOT / "tests" / "data" / "harnesses" / "make.sh"
BUILD = Path(os.environ.get("EVALPORT_HARNESS_BUILD", ROOT / "build" / "harnesses"))
VENVS = {"lm_eval": "venv-lmeval", "inspect": "venv-inspect", "nemo_engine": "venv-nemo"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def run_harness(name: str, out: Path) -> Path:
    venv = BUILD / VENVS[name]
    if not (venv / ".complete").exists():
        log = BUILD / "setup.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        pytest.skip(f"{venv} is not built (run .ci/setup.d/40-harnesses.sh); " + " | ".join(tail))
    done = subprocess.run(
        ["bash", str(MAKE), "run", name, str(out)],
        capture_output=True,
        text=True,
        timeout=540,
        env={**os.environ, "EVALPORT_HARNESS_BUILD": str(BUILD)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_a_fresh_lm_eval_run_is_read_with_its_values_and_samples(tmp_path):
    out = run_harness("lm_eval", tmp_path / "lm")
    assert detect(out) == "lm_eval"
    lm_eval = reader("lm_eval")
    results = {r.task: r for r in lm_eval.read(out)}
    (results_file,) = out.glob("*/results_*.json")
    raw = json.loads(results_file.read_text(encoding="utf-8"))
    gen = results["tiny_gen"].flat_metrics()
    assert gen["tiny_gen_exact_match_strict-match"] == raw["results"]["tiny_gen"]["exact_match,strict-match"]
    assert (
        gen["tiny_gen_exact_match_flexible-extract"]
        == raw["results"]["tiny_gen"]["exact_match,flexible-extract"]
    )
    assert results["tiny_gen"].model_id == raw["model_name"]
    effective = raw["n-samples"]["tiny_mc"]["effective"]
    assert len(list(lm_eval.samples(results["tiny_mc"], out))) == effective
    assert [r.job_id for r in lm_eval.read(out)] == [r.job_id for r in lm_eval.read(out)]


def test_a_fresh_inspect_run_is_read_including_its_failed_log(tmp_path):
    pytest.importorskip("inspect_ai.log", reason="reading Inspect logs needs evalport[inspect]")
    out = run_harness("inspect", tmp_path / "logs")
    assert detect(out) == "inspect"
    inspect = reader("inspect")
    results = inspect.read(out)
    states = sorted(r.state.value for r in results)
    assert states == ["failed", "succeeded", "succeeded", "succeeded"]
    for log_file in out.glob("*.json"):
        raw = json.loads(log_file.read_text(encoding="utf-8"))
        (result,) = [r for r in results if r.artifacts == (log_file.name,)]
        assert result.task == raw["eval"]["task"] and result.model_id == raw["eval"]["model"]
        for score in raw.get("results", {}).get("scores", []):
            value = score["metrics"]["accuracy"]["value"]
            assert result.flat_metrics()[f"{result.task}_{score['name']}_accuracy"] == value
        assert len(list(inspect.samples(result, out))) == len(raw["samples"])


def test_a_fresh_engine_run_is_read_with_its_bundle_and_rows_and_its_failed_benchmark(tmp_path):
    out = run_harness("nemo_engine", tmp_path / "nel")
    engine = reader("nemo_engine")
    assert detect(out / "run-ok") == "nemo_engine"
    (result,) = engine.read(out / "run-ok")
    (bundle,) = (out / "run-ok").glob("*/eval-*.json")
    raw = json.loads(bundle.read_text(encoding="utf-8"))
    assert result.flat_metrics()["tiny-qa_pass@1"] == raw["benchmark"]["scores"]["pass@1"]["value"]
    assert result.model_id == raw["config"]["model"] == "stub-model"
    assert len(list(engine.samples(result, out / "run-ok"))) == raw["n_results"]
    (failed,) = engine.read(out / "run-failed")
    assert failed.state is JobState.FAILED and "missing.jsonl" in failed.notes[0]
