"""The MLflow sink against a real ``mlflow server`` and a plain ``sqlite:///`` tracking URI."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from evalport.adapters.sinks.mlflow import RUN_KEY_TAG, MlflowSink, mlflow_metric_key
from evalport.adapters.sinks.mlflow.contents import DIGEST_TAG
from evalport.adapters.sinks.mlflow.names import tag_equals_filter
from evalport.app.service import prepare_item
from evalport.domain.identity import RunIdentity
from evalport.domain.model import Metric
from evalport.domain.report import Status
from evalport.testing import SinkContract
from evalport.testing.factory import write_launcher_home
from evalport.testing.sink_contract import StoredRun
from evalport.testing.sink_contract import _load as load_results
from tests.support.mlflow_samples import read_table_samples, read_trace_samples
from tests.support.mlflow_server import FAST_RETRIES

pytest_plugins = ["tests.support.mlflow_fixtures"]


def all_files(client, run_id: str, path: str | None = None) -> list[str]:
    out: list[str] = []
    for info in client.list_artifacts(run_id, path):
        out.extend(all_files(client, run_id, info.path) if info.is_dir else [info.path])
    return out


def read_runs(uri: str, sink: MlflowSink, result) -> list[StoredRun]:
    """Runs carrying ``result``'s run key, with metrics, artifact paths and all their text."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sink.config.experiment_name)
    if experiment is None:
        return []
    key = RunIdentity.for_result(result, sink.config.log_mode).key
    flt, _ = tag_equals_filter(RUN_KEY_TAG, key)
    runs = [r for r in client.search_runs([experiment.experiment_id], flt) if r.data.tags[RUN_KEY_TAG] == key]
    stored = []
    for run in runs:
        files = all_files(client, run.info.run_id)
        texts = [f"{k}={v}" for k, v in {**run.data.params, **run.data.tags}.items()]
        if files:  # every stored file, whatever its suffix: a secret may hide in any of them
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(client.download_artifacts(run.info.run_id, "", tmp))
                texts += [(root / f).read_text(errors="replace") for f in files]
        stored.append(
            StoredRun(
                key,
                dict(run.data.metrics),
                set(files),
                "\n".join(texts),
                {"run_id": run.info.run_id, "tags": run.data.tags, "params": run.data.params},
            )
        )
    return stored


class MlflowContract(SinkContract):
    """Shared by both backends; subclasses supply ``tracking_uri``."""

    @pytest.fixture
    def tracking_uri(self) -> str:
        raise NotImplementedError

    def stored_name(self, name: str) -> str:
        return mlflow_metric_key(name)

    @pytest.fixture
    def make_sink(self, tracking_uri, experiment_name):
        return lambda **options: MlflowSink(
            {"tracking_uri": tracking_uri, "experiment_name": experiment_name, **FAST_RETRIES, **options}
        )

    @pytest.fixture
    def read_back(self, tracking_uri):
        return lambda sink, result: read_runs(tracking_uri, sink, result)

    @pytest.fixture
    def read_samples(self, tracking_uri):
        read = read_trace_samples if self.sample_mode == "traces" else read_table_samples
        return lambda sink, result: read(tracking_uri, sink, result)

    @pytest.fixture
    def refusing_sink(self):
        from tests.support.mlflow_server import free_port

        return MlflowSink({"tracking_uri": f"http://127.0.0.1:{free_port()}", **FAST_RETRIES})

    # ---- MLflow-specific behaviour ------------------------------------------------------------
    def test_renamed_metrics_keep_their_original_names_in_an_artifact(self, make_sink, tracking_uri, results):
        from mlflow import MlflowClient

        result, directory = results[0]
        result = result.with_metrics([*result.metrics, Metric("x_pass@1", 0.5), Metric("x_pass_at_1", 0.25)])
        sink = make_sink(copy_artifacts=False)
        assert sink.export([prepare_item(result, directory, sink)])[0].status is Status.EXPORTED
        run = self.only(read_runs(tracking_uri, sink, result))
        stored = {k: v for k, v in run.metrics.items() if k.startswith("x_pass")}
        assert len(stored) == 2 and sorted(stored.values()) == [0.25, 0.5], stored
        assert stored["x_pass_at_1"] == 0.25, "a name that was already valid keeps its key"
        with tempfile.TemporaryDirectory() as tmp:
            path = MlflowClient(tracking_uri).download_artifacts(
                run.extra["run_id"], "evalport/metric_names.json", tmp
            )
            names = __import__("json").loads(Path(path).read_text())
        renamed = next(k for k in stored if k != "x_pass_at_1")
        assert names[renamed] == "x_pass@1"

    def test_a_run_the_launcher_made_for_the_job_is_adopted_not_duplicated(
        self, make_sink, tracking_uri, experiment_name, results, tmp_path
    ):
        from mlflow import MlflowClient

        result, directory = results[0]
        client = MlflowClient(tracking_uri)
        experiment_id = client.create_experiment(
            experiment_name, artifact_location=(tmp_path / "launcher-artifacts").as_uri()
        )
        launcher_tags = {
            "job_id": result.job_id,
            "invocation_id": result.invocation_id,
            "task_name": result.task,
        }
        made = client.create_run(experiment_id, tags=launcher_tags)
        run_id = made.info.run_id
        client.log_param(run_id, "invocation_id", result.invocation_id)
        client.log_param(run_id, "timestamp", "an older value")
        client.set_terminated(run_id)

        sink = make_sink()
        (outcome,) = sink.export([prepare_item(result, directory, sink)])

        assert outcome.status is Status.UPDATED and run_id in outcome.location
        assert f"adopted run {run_id}" in outcome.reason
        assert "timestamp" in outcome.reason, "a launcher param with another value is named, not re-logged"
        (run,) = client.search_runs([experiment_id])
        assert run.info.run_id == run_id and run.data.params["timestamp"] == "an older value"
        assert run.data.tags[RUN_KEY_TAG] == RunIdentity.for_result(result, sink.config.log_mode).key
        assert set(run.data.metrics) >= {mlflow_metric_key(n) for n in result.flat_metrics()}
        (again,) = sink.export([prepare_item(result, directory, sink)])
        assert again.status is Status.UNCHANGED and "adopted" not in again.reason

    def test_the_launchers_bulky_files_and_exclude_patterns_are_never_uploaded(
        self, make_sink, tracking_uri, results
    ):
        from mlflow import MlflowClient

        result, directory = results[0]
        artifacts = Path(directory) / "artifacts"
        (artifacts / "preprocessed_datasets").mkdir()
        (artifacts / "preprocessed_datasets" / "part.jsonl").write_text("{}\n")
        (artifacts / "debug.json").write_text("{}")
        (artifacts / "Traces.JSONL").write_text("{}\n")
        (artifacts / "kept.txt").write_text("kept")
        result = replace(
            result,
            artifacts=(
                *result.artifacts,
                "preprocessed_datasets/part.jsonl",
                "debug.json",
                "Traces.JSONL",
                "kept.txt",
            ),
        )
        sink = make_sink(only_required=False, exclude_patterns=["*.jsonl"])
        (outcome,) = sink.export([prepare_item(result, directory, sink)])
        assert outcome.status is Status.EXPORTED, outcome
        run = self.only(read_runs(tracking_uri, sink, result))
        assert "artifacts/kept.txt" in run.files
        assert not any(
            part in f for f in run.files for part in ("preprocessed_datasets", "debug.json", "Traces.JSONL")
        ), run.files
        assert MlflowClient(tracking_uri).get_run(run.extra["run_id"]).info.status == "FINISHED"

    def test_a_changed_param_is_reported_not_crashed_on(self, make_sink, read_back, results):
        result, directory = results[0]
        sink = make_sink(extra_metadata={"suite": "v1"})
        sink.export([prepare_item(result, directory, sink)])
        again = make_sink(extra_metadata={"suite": "v2"})
        outcome = again.export([prepare_item(result, directory, again)])[0]
        assert outcome.status is Status.UNCHANGED, outcome
        assert "suite" in outcome.reason and "v2" in outcome.reason
        assert self.only(read_back(sink, result)).extra["params"]["suite"] == "v1"

    def test_a_changed_tag_updates_the_run_and_an_unchanged_export_writes_nothing(
        self, make_sink, read_back, results
    ):
        result, directory = results[0]
        first = make_sink(tags={"team": "a"})
        first.export([prepare_item(result, directory, first)])
        same = make_sink(tags={"team": "a"})
        assert same.export([prepare_item(result, directory, same)])[0].status is Status.UNCHANGED
        changed = make_sink(tags={"team": "b"})
        assert changed.export([prepare_item(result, directory, changed)])[0].status is Status.UPDATED
        assert self.only(read_back(first, result)).extra["tags"]["team"] == "b"

    def test_an_unchanged_export_fingerprint_leaves_the_run_and_its_files_alone_without_reading_them(
        self, make_sink, tracking_uri, results
    ):
        result, directory = results[0]
        sink = make_sink()
        item = prepare_item(result, directory, sink)
        assert sink.export([dataclasses.replace(item, fingerprint="fp-1")])[0].status is Status.EXPORTED
        stored = self.only(read_runs(tracking_uri, sink, result))
        assert stored.extra["tags"][DIGEST_TAG] == "fp-1", (
            "the run's digest tag holds the export's fingerprint"
        )
        _, sent = item.artifact_paths()[-1]
        sent.write_text("rewritten, yet the export's fingerprint says unchanged\n")

        again = sink.export([dataclasses.replace(item, fingerprint="fp-1")])[0]

        assert again.status is Status.UNCHANGED, again
        assert "rewritten" not in self.only(read_runs(tracking_uri, sink, result)).text, "nothing uploaded"

    def test_a_changed_export_fingerprint_uploads_the_files_again(self, make_sink, tracking_uri, results):
        result, directory = results[0]
        sink = make_sink()
        item = prepare_item(result, directory, sink)
        sink.export([dataclasses.replace(item, fingerprint="fp-1")])
        _, sent = item.artifact_paths()[-1]
        sent.write_text("the second version of the log\n")

        again = sink.export([dataclasses.replace(item, fingerprint="fp-2")])[0]

        assert again.status is Status.UPDATED, again
        stored = self.only(read_runs(tracking_uri, sink, result))
        assert "the second version of the log" in stored.text and stored.extra["tags"][DIGEST_TAG] == "fp-2"

    def test_skip_existing_leaves_the_run_alone(self, make_sink, read_back, results):
        result, directory = results[0]
        sink = make_sink()
        sink.export([prepare_item(result, directory, sink)])
        first = result.metrics[0]
        changed = result.with_metrics([Metric(first.name, first.value + 1), *result.metrics[1:]])
        skipper = make_sink(skip_existing=True)
        outcome = skipper.export([prepare_item(changed, directory, skipper)])[0]
        assert outcome.status is Status.SKIPPED, outcome
        stored = self.only(read_back(sink, result))
        assert stored.metrics[mlflow_metric_key(first.name)] == pytest.approx(first.value)

    def test_config_params_are_flattened_redacted_and_depth_limited(self, make_sink, read_back, results):
        result, directory = results[0]
        sink = make_sink(log_config_params=True, log_config_params_max_depth=2)
        sink.export([prepare_item(result, directory, sink)])
        params = self.only(read_back(sink, result)).extra["params"]
        assert params["config.execution.type"] == "local"
        assert params["config.target.api_endpoint"].startswith("{"), "deeper levels are one JSON value"
        assert "nvapi-very-secret" not in str(params) and "hf_secret_token_value" not in str(params)

    def test_nan_is_kept_and_infinity_is_clamped_by_mlflow(self, make_sink, read_back, results):
        result, directory = results[0]
        result = result.with_metrics([*result.metrics, Metric("t_nan", math.nan), Metric("t_inf", math.inf)])
        sink = make_sink()
        sink.export([prepare_item(result, directory, sink)])
        stored = self.only(read_back(sink, result)).metrics
        assert math.isnan(stored["t_nan"])
        assert stored["t_inf"] == pytest.approx(1.7976931348623157e308), (
            "MLflow stores +inf as the largest float"
        )
        again = make_sink()
        assert again.export([prepare_item(result, directory, again)])[0].status is Status.UNCHANGED

    def test_still_holds_confirms_the_runs_it_wrote_and_nothing_deleted_or_unknown(
        self, make_sink, tracking_uri, results
    ):
        from mlflow import MlflowClient

        sink = make_sink(copy_artifacts=False)
        outcomes = sink.export([prepare_item(r, d, sink) for r, d in results[:2]])
        located = {o.job_id: o.location for o in outcomes}
        assert make_sink().still_holds(located) == set(located)
        first, second = outcomes
        MlflowClient(tracking_uri).delete_run(first.location.rsplit("/", 1)[-1])
        asked = {**located, "job-never-sent": "runs:/0123456789abcdef0123456789abcdef", "odd": "elsewhere"}
        assert make_sink().still_holds(asked) == {second.job_id}

    def test_still_holds_finds_nothing_once_the_experiment_is_deleted(self, make_sink, tracking_uri, results):
        from mlflow import MlflowClient

        sink = make_sink(copy_artifacts=False)
        located = {o.job_id: o.location for o in sink.export([prepare_item(*results[0], sink)])}
        client = MlflowClient(tracking_uri)
        client.delete_experiment(client.get_experiment_by_name(sink.config.experiment_name).experiment_id)
        assert make_sink().still_holds(located) == set()

    def test_the_sink_names_its_extra_and_the_modules_it_needs(self):
        assert (MlflowSink.extra, MlflowSink.requires) == ("mlflow", ("mlflow",))


def kill_after_finished_runs(server, runs: int) -> threading.Thread:
    """Kills the server (SIGKILL, a crash) once its store holds ``runs`` finished runs."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error):
                if server.count_runs("FINISHED") >= runs:
                    break
            time.sleep(0.005)
        server.stop(kill=True)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


class TestMlflowSinkOnServer(MlflowContract):
    @pytest.fixture
    def tracking_uri(self, live_mlflow_server) -> str:
        return live_mlflow_server.url

    def test_the_server_going_down_mid_export_marks_the_rest_not_tried_and_a_rerun_completes_them(
        self, mlflow_server, experiment_name, tmp_path
    ):
        home = write_launcher_home(tmp_path / "launcher", invocations=4, tasks_per_invocation=3, seed=3)
        options = {"tracking_uri": mlflow_server.url, "experiment_name": experiment_name, **FAST_RETRIES}
        sink = MlflowSink(options, workers=1)
        items = [prepare_item(r, d, sink) for r, d in load_results(home)]
        watcher = kill_after_finished_runs(mlflow_server.start(), mlflow_server.count_runs("FINISHED") + 3)
        try:
            started = time.monotonic()
            outcomes = sink.export(items)
            took = time.monotonic() - started
        finally:
            watcher.join(timeout=70)
            mlflow_server.start()  # on the same port and store
        by_status: dict[Status, list] = {}
        for outcome in outcomes:
            by_status.setdefault(outcome.status, []).append(outcome)
        assert set(by_status) == {Status.EXPORTED, Status.FAILED}, by_status
        not_tried = [o for o in by_status[Status.FAILED] if o.reason.startswith("not tried: ")]
        assert not_tried, [o.reason for o in by_status[Status.FAILED]]
        assert all(f"MLflow at {mlflow_server.url} did not answer" in o.reason for o in not_tried)
        assert took < 20, f"the jobs after the crash waited ({took:.1f} s)"

        again = MlflowSink(options).export(items)
        statuses = {o.job_id: o.status for o in again}
        assert {statuses[o.job_id] for o in by_status[Status.EXPORTED]} == {Status.UNCHANGED}
        assert {statuses[o.job_id] for o in not_tried} == {Status.EXPORTED}
        assert all(o.status is not Status.FAILED for o in again), again
        from mlflow import MlflowClient

        client = MlflowClient(mlflow_server.url)
        experiment = client.get_experiment_by_name(experiment_name)
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        keys = [r.data.tags[RUN_KEY_TAG] for r in runs]
        assert sorted(keys) == sorted({RunIdentity.for_result(i.result).key for i in items}), "no duplicates"
        assert {r.info.status for r in runs} == {"FINISHED"}

    def test_check_finds_the_server_and_tells_whether_the_experiment_exists(self, make_sink, results):
        sink = make_sink()
        before = sink.check()
        assert before.ok and "does not exist yet" in before.message
        sink.export([prepare_item(results[0][0], results[0][1], sink)])
        after = make_sink().check()
        assert after.ok and "exists" in after.message and "not exist" not in after.message


class TestMlflowSinkOnSqlite(MlflowContract):
    @pytest.fixture
    def tracking_uri(self, mlflow_sqlite_uri) -> str:
        return mlflow_sqlite_uri

    def test_artifacts_land_beside_the_database_not_in_the_working_directory(
        self, make_sink, read_back, results, mlflow_sqlite_uri
    ):
        sink = make_sink()
        sink.export([prepare_item(results[0][0], results[0][1], sink)])
        run_dir = Path(mlflow_sqlite_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
        assert any(p.name == "results.yml" for p in run_dir.rglob("*"))
        assert not (Path.cwd() / "mlruns").exists()

    def test_a_run_key_longer_than_the_tag_limit_is_found_again_and_never_duplicated(
        self, make_sink, tracking_uri, results
    ):
        from mlflow import MlflowClient

        result, directory = results[0]
        long = replace(result, invocation_id="i" * 8000, job_id="i" * 8000 + ".0")
        sink = make_sink()
        assert sink.export([prepare_item(long, directory, sink)])[0].status is Status.EXPORTED
        again = make_sink()
        assert again.export([prepare_item(long, directory, again)])[0].status is Status.UNCHANGED
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(sink.config.experiment_name)
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 1, "a re-export finds the run it made"
        key = RunIdentity.for_result(long).key
        assert runs[0].data.tags[RUN_KEY_TAG] == "sha256:" + hashlib.sha256(key.encode()).hexdigest()

    def test_the_view_hint_quotes_a_store_path_with_spaces_and_shell_syntax(self, tmp_path, results):
        odd = tmp_path / "my evals $(touch pwned) `id`"
        odd.mkdir()
        uri = f"sqlite:///{odd / 'mlflow.db'}"
        sink = MlflowSink({"tracking_uri": uri, "copy_artifacts": False, **FAST_RETRIES})
        assert sink.export([prepare_item(*results[0], sink)])[0].status is Status.EXPORTED
        hint = sink.describe().split("(view: ", 1)[1].removesuffix(")")
        assert shlex.split(hint) == ["mlflow", "ui", "--backend-store-uri", uri]
        echoed = subprocess.run(
            ["sh", "-c", f"printf %s {hint.split(' ', 3)[3]}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert echoed == uri and not (tmp_path / "pwned").exists(), "the pasted hint runs nothing"

    def test_concurrent_first_use_of_a_new_store_leaves_it_usable(self, tmp_path, results):
        """Four processes open one new sqlite store at once: one creates its schema, all export."""
        uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
        (tmp_path / "fresh").mkdir()
        code = (
            "import sys; from evalport.adapters.sinks.mlflow import MlflowSink; "
            "sink = MlflowSink({'tracking_uri': sys.argv[1]}); "
            "print(sink._writer().experiment_id()[0])"
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
        assert len({out.strip() for out, _ in outs}) == 1, "one experiment, found by every process"
        sink = MlflowSink({"tracking_uri": uri, **FAST_RETRIES})
        assert sink.export([prepare_item(*results[0], sink)])[0].status is Status.EXPORTED
