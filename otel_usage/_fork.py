"""Hooks run around ``os.fork``: one POSIX-guarded registration, weak for bound methods.

``os.register_at_fork`` hooks cannot be removed, so a hook given as a bound method holds its object only
weakly: once the object is gone the hook does nothing. Without ``os.register_at_fork`` (Windows) nothing
is registered.
"""

from __future__ import annotations

import os
import types
import weakref
from collections.abc import Callable

__all__ = ["after_fork_in_child", "at_fork"]


def _weak(hook: Callable[[], object]) -> Callable[[], object]:
    if not isinstance(hook, types.MethodType):
        return hook
    method = weakref.WeakMethod(hook)

    def call() -> None:
        bound = method()
        if bound is not None:
            bound()

    return call


def at_fork(
    *,
    before: Callable[[], object] | None = None,
    after_in_parent: Callable[[], object] | None = None,
    after_in_child: Callable[[], object] | None = None,
) -> None:
    """Register fork hooks (as ``os.register_at_fork``); a bound method is held weakly."""
    if not hasattr(os, "register_at_fork"):  # POSIX only
        return
    hooks = {"before": before, "after_in_parent": after_in_parent, "after_in_child": after_in_child}
    os.register_at_fork(**{when: _weak(hook) for when, hook in hooks.items() if hook is not None})


def after_fork_in_child(hook: Callable[[], object]) -> None:
    """Run ``hook`` in the child after every fork (fresh locks, no threads); a bound method is held weakly."""
    at_fork(after_in_child=hook)
