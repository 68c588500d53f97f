"""The W&B sink against the real SDK in offline mode, read back from the ``.wandb`` files it wrote."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from evalport.adapters.sinks.wandb.names import artifact_name, run_id_of_folder
from evalport.adapters.sinks.wandb_sink import WandbSink
from evalport.domain.identity import RunIdentity
from evalport.domain.report import Status
from evalport.testing import SinkContract
from evalport.testing.sink_contract import StoredRun
from tests.support.wandb_records import find_run_files, load_run, merge_runs
from tests.support.wandb_samples import read_table_samples

CLOSED_PORT_URL = "http://127.0.0.1:9"
FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline W&B, no credentials anywhere, every SDK folder under tmp_path, no network."""
    for name in (
        "WANDB_API_KEY",
        "WANDB_IDENTITY_TOKEN_FILE",
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
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        folder = tmp_path / name.lower()
        folder.mkdir(exist_ok=True)
        monkeypatch.setenv(name, str(folder))


def stored_runs(root: Path, run_key: str) -> list[StoredRun]:
    """One StoredRun per distinct run id whose config names ``run_key`` (its folders merged in order)."""
    by_id: dict[str, list] = {}
    for path in find_run_files(root):
        run = load_run(path)
        by_id.setdefault(run.run_id, []).append(run)
    out = []
    for run_id, runs in by_id.items():
        merged = merge_runs(runs)
        if (merged.config.get("evalport") or {}).get("run_key") != run_key:
            continue
        metrics = {k: float(v) for k, v in merged.user_summary.items() if isinstance(v, (int, float))}
        files: set[str] = set()
        text = [p.path.read_bytes().decode("utf-8", "replace") for p in runs]
        for artifact in merged.artifacts:
            files.update(artifact["manifest"])
            text += [Path(p).read_text(errors="replace") for p in artifact.get("local_paths", {}).values()]
        out.append(StoredRun(run_id, metrics, files, "\n".join(text), {"run": merged, "folders": len(runs)}))
    return out


def read_back_for(sink: WandbSink, result) -> list[StoredRun]:
    identity = RunIdentity.for_result(result, sink.config.log_mode)
    return stored_runs(sink.root, identity.key)


class TestWandbSink(SinkContract):
    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        return tmp_path / "wandb-root"

    @pytest.fixture
    def make_sink(self, root):
        return lambda **options: WandbSink({"dir": root, **options})

    @pytest.fixture
    def read_back(self):
        return read_back_for

    @pytest.fixture
    def read_samples(self):
        return read_table_samples

    @pytest.fixture(params=["online-without-credentials", "unwritable-dir"])
    def refusing_sink(self, request, tmp_path: Path):
        if request.param == "online-without-credentials":
            return WandbSink({"dir": tmp_path / "wandb-root", "mode": "online"})
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        return WandbSink({"dir": blocker / "runs"})

    # ---- W&B specifics ----------------------------------------------------------------------------
    def test_the_run_carries_name_group_tags_notes_and_a_redacted_config(self, make_sink, results):
        result, _ = results[0]
        sink = make_sink(
            tags={"nightly": "", "suite": "baseline"},
            description="weekly eval",
            job_type="eval",
            run_name="{model_id}:{task}",
            extra_metadata={"team": "llm", "hf_token": "hf_x"},
        )
        assert self.export(sink, results[:1])[0].status is Status.EXPORTED
        run = self.only(read_back_for(sink, result)).extra["run"]

        assert run.run_id == RunIdentity.for_result(result).run_id()
        assert run.name == f"{result.model_id}:{result.task}"
        assert (run.group, run.job_type, run.notes) == (result.invocation_id, "eval", "weekly eval")
        assert run.tags == ["nightly", "suite:baseline"]
        assert run.project == "evalport"
        assert run.config["team"] == "llm" and run.config["hf_token"] == "***"
        assert (run.config["job_id"], run.config["task"], run.config["harness"]) == (
            result.job_id,
            result.task,
            result.harness,
        )
        assert run.config["launcher_config"]["target"]["api_endpoint"]["api_key"] == "***"
        assert run.user_history and run.user_history[0] == pytest.approx(run.user_summary)

    def test_each_job_gets_one_artifact_named_after_harness_and_task(self, make_sink, results):
        sink = make_sink(copy_logs=True)
        self.export(sink, results[:1])
        result = results[0][0]
        run = self.only(read_back_for(sink, result)).extra["run"]

        [artifact] = run.artifacts
        assert artifact["name"] == artifact_name(result.harness, result.task)
        assert artifact["metadata"]["job_id"] == result.job_id
        assert {"config.json", "artifacts/results.yml", "logs/client_stdout.log"} <= set(artifact["manifest"])
        staged = json.loads(Path(artifact["local_paths"]["config.json"]).read_text())
        assert staged["job_id"] == result.job_id

    def test_an_unchanged_re_export_writes_nothing_new(self, make_sink, root, results):
        self.export(make_sink(), results[:1])
        before = find_run_files(root)

        again = self.export(make_sink(), results[:1])

        assert again[0].status is Status.UNCHANGED
        assert find_run_files(root) == before

    def test_a_changed_option_re_exports_into_the_same_run(self, make_sink, root, results):
        self.export(make_sink(), results[:1])
        outcome = self.export(make_sink(tags=["again"]), results[:1])[0]

        stored = self.only(read_back_for(make_sink(), results[0][0]))
        assert outcome.status is Status.UPDATED
        assert stored.extra["folders"] == 2 and stored.extra["run"].tags == ["again"]

    def test_an_unchanged_export_fingerprint_writes_nothing_even_when_a_file_was_touched(
        self, make_sink, root, results
    ):
        sink = make_sink()
        [item] = self.items(sink, results[:1])
        assert sink.export([dataclasses.replace(item, fingerprint="fp-1")])[0].status is Status.EXPORTED
        before = find_run_files(root)
        _, sent = item.artifact_paths()[-1]
        sent.write_text("rewritten, yet the export's fingerprint says unchanged\n")

        again = make_sink().export([dataclasses.replace(item, fingerprint="fp-1")])[0]

        assert again.status is Status.UNCHANGED, again
        assert find_run_files(root) == before

    def test_a_changed_export_fingerprint_or_option_updates_the_run(self, make_sink, results):
        sink = make_sink()
        [item] = self.items(sink, results[:1])
        sink.export([dataclasses.replace(item, fingerprint="fp-1")])

        assert make_sink().export([dataclasses.replace(item, fingerprint="fp-2")])[0].status is Status.UPDATED
        retagged = make_sink(tags=["again"]).export([dataclasses.replace(item, fingerprint="fp-2")])[0]
        assert retagged.status is Status.UPDATED, "the options a run depends on count beside the fingerprint"
        stored = self.only(read_back_for(sink, results[0][0]))
        assert stored.extra["folders"] == 3 and stored.extra["run"].tags == ["again"]

    def test_multi_task_keeps_each_tasks_config_and_artifact(self, make_sink, results):
        same_inv = [r for r in results if r[0].invocation_id == results[0][0].invocation_id][:2]
        sink = make_sink(log_mode="multi_task")
        outcomes = self.export(sink, same_inv)  # both tasks in one export: one init for the run
        assert [o.status for o in outcomes] == [Status.EXPORTED, Status.EXPORTED]
        stored = self.only(read_back_for(sink, same_inv[0][0]))
        run = stored.extra["run"]

        assert stored.extra["folders"] == 1
        assert run.name == f"eval-{same_inv[0][0].invocation_id}"
        assert set(run.config["tasks"]) == {f"{r.harness}.{r.task}" for r, _ in same_inv}
        assert {a["name"] for a in run.artifacts} == {artifact_name(r.harness, r.task) for r, _ in same_inv}

    def test_a_job_whose_files_vanished_fails_alone_and_the_others_go_on(self, make_sink, results):
        sink = make_sink()
        items = self.items(sink, results)
        (items[1].directory / "artifacts" / "results.yml").unlink()

        outcomes = sink.export(items)

        assert [o.status for o in outcomes] == [
            Status.EXPORTED,
            Status.FAILED,
            *[Status.EXPORTED] * (len(items) - 2),
        ]
        assert "results.yml" in outcomes[1].reason
        assert read_back_for(sink, results[1][0]) == []

    def test_online_without_credentials_fails_fast_and_says_how_to_log_in(self, make_sink, results):
        sink = make_sink(mode="online")
        started = time.perf_counter()
        outcomes = self.export(sink, results)

        assert time.perf_counter() - started < 2
        for outcome in outcomes:
            assert outcome.status is Status.FAILED
            assert "wandb login" in outcome.reason and "WANDB_API_KEY" in outcome.reason

    def test_a_server_that_does_not_answer_fails_after_bounded_retries_and_the_rest_are_not_tried(
        self, make_sink, root, results, monkeypatch
    ):
        monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
        sink = make_sink(mode="online", init_timeout=1, retries=2, retry_wait=0.1)
        started = time.perf_counter()
        outcomes = self.export(sink, results)

        elapsed = time.perf_counter() - started
        assert 2 <= elapsed < 15, "two attempts of about init_timeout each, then no further runs tried"
        assert all(o.status is Status.FAILED for o in outcomes)
        assert (
            CLOSED_PORT_URL in outcomes[0].reason and "did not answer after 2 attempts" in outcomes[0].reason
        )
        assert all(o.reason == f"not tried: {outcomes[0].reason}" for o in outcomes[1:]), outcomes
        logged = "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())
        assert FAKE_KEY not in logged and all(FAKE_KEY not in o.reason for o in outcomes)

    def test_an_offline_rerun_after_a_partly_failed_export_completes_it_without_duplicate_runs(
        self, make_sink, root, results
    ):
        sink = make_sink()
        items = self.items(sink, results)
        broken = items[1].directory / "artifacts" / "results.yml"
        kept = broken.read_bytes()
        broken.unlink()
        first = sink.export(items)
        assert [o.status for o in first] == [
            Status.EXPORTED,
            Status.FAILED,
            *[Status.EXPORTED] * (len(items) - 2),
        ]
        broken.write_bytes(kept)

        again = self.export(make_sink(), results)

        assert [o.status for o in again] == [
            Status.UNCHANGED,
            Status.EXPORTED,
            *[Status.UNCHANGED] * (len(items) - 2),
        ]
        for result, _ in results:
            stored = self.only(read_back_for(make_sink(), result))
            assert stored.extra["folders"] == 1, "each run written once, none twice"

    def test_a_token_in_the_description_tags_or_group_never_reaches_the_run_files(
        self, make_sink, root, results
    ):
        canaries = ("canary-notes-4f1e", "canary-bearer-77aa", "canary-tag-91", "canary-group-5c")
        sink = make_sink(
            description=f"weekly eval; api_key={canaries[0]} Authorization: Bearer {canaries[1]}",
            tags=["nightly", f"token={canaries[2]}"],
            group=f"evals password={canaries[3]}",
            extra_metadata={"hf_token": "canary-config-0d"},
        )
        assert self.export(sink, results[:1])[0].status is Status.EXPORTED
        run = self.only(read_back_for(sink, results[0][0])).extra["run"]
        assert run.notes.startswith("weekly eval") and "nightly" in run.tags
        written = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
        for canary in (*canaries, "canary-config-0d"):
            assert canary.encode() not in written, canary

    def test_still_holds_offline_confirms_the_run_folders_that_are_there(self, make_sink, root, results):
        sink = make_sink()
        outcomes = self.export(sink, results[:2])
        located = {o.job_id: o.location for o in outcomes}
        assert make_sink().still_holds(located) == set(located)
        gone = Path(outcomes[0].location)
        assert run_id_of_folder(gone.name), "the location is the run's folder"
        shutil.rmtree(gone)
        assert make_sink().still_holds({**located, "other": ""}) == {outcomes[1].job_id}

    def test_a_job_whose_run_folder_was_deleted_is_written_again(self, make_sink, root, results):
        first = self.export(make_sink(), results[:1])[0]
        shutil.rmtree(first.location)
        again = self.export(make_sink(), results[:1])[0]
        assert again.status is Status.EXPORTED, "the saved fingerprint of a deleted run counts for nothing"
        stored = self.only(read_back_for(make_sink(), results[0][0]))
        self.assert_metrics(stored, results[0][0])

    def test_the_sink_names_its_extra_and_the_modules_it_needs(self):
        assert (WandbSink.extra, WandbSink.requires) == ("wandb", ("wandb",))

    def test_check_says_what_to_fix_for_each_refusing_destination(self, refusing_sink):
        result = refusing_sink.check()
        assert not result.ok
        assert ("wandb login" in result.message) or ("dir" in result.message)

    def test_check_offline_is_ok_and_tells_how_to_upload(self, make_sink, root):
        result = make_sink().check()
        assert result.ok
        assert "offline" in result.message and f"wandb sync {root}/wandb" in result.message
        assert f"wandb sync {root}/wandb" in make_sink().describe()


class _FakeGraphql(BaseHTTPRequestHandler):
    """Answers the viewer query for one key (the check's probe), 401 for any other."""

    def do_POST(self) -> None:
        import base64

        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        good = "Basic " + base64.b64encode(f"api:{FAKE_KEY}".encode()).decode()
        if self.headers.get("Authorization") != good:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"data": {"viewer": {"username": "alice", "entity": "alice"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return None


@pytest.fixture(scope="module")
def graphql_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGraphql)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("key", "ok", "words"), [(FAKE_KEY, True, "logged in as alice"), ("f" * 40, False, "refused the key")]
)
def test_check_online_asks_the_server_who_the_key_belongs_to(
    graphql_url, monkeypatch, tmp_path, key, ok, words
):
    monkeypatch.setenv("WANDB_BASE_URL", graphql_url)
    monkeypatch.setenv("WANDB_API_KEY", key)
    result = WandbSink({"mode": "online", "dir": tmp_path}).check()
    assert (result.ok, words in result.message) == (ok, True), result.message
    assert key not in result.message


def test_check_online_reads_the_key_that_wandb_login_saved_in_netrc(graphql_url, monkeypatch, tmp_path):
    host = graphql_url.removeprefix("http://")
    (tmp_path / "netrc").write_text(f"machine {host}\n  login user\n  password {FAKE_KEY}\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_BASE_URL", graphql_url)
    result = WandbSink({"mode": "online", "dir": tmp_path}).check()
    assert result.ok and "netrc" in result.message, result.message


def test_check_online_reports_an_unreachable_server_quickly(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    started = time.perf_counter()
    result = WandbSink({"mode": "online", "dir": tmp_path}).check()
    assert not result.ok and CLOSED_PORT_URL in result.message
    assert time.perf_counter() - started < 6


@pytest.mark.parametrize(
    ("harness", "task", "expected"),
    [
        ("simple_evals", "mmlu_pro", "simple_evals.mmlu_pro"),
        ("lm-evaluation-harness", "gsm8k", "lm-evaluation-harness.gsm8k"),
    ],
)
def test_valid_artifact_names_are_kept(harness, task, expected):
    assert artifact_name(harness, task) == expected


def test_invalid_artifact_names_are_made_valid_and_stay_distinct():
    names = {artifact_name("h", t) for t in ("a/b", "a:b", "a b", "ü" * 200)}
    assert len(names) == 4
    for name in names:
        assert len(name) <= 128 and all((c.isalnum() and c.isascii()) or c in "-_." for c in name), name


def test_run_folders_name_their_run_id():
    assert run_id_of_folder("offline-run-20260101_000000-abc123") == "abc123"
    assert run_id_of_folder("offline-run-20260101_000000-abc123-2") == "abc123"
    assert run_id_of_folder("run-20260101_000000-abc123") == "abc123"
    assert run_id_of_folder("latest-run") is None


def test_loading_the_sink_does_not_import_wandb():
    code = (
        "import sys, evalport.adapters.sinks.wandb as m, evalport.adapters.sinks.wandb_sink as old; "
        "m.WandbSink({}); print('wandb' in sys.modules, old.WandbSink is m.WandbSink)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False True"


def test_unknown_run_name_placeholders_and_long_tags_are_config_errors():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown placeholder"):
        WandbSink({"run_name": "{nope}"})
    with pytest.raises(ValidationError, match="at most 64"):
        WandbSink({"tags": ["x" * 65]})
    assert WandbSink({"tags": "a, b"}).config.tags == ["a", "b"]


def test_the_sink_still_accepts_the_old_option_names_name_and_attempts(tmp_path):
    with pytest.warns(DeprecationWarning, match="use 'run_name'"):
        sink = WandbSink({"dir": tmp_path, "name": "{task}", "attempts": 2})
    assert (sink.config.run_name, sink.config.retries) == ("{task}", 2)
