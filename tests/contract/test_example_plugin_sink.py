"""The example third-party sink in examples/jsonl-sink, loaded through its entry point, runs the contract."""

import json

import pytest

from evalport.app.registry import sink_registry
from evalport.testing import SinkContract
from evalport.testing.sink_contract import StoredRun

try:
    JsonlSink = sink_registry().get("jsonl")
except Exception:  # not installed: `pip install -e examples/jsonl-sink` (the README's test command does)
    JsonlSink = None

pytestmark = pytest.mark.skipif(JsonlSink is None, reason="examples/jsonl-sink is not installed")


class TestExamplePluginSink(SinkContract):
    stores_file_contents = False  # it keeps the names of the files it was given, not their text

    @pytest.fixture
    def make_sink(self, tmp_path):
        return lambda **options: JsonlSink({"path": tmp_path / "runs.jsonl", **options})

    @pytest.fixture
    def read_back(self):
        def read(sink, result):
            from evalport.domain.identity import RunIdentity

            key = RunIdentity.for_result(result, sink.config.log_mode).key
            lines = [json.loads(line) for line in sink.config.path.read_text().splitlines()]
            return [
                StoredRun(
                    r["key"], {k: float(v) for k, v in r["metrics"].items()}, set(r["files"]), json.dumps(r)
                )
                for r in lines
                if r["key"] == key
            ]

        return read

    @pytest.fixture
    def refusing_sink(self, tmp_path):
        (tmp_path / "file").write_text("")
        return JsonlSink({"path": tmp_path / "file" / "runs.jsonl"})


def test_the_plugin_is_listed_by_the_cli(capsys):
    from evalport.app.cli import main

    assert main(["sinks"]) == 0
    assert "jsonl" in capsys.readouterr().out
