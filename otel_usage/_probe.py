"""Probes: ``@traced_usage`` and python_tracker's ``get_tracker(name).probe(...)``.

A probe at or above the threshold runs its function inside an OTel span (made current, so callees
nest under it) and, when a usage processor buffers that span, records the bound parameters, the
class of ``self``/``cls`` and, on request, the return value. A probe below the threshold creates no
span and hides everything it calls (the ``HIDDEN`` flag). The function itself runs outside any guard:
its exception is recorded and re-raised as the same object with its traceback; an error of ours is
logged and the function still runs exactly once.

Everything that can be is computed at decoration time (name, level, parameter plan).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar, overload

from otel_usage._capture import ParamCapture
from otel_usage._levels import DEFAULT, Level, parse_level
from otel_usage._probe_calls import async_gen_wrapper, async_wrapper, gen_wrapper, sync_wrapper
from otel_usage._tracker import ProbeSpec, Tracker, get_tracker

__all__ = ["decorate", "traced_usage"]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def traced_usage(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced_usage(
    *,
    level: Level | int | str = DEFAULT,
    name: str | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    record_return: bool = False,
    tracker: str | Tracker | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced_usage(
    func: Any = None,
    /,
    *,
    level: Level | int | str = DEFAULT,
    name: str | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    record_return: bool = False,
    tracker: str | Tracker | None = None,
) -> Any:
    """Record calls of the decorated function in usage logs.

    Usable bare (``@traced_usage``) or with arguments. Works on functions, methods, classmethods and
    staticmethods (either decorator order), async functions, generators and async generators (the
    span covers the whole iteration).

    Args:
        level: the probe's level; recorded when at or above the threshold.
        name: the recorded function name; default ``module.qualname``.
        include: only these parameters are recorded (``self``/``cls`` only when named here).
        exclude: these parameters are never recorded (wins over ``include``).
        record_return: also record the (serialized) return value.
        tracker: the tracker name; default the function's module.

    Raises:
        ValueError: a bad level, or include/exclude naming parameters the function does not have.
    """
    if func is not None:
        return decorate(func, level, name, include, exclude, record_return, tracker)
    return functools.partial(
        decorate,
        level=level,
        name=name,
        include=include,
        exclude=exclude,
        record_return=record_return,
        tracker=tracker,
    )


def decorate(
    func: Any,
    level: Any,
    name: str | None,
    include: Iterable[str] | None,
    exclude: Iterable[str] | None,
    record_return: bool,
    tracker: str | Tracker | None,
) -> Any:
    """Wrap ``func`` in a probe (what ``@traced_usage(...)`` and ``Tracker.probe`` do; see ``traced_usage``)."""
    if isinstance(func, (classmethod, staticmethod)):
        inner = decorate(func.__func__, level, name, include, exclude, record_return, tracker)
        return type(func)(inner)
    if not callable(func):
        raise TypeError(f"traced_usage needs a function, got {func!r}")
    lvl = parse_level(level)
    module = getattr(func, "__module__", None) or "__main__"
    tracker_obj = tracker if isinstance(tracker, Tracker) else get_tracker(tracker or module)
    function = name or f"{module}.{getattr(func, '__qualname__', getattr(func, '__name__', repr(func)))}"
    capture = ParamCapture(func, include, exclude)
    spec = ProbeSpec(function, tracker_obj, lvl, capture, record_return)
    if inspect.isasyncgenfunction(func):
        wrapper: Any = async_gen_wrapper(func, spec)
    elif inspect.iscoroutinefunction(func):
        wrapper = async_wrapper(func, spec)
    elif inspect.isgeneratorfunction(func):
        wrapper = gen_wrapper(func, spec)
    else:
        wrapper = sync_wrapper(func, spec)
    functools.update_wrapper(wrapper, func)
    wrapper.__otel_usage_probe__ = spec
    return wrapper
