"""The application service with several destinations, and sinks registered as plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

import evalport
from evalport.adapters.sinks.base import SinkConfig
from evalport.app.registry import register_exporter, register_sink
from evalport.domain.ports import ExportItem, SinkCapabilities
from evalport.domain.report import Outcome, Status


class MemoryConfig(SinkConfig):
    label: str = "mem"


@register_sink("memory")
class MemorySink:
    """A real, minimal sink keeping what it receives in a class-level dict (a fake, not a mock)."""

    name: ClassVar[str] = "memory"
    Config = MemoryConfig
    capabilities = SinkCapabilities()
    stored: ClassVar[dict[str, dict[str, float]]] = {}

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config

    destination = "memory"
    policy = property(lambda self: __import__("evalport").domain.artifacts.ArtifactPolicy(False))
    metric_filter = property(lambda self: self.config.metric_filter)

    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        out = []
        for item in items:
            self.stored[item.result.job_id] = item.result.flat_metrics()
            out.append(Outcome(item.result.job_id, self.destination, Status.EXPORTED))
        return out

    def check(self):
        raise NotImplementedError


@register_exporter("refusing")
class RefusingSink(MemorySink):
    """Raises on export, like a destination that is down."""

    name: ClassVar[str] = "refusing"
    destination = "refusing"

    def export(self, items):
        raise ConnectionRefusedError("destination at http://127.0.0.1:9 refused the connection")


@pytest.fixture(autouse=True)
def _clean_memory():
    MemorySink.stored.clear()


def test_one_call_exports_to_several_destinations_with_their_own_filters(home, tmp_path):
    report = evalport.export(
        home.invocation_ids,
        ["local", "memory"],
        {"local": {"output_dir": str(tmp_path / "o")}, "memory": {"log_metrics": ["score_micro"]}},
        exec_db=home.exec_db,
    )
    assert report.ok and report.exit_code() == 0
    assert report.counts() == {"exported": 12}
    assert sorted(MemorySink.stored) == sorted(j.job_id for j in home.jobs)
    assert all("score_micro" in k for metrics in MemorySink.stored.values() for k in metrics)
    assert sum(bool(m) for m in MemorySink.stored.values()) >= 2
    runs = json.loads((tmp_path / "o" / "results.json").read_text())["runs"]
    assert any("gsm8k_exact_match_strict-match" in r["metrics"] for r in runs), "local keeps every metric"


def test_a_failing_destination_never_stops_the_others(home, tmp_path):
    report = evalport.export(home.invocation_ids[0], ["refusing", "memory"], exec_db=home.exec_db)
    assert report.exit_code() == 1
    failed = report.for_destination("refusing")
    assert len(failed) == 3 and all(o.status is Status.FAILED and "127.0.0.1:9" in o.reason for o in failed)
    assert len(MemorySink.stored) == 3


def test_secrets_in_a_sink_error_are_redacted_in_the_report(home):
    class LeakySink(RefusingSink):
        def export(self, items):
            raise RuntimeError("401 for https://user:hunter2@host/api?token=abc123")

    register_sink("leaky")(LeakySink)
    report = evalport.export(home.invocation_ids[0], "leaky", exec_db=home.exec_db)
    reasons = " ".join(o.reason for o in report.outcomes)
    assert "hunter2" not in reasons and "abc123" not in reasons and "401" in reasons


def test_unknown_options_for_a_destination_raise_a_config_error(home):
    from evalport.domain.errors import ConfigError

    with pytest.raises(ConfigError, match="lable"):
        evalport.export(home.invocation_ids[0], "memory", {"memory": {"lable": "x"}}, exec_db=home.exec_db)


def test_built_in_sinks_load_through_the_entry_point_group():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="evalport.sinks")}
    assert names["local"] == "evalport.adapters.sinks.local:LocalSink"
    from evalport.app.registry import sink_registry

    assert sink_registry().get("local").__name__ == "LocalSink"


def test_a_broken_plugin_is_a_warning_naming_it_not_a_crash(tmp_path):
    """A real distribution on sys.path whose entry point names a module that does not import."""
    dist = tmp_path / "site" / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evalport.sinks]\nbroken = broken_plugin_module:Sink\n")
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": __import__("os").environ["PATH"]}
    run = subprocess.run(
        [sys.executable, "-m", "evalport.app.cli", "sinks"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "local" in run.stdout
    assert "broken" in run.stderr and "broken_plugin_module" in run.stderr


def test_the_cli_does_not_import_tracker_sdks_at_start_up():
    code = (
        "import sys; from evalport.app.cli import main; main(['--help']); "
        "print([m for m in ('mlflow', 'wandb', 'gspread', 'evalport.app.service') if m in sys.modules])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_source_warnings_reach_the_report(home, tmp_path):
    with open(home.exec_db, "a") as fh:
        fh.write("garbage\n")
    report = evalport.export(home.invocation_ids[0], "memory", exec_db=home.exec_db)
    assert any("corrupt" in n for n in report.notes)


def test_an_embedding_launcher_can_plug_in_its_own_source(home, tmp_path):
    from evalport.adapters.sources.local import LocalSource

    class OnlyFirstInvocation(LocalSource):
        name = "mine"

        def list_jobs(self):
            return [j for j in super().list_jobs() if j.invocation_id == home.invocation_ids[0]]

    report = evalport.export(home.invocation_ids[0], "memory", source=OnlyFirstInvocation(home.exec_db))
    assert report.counts() == {"exported": 3}
    assert Path(home.exec_db).exists()
