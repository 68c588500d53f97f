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
