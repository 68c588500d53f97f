"""Every reader of another harness's output runs the ReaderContract on real files.

The files are the harnesses' own output, made by tests/data/harnesses/make.sh; the expected values
are taken from the raw files at the JSON paths docs/formats/*.md documents, never typed in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalport.testing import ReaderContract
from evalport.testing.reader_contract import Expected, copy_tree

DATA = Path(__file__).resolve().parents[1] / "data" / "harnesses"
UNICODE_TASK = "tâche_ünï"


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


class TestLmEvalReader(ReaderContract):
    reader_name = "lm_eval"

    @pytest.fixture
    def example(self, tmp_path):
        return copy_tree(DATA / "lm_eval", tmp_path)

    @pytest.fixture
    def expected(self, example):
        (results_file,) = example.glob("*/results_*.json")
        raw = json.loads(results_file.read_text(encoding="utf-8"))["results"]
        stamp = results_file.stem.removeprefix("results_")
        samples = {
            task: _lines(results_file.with_name(f"samples_{task}_{stamp}.jsonl"))
            for task in ("tiny_gen", "tiny_mc", UNICODE_TASK)
        }
        return Expected(
            metrics={
                "tiny_gen": {
                    "tiny_gen_exact_match_strict-match": raw["tiny_gen"]["exact_match,strict-match"],
                    "tiny_gen_exact_match_strict-match_stderr": raw["tiny_gen"][
                        "exact_match_stderr,strict-match"
                    ],
                    "tiny_gen_exact_match_flexible-extract": raw["tiny_gen"]["exact_match,flexible-extract"],
                },
                "tiny_mc": {"tiny_mc_acc": raw["tiny_mc"]["acc,none"]},
                "tiny_suite": {"tiny_suite_acc": raw["tiny_suite"]["acc,none"]},
                UNICODE_TASK: {f"{UNICODE_TASK}_acc": raw[UNICODE_TASK]["acc,none"]},
            },
            samples={**samples, "tiny_suite": 0},
            unicode_task=UNICODE_TASK,
        )


def _inspect_log():
    return pytest.importorskip("inspect_ai.log", reason="the Inspect reader needs evalport[inspect]")


class TestInspectReader(ReaderContract):
    reader_name = "inspect"

    @pytest.fixture(autouse=True)
    def _needs_inspect_ai(self):
        _inspect_log()

    @pytest.fixture
    def example(self, tmp_path):
        folder = tmp_path / "logs"
        folder.mkdir()
        for log in (*DATA.glob("inspect/*_tiny-qa_*.eval"), *DATA.glob("inspect/*_tâche-ünï_*.json")):
            shutil.copy2(log, folder)
        return folder

    @pytest.fixture
    def failed_example(self, tmp_path):
        folder = tmp_path / "failed"
        folder.mkdir()
        for log in DATA.glob("inspect/*_tiny-fail_*.json"):
            shutil.copy2(log, folder)
        return folder

    def samples_file(self, example, result):
        return example / result.artifacts[0]

    @pytest.fixture
    def expected(self, example):
        read = _inspect_log().read_eval_log
        (eval_log,) = example.glob("*.eval")
        header = read(str(eval_log))
        by_scorer = {s.name: s.metrics for s in header.results.scores}
        (json_log,) = example.glob("*.json")
        raw = json.loads(json_log.read_text(encoding="utf-8"))
        unicode_scores = raw["results"]["scores"][0]
        return Expected(
            metrics={
                "tiny_qa": {
                    "tiny_qa_match_accuracy": by_scorer["match"]["accuracy"].value,
                    "tiny_qa_match_accuracy_stderr": by_scorer["match"]["stderr"].value,
                    "tiny_qa_includes_accuracy": by_scorer["includes"]["accuracy"].value,
                },
                UNICODE_TASK: {
                    f"{UNICODE_TASK}_includes_accuracy": unicode_scores["metrics"]["accuracy"]["value"],
                },
            },
            samples={"tiny_qa": len(header.samples), UNICODE_TASK: len(raw["samples"])},
            unicode_task=UNICODE_TASK,
        )


class TestNemoEngineReader(ReaderContract):
    reader_name = "nemo_engine"

    @pytest.fixture
    def example(self, tmp_path):
        return copy_tree(DATA / "nemo_engine" / "run-ok", tmp_path)

    @pytest.fixture
    def failed_example(self, tmp_path):
        return copy_tree(DATA / "nemo_engine" / "run-failed", tmp_path)

    @pytest.fixture
    def expected(self, example):
        (bundle,) = example.glob("*/eval-*.json")
        scores = json.loads(bundle.read_text(encoding="utf-8"))["benchmark"]["scores"]
        return Expected(
            metrics={
                "tiny-qa": {
                    "tiny-qa_pass@1": scores["pass@1"]["value"],
                    "tiny-qa_pass@1_bootstrap_ci_lower": scores["pass@1"]["bootstrap_ci_lower"],
                    "tiny-qa_pass@1_bootstrap_ci_upper": scores["pass@1"]["bootstrap_ci_upper"],
                    "tiny-qa_summary_mean": scores["summary"]["mean"],
                }
            },
            samples={"tiny-qa": _lines(bundle.with_name("results.jsonl"))},
        )
