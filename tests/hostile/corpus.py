"""The hostile corpus: a launcher home of good jobs full of planted secrets and one bad job per hostile input.

Built in a temporary folder with the project's own factory (stdlib + PyYAML only), in about a
second. Each job carries an explicit :class:`Expect`:

- ``GOOD``: must be exported to every destination, with its secrets masked;
- ``BAD``: must not be exported, and some message must name the job and the file (and for an
  execution-DB record, the file and line);
- ``NAMED``: a special file or a symlink in an otherwise good job: exported or not, the output names
  the job and the file (special files are skipped "with a note");
- ``CONTAINED``: ids made to escape the output folder: exported (inside it) or refused, never
  written outside.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalport.testing.canaries import Canaries, deep_merge, plant_in_job, secret_config
from evalport.testing.factory import BASE_EPOCH, WrittenJob, run_config, write_job

GOOD, BAD, NAMED, CONTAINED = "good", "bad", "named", "contained"
EXEC_DB_NAME = "exec.v1.jsonl"
MIB = 1024 * 1024
PARTS = ("bad_results", "odd_names", "special_files", "bad_records", "escaping_ids")


@dataclass(frozen=True)
class Expect:
    """What must happen to one job of the corpus."""

    job_id: str
    kind: str
    why: str
    names: str = ""  # a substring of the file that the job's message must name
    line: int | None = None  # the execution-DB line, for a bad record
    job: WrittenJob | None = None

    @property
    def directory(self) -> Path | None:
        return self.job.directory if self.job else None

    def refs(self) -> list[str]:
        """Ways a message may name this job: its id, its directory, or its execution-DB line."""
        out = [self.job_id]
        if self.job is not None:
            out += [str(self.job.directory), f"{self.job.directory.parent.name}/{self.job.directory.name}"]
        if self.line is not None:
            out.append(f"{EXEC_DB_NAME}:{self.line}")
        return out


@dataclass
class HostileCorpus:
    root: Path
    exec_db: Path
    results_root: Path
    outside: Path
    canaries: Canaries
    expectations: list[Expect] = field(default_factory=list)
    auto_export_dir: Path | None = None

    def ids(self) -> list[str]:
        return [e.job_id for e in self.expectations]

    def of(self, *kinds: str) -> list[Expect]:
        return [e for e in self.expectations if e.kind in kinds]


class _Builder:
    def __init__(
        self, root: Path, output_dir: Path, sentinel: Path, seed: int, big_results_mb: int, big_log_mib: int
    ) -> None:
        self.rng = random.Random(seed)
        self.root = root
        self.results_root = root / "nel-results"
        self.exec_db = root / ".nemo-evaluator" / "exec-db" / EXEC_DB_NAME
        self.outside = root / "outside"
        self.output_dir = output_dir
        self.sentinel = sentinel
        self.big_results_mb = big_results_mb
        self.big_log_mib = big_log_mib
        self.canaries = Canaries(seed)
        self.records: list[dict[str, Any]] = []
        self.expect: list[Expect] = []
        self.auto_export_dir: Path | None = None
        self._inv_count = 0

    # -- helpers ----------------------------------------------------------------------------------
    def invocation(self) -> tuple[str, Path, float]:
        inv = f"{self.rng.getrandbits(64):016x}"
        ts = BASE_EPOCH + self._inv_count * 3600
        self._inv_count += 1
        return (
            inv,
            self.results_root / f"{datetime.fromtimestamp(ts, tz=timezone.utc):%Y%m%d_%H%M%S}-{inv}",
            ts,
        )

    def job(
        self,
        inv: str,
        inv_dir: Path,
        ts: float,
        index: int,
        task: str,
        model: str,
        tasks: list[str],
        *,
        plant: bool,
        results: dict[str, Any] | None = None,
        big_log_bytes: int = 0,
    ) -> WrittenJob:
        tag = f"{inv}.{index} ({task})"
        config = run_config(model, self.results_root, tasks, secrets=False)
        if plant:
            config = deep_merge(config, secret_config(self.canaries, tag))
        written = write_job(inv_dir, inv, index, task, model, config, self.rng, timestamp=ts, results=results)
        if plant:
            plant_in_job(
                written.directory,
                config,
                self.canaries,
                tag,
                model_id=model,
                task=task,
                big_log_bytes=big_log_bytes,
            )
        return written

    def add(
        self,
        written: WrittenJob,
        kind: str,
        why: str,
        names: str = "",
        record: dict | None = None,
        job_id: str | None = None,
    ) -> Expect:
        self.records.append(record if record is not None else written.record)
        line = len(self.records) if record is not None else None
        expect = Expect(job_id or written.job_id, kind, why, names, line, written)
        self.expect.append(expect)
        return expect

    def results_file(self, written: WrittenJob) -> Path:
        return written.directory / "artifacts" / "results.yml"

    # -- the corpus --------------------------------------------------------------------------------
    def build(self, parts: tuple[str, ...]) -> HostileCorpus:
        for part in parts:
            getattr(self, part)()
        self.exec_db.parent.mkdir(parents=True, exist_ok=True)
        with open(self.exec_db, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(rec) + "\n" for rec in self.records)
        return HostileCorpus(
            self.root,
            self.exec_db,
            self.results_root,
            self.outside,
            self.canaries,
            self.expect,
            self.auto_export_dir,
        )

    def bad_results(self) -> None:
        model = "meta/llama-3.1-8b-instruct"
        inv, inv_dir, ts = self.invocation()
        tasks = ["gpqa_diamond", "gsm8k", "mmlu"]
        good = self.job(inv, inv_dir, ts, 0, tasks[0], model, tasks, plant=True)
        self.add(good, GOOD, "every secret shape planted; shares its invocation with bad result files")
        looped = self.job(inv, inv_dir, ts, 1, tasks[1], model, tasks, plant=True)
        self.results_file(looped).write_text(
            "results:\n  tasks:\n    gsm8k: &loop\n"
            "      metrics: {acc: {scores: {acc: {value: 0.5}}}}\n      groups: {again: *loop}\n"
        )
        self.add(looped, BAD, "results.yml holds a recursive alias", "results.yml")
        huge = self.job(inv, inv_dir, ts, 2, tasks[2], model, tasks, plant=True)
        self.results_file(huge).write_text(
            f"results:\n  tasks:\n    mmlu:\n      metrics:\n        acc:\n          scores:\n"
            f"            acc: {{value: {'7' * 400}, stats: {{stderr: 0.01}}}}\n"
        )
        self.add(huge, BAD, "a metric value of 400 digits", "results.yml")
        self.auto_export_dir = huge.directory

        model = "qwen/qwen2.5-7b-instruct"
        inv, inv_dir, ts = self.invocation()
        tasks = ["hellaswag", "aime_2025", "humaneval", "ifeval", "mmlu_pro"]
        good = self.job(
            inv, inv_dir, ts, 0, tasks[0], model, tasks, plant=True, big_log_bytes=self.big_log_mib * MIB
        )
        self.add(good, GOOD, f"every secret shape, and a {self.big_log_mib} MiB log with a token at its end")
        stderr = self.job(inv, inv_dir, ts, 1, tasks[1], model, tasks, plant=False)
        self.results_file(stderr).write_text(
            "results:\n  tasks:\n    aime_2025:\n      metrics:\n        score:\n          scores:\n"
            f"            micro: {{value: 0.5, stats: {{stderr: {'9' * 400}}}}}\n"
        )
        self.add(stderr, BAD, "a stderr of 400 digits", "results.yml")
        laughs = self.job(inv, inv_dir, ts, 2, tasks[2], model, tasks, plant=False)
        lines = ["l0: &l0 {metrics: {m: {scores: {m: {value: 0.5}}}}}"]
        for level in range(1, 10):
            subs = ", ".join(f"g{k}: *l{level - 1}" for k in range(10))
            lines.append(f"l{level}: &l{level} {{metrics: {{}}, groups: {{{subs}}}}}")
        lines.append("results: {groups: {humaneval: *l9}}")
        self.results_file(laughs).write_text("\n".join(lines) + "\n")
        self.add(laughs, BAD, "billion laughs: 10^9 groups from nested anchors", "results.yml")
        dup = self.job(inv, inv_dir, ts, 3, tasks[3], model, tasks, plant=False)
        self.results_file(dup).write_text(
            "results:\n  tasks:\n    ifeval:\n      metrics:\n"
            "        acc:\n          scores:\n            acc: {value: 0.25}\n"
            "        acc:\n          scores:\n            acc: {value: 0.75}\n"
        )
        self.add(dup, BAD, "duplicate keys in results.yml", "results.yml")
        big = self.job(inv, inv_dir, ts, 4, tasks[4], model, tasks, plant=False)
        head = (
            "results:\n  tasks:\n    mmlu_pro:\n      metrics:\n        score:\n          scores:\n"
            "            micro: {value: 0.5, stats: {stderr: 0.01}}\nconfig:\n  type: mmlu_pro\n"
            "  samples:\n"
        )
        row = "  - 'the quick brown fox jumps over the lazy dog, sample text of a cached response'\n"
        with open(self.results_file(big), "w", encoding="utf-8") as fh:
            fh.write(head)
            fh.write(row * (self.big_results_mb * 1_000_000 // len(row)))
        self.add(big, BAD, f"a {self.big_results_mb} MB results.yml", "results.yml")

    def odd_names(self) -> None:
        inv, inv_dir, ts = self.invocation()
        formula = [("=cmd|' /C calc'!A0", "+evil"), ("@SUM(1+1)*cmd|'/C calc'!A0", "-exec")]
        tasks = [t for _, t in formula] + ["job"]
        for index, (model, task) in enumerate(formula):
            written = self.job(inv, inv_dir, ts, index, task, model, tasks, plant=True)
            self.add(written, GOOD, f"model id {model!r} and task {task!r} a spreadsheet would evaluate")
        results = {
            "tasks": {
                "job": {
                    "metrics": {
                        "id": {"scores": {"id": {"value": 0.5, "stats": {"stderr": 0.01, "count": 10}}}}
                    }
                }
            }
        }
        written = self.job(
            inv, inv_dir, ts, 2, "job", "meta/llama-3.3-70b-instruct", tasks, plant=True, results=results
        )
        self.add(written, GOOD, "task 'job' with metric 'id': its CSV column would be 'job_id'")

    def special_files(self) -> None:
        model = "mistralai/mistral-7b-instruct-v0.3"
        inv, inv_dir, ts = self.invocation()
        tasks = ["gsm8k", "mmlu"]
        fifo_exit = self.job(inv, inv_dir, ts, 0, tasks[0], model, tasks, plant=True)
        (fifo_exit.directory / "logs" / "stage.exit").unlink()
        os.mkfifo(fifo_exit.directory / "logs" / "stage.exit")
        self.add(fifo_exit, NAMED, "logs/stage.exit is a FIFO", "stage.exit")
        fifo_metrics = self.job(inv, inv_dir, ts, 1, tasks[1], model, tasks, plant=True)
        (fifo_metrics.directory / "artifacts" / "eval_factory_metrics.json").unlink()
        os.mkfifo(fifo_metrics.directory / "artifacts" / "eval_factory_metrics.json")
        self.add(
            fifo_metrics, NAMED, "artifacts/eval_factory_metrics.json is a FIFO", "eval_factory_metrics.json"
        )

        inv, inv_dir, ts = self.invocation()
        linked = self.job(inv, inv_dir, ts, 0, "gpqa_diamond", model, ["gpqa_diamond"], plant=True)
        target = self.outside / "someone-elses-logs"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(linked.directory / "logs"), str(target))
        (target / "private.log").write_text(
            f"not part of any job: {self.canaries.make('outside-', 'a file outside the job, behind a logs/ symlink')}\n"
        )
        (linked.directory / "logs").symlink_to(target, target_is_directory=True)
        self.add(linked, NAMED, "logs/ is a symlink to a folder outside the job", "logs")

    def bad_records(self) -> None:
        model = "meta/llama-3.1-8b-instruct"

        def record_job() -> WrittenJob:
            inv, inv_dir, ts = self.invocation()
            return self.job(inv, inv_dir, ts, 0, "gsm8k", model, ["gsm8k"], plant=False)

        secret = self.canaries.make
        cases: list[tuple[str, Any]] = [
            (
                "'data' is a string",
                lambda r, w: {
                    **r,
                    "data": f"output_dir={w.directory} token={secret('hf_', 'a string data field')}",
                },
            ),
            (
                "'config' is a string",
                lambda r, w: {
                    **r,
                    "config": f"simple_evals --api_key {secret('sk-', 'a string config field')}",
                },
            ),
            (
                "evaluation.tasks is a mapping",
                lambda r, w: {**r, "config": {**r["config"], "evaluation": {"tasks": {"name": "gsm8k"}}}},
            ),
            (
                "evaluation is a list",
                lambda r, w: {**r, "config": {**r["config"], "evaluation": [{"name": "gsm8k"}]}},
            ),
            ("timestamp is a string", lambda r, w: {**r, "timestamp": "yesterday at noon"}),
            (
                "output_dir holds a NUL byte",
                lambda r, w: {**r, "data": {**r["data"], "output_dir": f"{w.directory}\x00/etc"}},
            ),
        ]
        # A config part of the wrong shape is ignored with a warning: the job itself may still export.
        shape_only = {"evaluation.tasks is a mapping", "evaluation is a list"}
        for _index, (why, mutate) in enumerate(cases):
            written = record_job()
            kind = NAMED if why in shape_only else BAD
            self.add(
                written, kind, f"execution-DB line: {why}", EXEC_DB_NAME, mutate(written.record, written)
            )

    def escaping_ids(self) -> None:
        """Ids that, joined to the local output folder as ``<inv>/<job>``, land in the sentinel folder."""
        model = "meta/llama-3.1-8b-instruct"
        out = self.output_dir
        inv_escape = os.path.relpath(self.sentinel / "via-invocation", out)
        plain_inv = f"{self.rng.getrandbits(64):016x}"
        cases = [
            (
                "invocation_id holds ../",
                inv_escape,
                os.path.relpath(self.sentinel / "via-invocation.0", out / inv_escape),
            ),
            ("job_id holds ../", plain_inv, os.path.relpath(self.sentinel / "via-job.0", out / plain_inv)),
            (
                "job_id is an absolute path",
                f"{self.rng.getrandbits(64):016x}",
                str(self.sentinel / "absolute.0"),
            ),
        ]
        for index, (why, inv, job_id) in enumerate(cases):
            _, inv_dir, ts = self.invocation()
            written = self.job(f"{index:016x}", inv_dir, ts, 0, "gsm8k", model, ["gsm8k"], plant=False)
            record = {**written.record, "invocation_id": inv, "job_id": job_id}
            self.add(written, CONTAINED, why, EXEC_DB_NAME, record, job_id=job_id)


def build_corpus(
    root: Path,
    *,
    output_dir: Path,
    sentinel: Path,
    seed: int = 11,
    big_results_mb: int = 50,
    big_log_mib: int = 65,
    parts: tuple[str, ...] = PARTS,
) -> HostileCorpus:
    """Writes the corpus under ``root``; ``output_dir`` is where the local sink will write, and ids
    that escape it aim at ``sentinel`` (which must stay empty). ``parts`` (some of ``PARTS``) builds
    a part of it, to tell which failure comes from where."""
    root.mkdir(parents=True, exist_ok=True)
    return _Builder(root, output_dir, sentinel, seed, big_results_mb, big_log_mib).build(parts)
