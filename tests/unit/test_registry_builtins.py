"""Built-in adapters are found by name without scanning the installed entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evalport.app import registry as registry_module
from evalport.app.registry import BUILTINS, SINK_GROUP, SOURCE_GROUP, Registry
from evalport.domain.ports import ResultSink, ResultSource

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_in_table_is_the_entry_point_groups_of_pyproject():
    tomllib = pytest.importorskip("tomllib")
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert {SINK_GROUP: groups[SINK_GROUP], SOURCE_GROUP: groups[SOURCE_GROUP]} == BUILTINS


def test_a_built_in_sink_and_source_load_without_an_entry_point_scan(monkeypatch):
    def no_scan(group):
        raise AssertionError(f"scanned the entry points of {group}")

    monkeypatch.setattr(registry_module, "_entry_points", no_scan)
    assert Registry(SINK_GROUP, "destination", ResultSink).get("local").__name__ == "LocalSink"
    assert Registry(SOURCE_GROUP, "source", ResultSource).get("slurm").__name__ == "SlurmSource"


def test_a_name_that_is_no_built_in_scans_the_entry_points_once(monkeypatch):
    from importlib.metadata import EntryPoint

    scans = []

    def scan(group):
        scans.append(group)
        return {"third": EntryPoint("third", "evalport.adapters.sinks.local:LocalSink", group)}

    monkeypatch.setattr(registry_module, "_entry_points", scan)
    registry = Registry(SINK_GROUP, "destination", ResultSink)
    assert registry.get("third").__name__ == "LocalSink"
    assert "third" in registry.names() and "mlflow" in registry.names()
    with pytest.raises(Exception, match="unknown destination 'nope'"):
        registry.get("nope")
    assert scans == [SINK_GROUP]


def test_a_missing_built_in_module_is_still_named_with_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.delitem(sys.modules, "evalport.adapters.sinks.mlflow", raising=False)
    registry = Registry(SINK_GROUP, "destination", ResultSink)
    with pytest.raises(Exception, match="mlflow"):
        registry.get("mlflow")
