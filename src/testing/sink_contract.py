"""SinkContract: the behaviour every sink must show, run against a real backend.

Subclass it in a test module and supply three fixtures (see the fixtures section below); every
test is inherited. Capability flags on the sink class (``SinkCapabilities``) switch off tests
that do not apply, the way SQLAlchemy dialects declare requirements::

    class TestMySink(SinkContract):
        @pytest.fixture
        def make_sink(self, my_server):
            return lambda **options: MySink(MySink.Config(url=my_server.url, **options))

        @pytest.fixture
        def read_back(self, my_server):
            def read(sink, result):  # -> list[StoredRun] for that result's run(s)
                ...
            return read

        @pytest.fixture
        def refusing_sink(self):
            return MySink(MySink.Config(url="http://127.0.0.1:9"))

A sink whose capabilities say ``samples`` also provides ``read_samples`` (``(sink, result) ->
list[StoredSample]``, every sample row the destination holds for that job); the sample behaviours
turn its ``samples`` option on with :attr:`SinkContract.sample_mode` (default: the config's first
mode that is not ``none``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from evalport.adapters.formats.nemo_evaluator import read_task_result
from evalport.adapters.sources.local import LocalSource
from evalport.app.service import prepare_item
from evalport.domain.model import Metric, TaskResult
from evalport.domain.ports import ExportItem, ResultSink
from evalport.domain.report import Outcome, Status
from evalport.testing.canaries import Canaries, plant_in_home, visible_line
from evalport.testing.factory import LauncherHome, write_launcher_home
from evalport.testing.sample_contract import (
    SAMPLE_TOKEN,
    SECRET,
    SampleBehaviours,
    StoredSample,
    planted_samples,
)


@dataclass
class StoredRun:
    """What a destination holds for one run, as the adapter's ``read_back`` fixture found it."""

    key: str
    metrics: dict[str, float] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _load(home: LauncherHome) -> list[tuple[TaskResult, Path]]:
    source = LocalSource(home.exec_db)
    out = []
    for job in sorted(source.list_jobs(), key=lambda j: j.job_id):
        directory = Path(job.location.path)
        out.append((read_task_result(job, directory), directory))
    return out


class SinkContract(SampleBehaviours):
    """Inherited behavioural tests; see the module docstring for the fixtures to provide."""

    # ---- fixtures the adapter's test class provides -------------------------------------------
    @pytest.fixture
    def make_sink(self) -> Callable[..., ResultSink]:
        raise NotImplementedError("provide a make_sink fixture: (**config) -> sink against a real backend")

    @pytest.fixture
    def read_back(self) -> Callable[[ResultSink, TaskResult], list[StoredRun]]:
        raise NotImplementedError("provide a read_back fixture: (sink, result) -> list[StoredRun]")

    @pytest.fixture
    def refusing_sink(self) -> ResultSink:
        raise NotImplementedError("provide a refusing_sink fixture: a sink whose destination refuses")

    def stored_name(self, name: str) -> str:
        """The name the destination stores a metric under (override when the sink sanitizes names)."""
        return name

    #: False when the destination keeps file names but not their contents (``read_back`` cannot show them).
    stores_file_contents: bool = True

    # ---- shared data ---------------------------------------------------------------------------
    @pytest.fixture
    def launcher_home(self, tmp_path: Path) -> LauncherHome:
        return write_launcher_home(tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=7)

    @pytest.fixture
    def results(self, launcher_home: LauncherHome) -> list[tuple[TaskResult, Path]]:
        return _load(launcher_home)

    @pytest.fixture
    def planted(self, tmp_path: Path) -> tuple[list[tuple[TaskResult, Path]], Canaries, list[str]]:
        """One job whose configs, execution-DB record and files hold canary secrets in every shape."""
        home = write_launcher_home(
            tmp_path / "planted", invocations=1, tasks_per_invocation=1, seed=5, secrets=False
        )
        canaries = Canaries(seed=5)
        files = plant_in_home(home, canaries)
        return _load(home), canaries, files

    def items(self, sink: ResultSink, results: Sequence[tuple[TaskResult, Path]]) -> list[ExportItem]:
        return [prepare_item(result, directory, sink) for result, directory in results]

    def export(self, sink: ResultSink, results: Sequence[tuple[TaskResult, Path]]) -> list[Outcome]:
        outcomes = sink.export(self.items(sink, results))
        assert [o.job_id for o in outcomes] == [r.job_id for r, _ in results], (
            "one outcome per item, in order"
        )
        return outcomes

    def only(self, runs: list[StoredRun]) -> StoredRun:
        assert len(runs) == 1, f"expected exactly one run, found {len(runs)}: {[r.key for r in runs]}"
        return runs[0]

    def assert_metrics(self, stored: StoredRun, result: TaskResult) -> None:
        for name, value in result.flat_metrics().items():
            key = self.stored_name(name)
            assert key in stored.metrics, f"metric {name!r} (stored as {key!r}) missing"
            if math.isfinite(value):
                assert stored.metrics[key] == pytest.approx(value), name

    # ---- the contract --------------------------------------------------------------------------
    def test_first_export_stores_every_metric_with_its_stats(self, make_sink, read_back, results):
        sink = make_sink()
        outcomes = self.export(sink, results)
        assert {o.status for o in outcomes} == {Status.EXPORTED}, outcomes
        for result, _ in results:
            stored = self.only(read_back(sink, result))
            self.assert_metrics(stored, result)
            assert any(n.endswith("_stderr") for n in result.flat_metrics())

    def test_re_export_of_an_unchanged_job_creates_no_duplicate(self, make_sink, read_back, results):
        sink = make_sink()
        self.export(sink, results[:1])
        again = self.export(make_sink(), results[:1])
        assert again[0].status in (Status.UNCHANGED, Status.UPDATED), again
        self.only(read_back(sink, results[0][0]))

    def test_re_export_of_a_changed_job_updates_its_run_in_place(self, make_sink, read_back, results):
        sink = make_sink()
        result, directory = results[0]
        self.export(sink, [(result, directory)])
        first = result.metrics[0]
        changed = result.with_metrics([replace(first, value=first.value + 0.125), *result.metrics[1:]])
        outcome = self.export(make_sink(), [(changed, directory)])[0]
        assert outcome.status is Status.UPDATED, outcome
        stored = self.only(read_back(sink, changed))
        assert stored.metrics[self.stored_name(first.name)] == pytest.approx(first.value + 0.125)

    def test_two_tasks_of_one_invocation_share_a_multi_task_run(self, make_sink, read_back, results):
        sink_cls = type(make_sink())
        if not sink_cls.capabilities.multi_task:
            pytest.skip(f"{sink_cls.name} has no multi_task mode")
        same_inv = [r for r in results if r[0].invocation_id == results[0][0].invocation_id]
        assert len(same_inv) >= 2
        sink = make_sink(log_mode="multi_task")
        self.export(sink, same_inv[:1])
        outcome = self.export(make_sink(log_mode="multi_task"), same_inv[1:2])[0]
        assert outcome.status in (Status.EXPORTED, Status.UPDATED), outcome
        stored = self.only(read_back(sink, same_inv[1][0]))
        for result, _ in same_inv[:2]:
            self.assert_metrics(stored, result)

    def test_the_metric_filter_is_applied(self, make_sink, read_back, results):
        sink = make_sink(log_metrics=["score_micro", "!stderr"])
        self.export(sink, results)
        for result, _ in results:
            stored = self.only(read_back(sink, result))
            names = result.flat_metrics()
            sent = [n for n in names if "score_micro" in n.lower() and "stderr" not in n.lower()]
            kept = [n for n in names if self.stored_name(n) in stored.metrics]
            assert sorted(kept) == sorted(sent)

    def test_artifacts_are_sent_when_enabled_and_absent_when_not(self, make_sink, read_back, results):
        sink_cls = type(make_sink())
        if not sink_cls.capabilities.artifacts:
            pytest.skip(f"{sink_cls.name} stores no artifacts")
        with_files = make_sink(copy_artifacts=True, copy_logs=False)
        self.export(with_files, results[:1])
        stored = self.only(read_back(with_files, results[0][0]))
        assert any(f.endswith("results.yml") for f in stored.files), stored.files
        assert not any("logs/" in f for f in stored.files), stored.files
        assert not any(".secrets.env" in f or "cache" in f for f in stored.files), stored.files

        without = make_sink(copy_artifacts=False, copy_logs=False)
        self.export(without, results[1:2])
        stored = self.only(read_back(without, results[1][0]))
        assert not any(f.endswith("results.yml") for f in stored.files), stored.files

    def test_logs_are_sent_only_when_asked(self, make_sink, read_back, results):
        sink_cls = type(make_sink())
        if not sink_cls.capabilities.logs:
            pytest.skip(f"{sink_cls.name} stores no logs")
        sink = make_sink(copy_logs=True)
        self.export(sink, results[:1])
        stored = self.only(read_back(sink, results[0][0]))
        assert any(f.endswith("client_stdout.log") for f in stored.files), stored.files

    def test_odd_and_unicode_metric_names_survive(self, make_sink, read_back, results):
        result, directory = results[0]
        odd = [
            Metric("humaneval_pass@1", 0.5, {"stderr": 0.01}),
            Metric("a/b c", 0.25),
            Metric("ünïcødé_score", 0.75),
            Metric("mt-bench.turn 1", 7.5),
        ]
        result = result.with_metrics([*result.metrics, *odd])
        sink = make_sink()
        assert self.export(sink, [(result, directory)])[0].status is Status.EXPORTED
        stored = self.only(read_back(sink, result))
        for m in odd:
            assert stored.metrics[self.stored_name(m.name)] == pytest.approx(m.value), m.name
        assert len({self.stored_name(m.name) for m in odd}) == len(odd), "two names collapsed into one"

    def test_nan_and_infinite_values_do_not_break_the_export(self, make_sink, read_back, results):
        result, directory = results[0]
        weird = [Metric("task_nan", math.nan), Metric("task_inf", math.inf), Metric("task_ok", 0.5)]
        result = result.with_metrics([*result.metrics, *weird])
        sink = make_sink()
        outcome = self.export(sink, [(result, directory)])[0]
        assert outcome.status is Status.EXPORTED, outcome
        stored = self.only(read_back(sink, result))
        assert stored.metrics[self.stored_name("task_ok")] == pytest.approx(0.5)
        if type(sink).capabilities.non_finite_values:
            assert math.isnan(float(stored.metrics[self.stored_name("task_nan")]))
            assert math.isinf(float(stored.metrics[self.stored_name("task_inf")]))

    def test_secrets_never_reach_the_destination(self, make_sink, read_back, results):
        caps = type(make_sink()).capabilities
        options = {"copy_artifacts": True} if caps.artifacts else {}
        options.update({"copy_logs": True} if caps.logs else {})
        sink = make_sink(**options)
        self.export(sink, results[:1])
        stored = self.only(read_back(sink, results[0][0]))
        assert SECRET not in stored.text
        assert "hf_secret_token_value" not in stored.text

    def _planted_options(self, make_sink, canaries: Canaries, *, files: bool) -> dict[str, Any]:
        sink_cls = type(make_sink())
        fields = getattr(sink_cls.Config, "model_fields", {})
        options: dict[str, Any] = {}
        if files:
            options.update({"copy_artifacts": True} if sink_cls.capabilities.artifacts else {})
            options.update({"copy_logs": True} if sink_cls.capabilities.logs else {})
        if "log_config_params" in fields:
            options["log_config_params"] = True
        if "description" in fields:
            options["description"] = f"weekly run {canaries.make('nvapi-', 'the description option')}"
        return options

    def assert_no_canary(self, stored: StoredRun, canaries: Canaries) -> None:
        leaks = canaries.leaks_in(stored.text, "stored text") + canaries.leaks_in(
            repr(stored.extra), "stored extra"
        )
        assert not leaks, f"{len(leaks)} secrets reached the destination:\n" + "\n".join(leaks)

    def test_secrets_in_the_config_never_reach_the_destination_whatever_their_shape(
        self, make_sink, read_back, planted
    ):
        """Lists and mappings under secret keys, command-line flags, URL credentials, private keys."""
        results, canaries, _files = planted
        sink = make_sink(**self._planted_options(make_sink, canaries, files=False))
        outcome = self.export(sink, results)[0]
        assert outcome.status is Status.EXPORTED, outcome
        self.assert_no_canary(self.only(read_back(sink, results[0][0])), canaries)

    def test_secrets_in_staged_files_never_reach_the_destination_whatever_the_suffix(
        self, make_sink, read_back, planted
    ):
        """Tokens in report.html, ``*.out``, ``*.jsonl`` and a log with a byte that is not UTF-8."""
        caps = type(make_sink()).capabilities
        if not (caps.artifacts or caps.logs):
            pytest.skip(f"{type(make_sink()).name} stores no files")
        results, canaries, files = planted
        sink = make_sink(**self._planted_options(make_sink, canaries, files=True))
        outcome = self.export(sink, results)[0]
        assert outcome.status is Status.EXPORTED, outcome
        stored = self.only(read_back(sink, results[0][0]))
        sent = [rel for rel in files if any(f.endswith(rel) for f in stored.files)]
        unseen = [rel for rel in sent if visible_line(rel) not in stored.text]
        if unseen and self.stores_file_contents:
            warnings.warn(
                f"{type(sink).name}: read_back does not expose the text of {unseen}; those files were not "
                "checked for secrets (make read_back return every stored file's text)",
                stacklevel=1,
            )
        self.assert_no_canary(stored, canaries)

    def test_ids_that_climb_out_of_the_destination_never_write_outside_it(self, make_sink, results, tmp_path):
        """Ids with ``../`` (enough to climb from any depth) or an absolute path, aimed at one folder."""
        sentinel = tmp_path / "outside-the-destination"
        sentinel.mkdir()
        climb = "../" * 64 + sentinel.relative_to(sentinel.anchor).as_posix()
        result, directory = results[0]
        escaping = [
            replace(result, invocation_id=f"{climb}/inv", job_id=f"{climb}/inv.0"),
            replace(result, job_id=f"{climb}/job.0"),
            replace(result, invocation_id=str(sentinel / "abs-inv"), job_id=str(sentinel / "abs-inv.0")),
        ]
        sink = make_sink()
        outcomes = self.export(sink, [(r, directory) for r in escaping])
        for o in outcomes:
            assert o.status in (Status.EXPORTED, Status.FAILED), o
            assert o.status is Status.EXPORTED or o.reason, o
        assert not list(sentinel.rglob("*")), f"written outside the destination: {list(sentinel.rglob('*'))}"

    def test_a_refusing_destination_fails_every_job_with_a_reason(self, refusing_sink, results):
        outcomes = refusing_sink.export(self.items(refusing_sink, results))
        assert [o.job_id for o in outcomes] == [r.job_id for r, _ in results]
        for o in outcomes:
            assert o.status is Status.FAILED
            assert o.reason and len(o.reason) > 10, o

    def test_check_reports_an_unreachable_destination(self, refusing_sink):
        result = refusing_sink.check()
        assert result.ok is False
        assert result.message


__all__ = ["SAMPLE_TOKEN", "SECRET", "SinkContract", "StoredRun", "StoredSample", "planted_samples"]
