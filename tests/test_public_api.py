"""The public names: each public module's ``__all__`` is sorted and is exactly what it holds (httpx's habit),
and every class the README names can be imported from a public module."""

from __future__ import annotations

import builtins
import importlib
import inspect
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

PUBLIC_MODULES = [
    "otel_usage",
    "otel_usage.exporters",
    "otel_usage.instrumentors",
    "otel_usage.instrumentors.flask",
    "otel_usage.instrumentors.probes",
    "otel_usage.testing",
]

#: Dunder names that are part of a module's public surface.
PUBLIC_DUNDERS = {"__version__"}


def public_vars(module: object) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if (not name.startswith("_") or name in PUBLIC_DUNDERS) and not inspect.ismodule(value)
    }


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_is_exactly_the_public_namespace(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(getattr(module, "__all__", []))
    assert exported == sorted(exported)
    for attr in exported:  # resolves lazily exported names too
        assert getattr(module, attr) is not None
    assert public_vars(module) == set(exported)


def test_star_import_gives_every_public_name() -> None:
    for name in PUBLIC_MODULES:
        namespace: dict[str, object] = {}
        exec(f"from {name} import *", namespace)
        module = importlib.import_module(name)
        assert set(namespace) - {"__builtins__"} == set(module.__all__)


#: Backquoted capitalised names in the README that are not classes of this package.
NOT_OURS = {
    "Authorization": "an HTTP header",
    "Cart": "a class of the README's example shop",
    "LogRecordExporter": "OpenTelemetry's exporter interface",
}


def test_every_class_the_readme_names_is_importable_from_a_public_module() -> None:
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*)(?:\([^`]*\))?`", text))
    exported: dict[str, str] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for attr in module.__all__:
            exported.setdefault(attr, module_name)
    missing = sorted(n for n in named if n not in exported and n not in NOT_OURS and not hasattr(builtins, n))
    assert missing == []
    for name in named & set(exported):
        assert inspect.isclass(getattr(importlib.import_module(exported[name]), name)) or callable(
            getattr(importlib.import_module(exported[name]), name)
        )
