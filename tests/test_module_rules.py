"""House rules of the package's modules, checked on their source: every ``__all__`` is sorted, and no
module reaches into another module's private names (a name shared between modules is public in its
module, even when the module itself is private)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "otel_usage"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_all_is_sorted(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            names = list(ast.literal_eval(node.value))
            assert names == sorted(names)


def is_module(name: str) -> bool:
    """A module of the package (``from otel_usage import _counters`` imports a module, not a private name)."""
    folders = ("", "cli", "exporters", "instrumentors", "query")
    return any((PACKAGE / folder / f"{name}.py").exists() for folder in folders)


def private_uses(path: Path) -> list[str]:
    """``from otel_usage.x import _name`` and ``_module._name`` on a module of the package imported here."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    ours: set[str] = set()  # local names bound to modules of the package
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "otel_usage":
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and not is_module(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                    continue
                ours.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "otel_usage" and alias.asname:
                    ours.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ours
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_uses_another_modules_private_names(path: Path) -> None:
    assert private_uses(path) == []


def test_the_private_names_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from otel_usage._context import _secret\nfrom otel_usage import _counters\n_counters._lock\n")
    assert private_uses(sample) == ["line 1: from otel_usage._context import _secret", "line 3: _counters._lock"]
