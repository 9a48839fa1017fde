"""Trackers (python_tracker's ``getTracker(__name__)``: a named source of probes, one per name, with the tracer
its probes use) and :class:`ProbeSpec`, what a probe knows from decoration time."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from opentelemetry import context, trace

from otel_usage._capture import ParamCapture
from otel_usage._context import add_data as _add_data
from otel_usage._context import add_info as _add_info
from otel_usage._levels import DEFAULT, Level
from otel_usage._runtime import LEVEL_ATTR, RUNTIME
from otel_usage._usage_span import FastStart, fast_start_for
from otel_usage.version import __version__

__all__ = ["ProbeSpec", "Tracker", "get_tracker"]

P = ParamSpec("P")
R = TypeVar("R")


class Tracker:
    """A named source of probes (python_tracker's ``getTracker(__name__)``): one per name."""

    __slots__ = ("_fast", "_generation", "_tracer", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._generation = -1
        self._tracer: trace.Tracer | None = None
        self._fast: FastStart | None = None

    def tracer(self) -> trace.Tracer | None:
        """The tracer probes of this tracker use now; None when telemetry is disabled."""
        if self._generation != RUNTIME.generation:
            self._generation = RUNTIME.generation
            self._tracer = None if RUNTIME.disabled else RUNTIME.provider().get_tracer(self.name, __version__)
            self._fast = None if self._tracer is None else fast_start_for(self._tracer)
        return self._tracer

    def start_span(
        self,
        name: str,
        attributes: dict[str, Any],
        ctx: context.Context | None = None,
        links: Sequence[trace.Link] | None = None,
    ) -> trace.Span | None:
        """A span of this tracker's probes, started under ``ctx`` (default the current context) and not yet
        made current; None when telemetry is disabled.

        A :class:`~otel_usage._usage_span.UsageSpan` when only the usage span processor would see the span
        (``links`` are then for nobody), else an SDK span.
        """
        tracer = self._tracer if self._generation == RUNTIME.generation else self.tracer()
        if tracer is None:
            return None
        fast = self._fast
        if fast is not None:
            span = fast.start(name, ctx)
            if span is not None:
                return span
        return tracer.start_span(name, context=ctx, links=links, attributes=attributes)

    @overload
    def probe(self, level: Callable[P, R]) -> Callable[P, R]: ...

    @overload
    def probe(
        self,
        level: Level | int | str = DEFAULT,
        fname: str | None = None,
        inc: Iterable[str] | None = None,
        exc: Iterable[str] | None = None,
        record_return: bool = False,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def probe(
        self,
        level: Any = DEFAULT,
        fname: str | None = None,
        inc: Iterable[str] | None = None,
        exc: Iterable[str] | None = None,
        record_return: bool = False,
    ) -> Any:
        """python_tracker's decorator: ``@tr.probe(level=DEFAULT, fname=None, inc=None, exc=None)``."""
        if callable(level) and not isinstance(level, (Level, int, str)):
            return _decorate()(level, DEFAULT, None, None, None, False, self)
        return functools.partial(
            _decorate(), level=level, name=fname, include=inc, exclude=exc, record_return=record_return, tracker=self
        )

    def add_info(self, key: str, value: Any) -> None:
        """Same as :func:`otel_usage.add_info`."""
        _add_info(key, value)

    def add_data(self, key: str, value: Any, depth: int | None = None) -> None:
        """Same as :func:`otel_usage.add_data`."""
        _add_data(key, value, depth)

    def __repr__(self) -> str:
        return f"<Tracker {self.name!r}>"


_trackers: dict[str, Tracker] = {}
_trackers_lock = threading.Lock()


def get_tracker(name: str) -> Tracker:
    """The tracker called ``name`` (usually ``__name__``); the same object for the same name."""
    tracker = _trackers.get(name)
    if tracker is None:
        with _trackers_lock:
            tracker = _trackers.setdefault(name, Tracker(name))
    return tracker


class ProbeSpec:
    """What a probe knows from decoration time."""

    __slots__ = ("attributes", "capture", "function", "level", "level_name", "record_return", "tracker", "tracker_obj")

    def __init__(
        self,
        function: str,
        tracker: Tracker,
        level: Level,
        capture: ParamCapture,
        record_return: bool,
    ) -> None:
        self.function = function
        self.tracker = tracker.name
        self.tracker_obj = tracker
        self.level = int(level)
        self.level_name = level.name
        self.capture = capture
        self.record_return = record_return
        self.attributes = {LEVEL_ATTR: level.name}


def _decorate() -> Any:
    from otel_usage._probe import decorate  # the decorator module builds on this one

    return decorate
