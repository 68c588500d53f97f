"""``evalport.app`` reaches the adapters only through the composition root (container.py)."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "src" / "app"


def _adapter_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found += [
            f"{path.name}:{node.lineno} imports {n}" for n in names if n.startswith("evalport.adapters")
        ]
    return sorted(set(found))


def test_no_app_module_but_the_container_imports_the_adapters():
    modules = sorted(p for p in APP.glob("*.py") if p.name != "container.py")
    assert modules, f"no modules found under {APP}"
    offending = [line for p in modules for line in _adapter_imports(p)]
    assert offending == []
