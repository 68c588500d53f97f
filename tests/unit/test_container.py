"""The composition root: the dependency-injector import workaround, and plugin classes checked against the ports."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from evalport.app.registry import PluginWarning, Registry
from evalport.domain.ports import ResultSink


class HalfSink:
    """Has a name and export, nothing else of the ResultSink port."""

    name = "half"

    def export(self, items):
        return []


def test_importing_the_container_leaves_the_web_frameworks_unimported_and_importable():
    code = (
        "import sys, importlib.util\n"
        "import evalport.app.container\n"
        "loaded = [m for m in ('fastapi', 'starlette', 'werkzeug', 'flask') if m in sys.modules]\n"
        "blocked = [m for m in ('fastapi', 'starlette', 'werkzeug', 'flask') if sys.modules.get(m, 1) is None]\n"
        "print(loaded, blocked)\n"
        "if importlib.util.find_spec('fastapi'):\n"
        "    import fastapi  # unblocked again after the container's import\n"
        "    print('fastapi ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines()[0] == "[] []"


def test_importing_the_container_leaves_pydantic_and_yaml_unimported_and_importable_after():
    code = (
        "import sys\n"
        "import evalport.app.container\n"
        "print([m for m in ('pydantic', 'yaml', 'pydantic_settings') if m in sys.modules])\n"
        "import pydantic, yaml\n"
        "print(pydantic.VERSION[:1], yaml.safe_load('a: 1'))\n"
        "from evalport.app.container import build_container\n"
        "print(type(build_container(ledger=False).service()).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines() == ["[]", "2 {'a': 1}", "ExportService"]


def test_a_plugin_class_that_does_not_conform_to_the_port_is_a_warning_naming_it(monkeypatch):
    ep = EntryPoint(name="half", value=f"{__name__}:HalfSink", group="evalport.test")
    monkeypatch.setattr("evalport.app.registry._entry_points", lambda group: {"half": ep})
    registry = Registry("evalport.test", "destination", ResultSink)
    with pytest.warns(PluginWarning, match=r"'half'.*ResultSink.*check.*destination"):
        assert registry.get("half") is HalfSink


def test_a_conforming_plugin_loads_without_a_warning(monkeypatch, recwarn):
    ep = EntryPoint(name="local", value="evalport.adapters.sinks.local:LocalSink", group="evalport.test")
    monkeypatch.setattr("evalport.app.registry._entry_points", lambda group: {"local": ep})
    Registry("evalport.test", "destination", ResultSink).get("local")
    assert not [w for w in recwarn if issubclass(w.category, PluginWarning)]


class ShelfSource:
    """A minimal ResultSource a plugin could register: it lists no jobs."""

    name = "shelf"
    warnings: list[str] = []

    def __init__(self, exec_db=None, job_dirs=()) -> None:
        self.exec_db = exec_db

    def list_jobs(self):
        return []

    def resolve(self, ids):
        return [], []

    def job_states(self, jobs):
        return {}

    def stage(self, jobs, policy, workdir):
        return {}

    def close(self) -> None:
        pass


def test_a_source_registered_with_register_source_is_the_one_the_container_builds_by_name():
    from dependency_injector import providers

    from evalport.app.container import build_container
    from evalport.app.registry import register_source
    from evalport.domain.ports import ResultSource

    registry = Registry("evalport.test-sources", "source", ResultSource)
    register_source("shelf", registry)(ShelfSource)
    container = build_container(exec_db="/nowhere/db.jsonl", source_name="shelf")
    container.source_registry.override(providers.Object(registry))
    source = container.source()
    assert source.list_jobs() == [] and source.name == "shelf"
    assert source.exec_db == "/nowhere/db.jsonl"


def test_the_upsert_capability_is_deprecated_and_ignored():
    from evalport.domain.ports import SinkCapabilities

    with pytest.warns(DeprecationWarning, match="upsert"):
        caps = SinkCapabilities(artifacts=True, upsert=False)
    assert caps == SinkCapabilities(artifacts=True)
