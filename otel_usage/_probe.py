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
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from opentelemetry import context, trace
from opentelemetry.trace import Status, StatusCode

from otel_usage._capture import ParamCapture
from otel_usage._context import add_data as _add_data
from otel_usage._context import add_info as _add_info
from otel_usage._errors import internal_error
from otel_usage._levels import DEFAULT, THRESHOLD, Level, parse_level
from otel_usage._record import Entry, Skip
from otel_usage._runtime import ENTRY_ATTR, HIDDEN, LEVEL_ATTR, RUNTIME
from otel_usage._serialize import serialize
from otel_usage._usage_span import FastStart, fast_start_for
from otel_usage.version import __version__

__all__ = ["ProbeSpec", "Tracker", "decorate", "fail_span", "get_tracker", "traced_usage"]

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
            return decorate(level, DEFAULT, None, None, None, False, self)
        return functools.partial(
            decorate, level=level, name=fname, include=inc, exclude=exc, record_return=record_return, tracker=self
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
        wrapper: Any = _async_gen_wrapper(func, spec)
    elif inspect.iscoroutinefunction(func):
        wrapper = _async_wrapper(func, spec)
    elif inspect.isgeneratorfunction(func):
        wrapper = _gen_wrapper(func, spec)
    else:
        wrapper = _sync_wrapper(func, spec)
    functools.update_wrapper(wrapper, func)
    wrapper.__otel_usage_probe__ = spec
    return wrapper


# --- shared steps (kept out of the wrappers so that each wrapper stays small) -------------------


def _start(spec: ProbeSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Start the span, fill its record and make it current: (span, token), or (None, None)."""
    span = spec.tracker_obj.start_span(spec.function, spec.attributes)
    if span is None:
        return None, None
    entry = getattr(span, ENTRY_ATTR, None)
    if entry is not None and entry.__class__ is not Skip:
        capture = spec.capture
        entry.set_call(
            spec, capture.capture(args, kwargs), _class_name(args[0]) if capture.is_method and args else None
        )
    return span, context.attach(trace.set_span_in_context(span))


_TYPE_NAME = type.__dict__["__name__"]
_TYPE_QUALNAME = type.__dict__["__qualname__"]


def _class_name(first: Any) -> str:
    """The name of ``first`` if it is a class, else of its class; never raises.

    Read from the type itself, so that a metaclass (or ``__class__``) property that raises is not asked.
    """
    cls = first if issubclass(type(first), type) else type(first)
    return str(_TYPE_NAME.__get__(cls, type))


def fail_span(span: Any, exc: BaseException) -> None:
    """Record an exception that leaves a probe or a transaction (the caller re-raises it); never raises."""
    try:
        entry = getattr(span, ENTRY_ATTR, None)
        message = _safe_str(exc)
        kind = str(_TYPE_QUALNAME.__get__(type(exc), type))
        if isinstance(entry, Entry):
            entry.fail(kind, message)
        try:
            str(exc)
        except Exception:  # noqa: BLE001 - the SDK's record_exception would raise on it: the same event, safely
            span.add_event(
                "exception", {"exception.type": kind, "exception.message": message, "exception.escaped": "True"}
            )
        else:
            span.record_exception(exc, escaped=True)
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}"))
    except Exception as err:  # noqa: BLE001
        internal_error(err, "probe exception")


def _end(span: Any, token: Any, result: Any, record_return: bool) -> None:
    try:
        context.detach(token)
    except Exception as err:  # noqa: BLE001
        internal_error(err, "probe end")
    _finish_detached(span, result, record_return)


def _start_detached(spec: ProbeSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, bool]:
    """For generators: (span, its context to attach at each step, hide flag), the context not left attached."""
    if HIDDEN.get():
        return None, None, False
    if _filtered(spec):
        return None, None, True
    try:
        span, token = _start(spec, args, kwargs)
        if span is None:
            return None, None, False
        ctx = context.get_current()
        context.detach(token)
        return span, ctx, False
    except Exception as err:  # noqa: BLE001
        internal_error(err, "probe start")
        return None, None, False


def _abandon(span: Any) -> None:
    """End a span whose probe failed to start (so the unit of work is not left open)."""
    if span is not None:
        try:
            span.end()
        except Exception as err:  # noqa: BLE001
            internal_error(err, "probe start")


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)[:1024]
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(exc).__qualname__}>"


def _filtered(spec: ProbeSpec) -> bool:
    return spec.level < THRESHOLD.value


# --- wrappers ---------------------------------------------------------------------------------


def _sync_wrapper(func: Callable[..., Any], spec: ProbeSpec) -> Callable[..., Any]:
    # The hot path: the steps of _start/_end are inlined here, everything else is bound once.
    hidden = HIDDEN
    threshold = THRESHOLD
    level = spec.level
    tracker = spec.tracker_obj
    runtime = RUNTIME
    name = spec.function
    attributes = spec.attributes
    capture = spec.capture.capture
    is_method = spec.capture.is_method
    record_return = spec.record_return
    attach = context.attach
    detach = context.detach
    in_context = trace.set_span_in_context
    skip_class = Skip

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if level < threshold.value:
            if hidden.get():
                return func(*args, **kwargs)
            mark = hidden.set(True)
            try:
                return func(*args, **kwargs)
            finally:
                hidden.reset(mark)
        if hidden.get():
            return func(*args, **kwargs)
        span: Any = None
        try:
            tracer = tracker._tracer if tracker._generation == runtime.generation else tracker.tracer()
            if tracer is None:
                span = None
            else:
                fast = tracker._fast
                span = fast.start(name) if fast is not None else None
                if span is None:
                    span = tracer.start_span(name, attributes=attributes)
                entry = getattr(span, ENTRY_ATTR, None)
                if entry is not None and entry.__class__ is not skip_class:
                    entry.probe = spec
                    entry.params = capture(args, kwargs)
                    if is_method and args:
                        entry.class_name = _class_name(args[0])
                token = attach(in_context(span))
        except Exception as err:  # noqa: BLE001
            _abandon(span)
            internal_error(err, "probe start")
            span = None
        if span is None:
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            fail_span(span, exc)
            _end(span, token, None, False)
            raise
        if record_return:
            _end(span, token, result, True)
            return result
        try:
            detach(token)
            span.end()
        except Exception as err:  # noqa: BLE001
            internal_error(err, "probe end")
        return result

    return wrapper


def _async_wrapper(func: Callable[..., Any], spec: ProbeSpec) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _filtered(spec):
            if HIDDEN.get():
                return await func(*args, **kwargs)
            mark = HIDDEN.set(True)
            try:
                return await func(*args, **kwargs)
            finally:
                HIDDEN.reset(mark)
        if HIDDEN.get():
            return await func(*args, **kwargs)
        try:
            span, token = _start(spec, args, kwargs)
        except Exception as err:  # noqa: BLE001
            internal_error(err, "probe start")
            span = None
        if span is None:
            return await func(*args, **kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            fail_span(span, exc)
            _end(span, token, None, False)
            raise
        _end(span, token, result, spec.record_return)
        return result

    return wrapper


class _Iteration:
    """A generator probe's state across the steps of the iteration: its span, and the context each step
    runs in (attached only while the generator runs, resumed as the previous step left it)."""

    __slots__ = ("ctx", "hide", "span")

    def __init__(self, spec: ProbeSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.span, self.ctx, self.hide = _start_detached(spec, args, kwargs)

    def enter(self) -> Any:
        return _enter(self.ctx, self.hide)

    def leave(self, token: Any) -> None:
        if self.ctx is not None:  # the next step resumes the context this one left (open usage contexts)
            self.ctx = context.get_current()
        _leave(token, self.hide)

    def end(self, exc: BaseException | None, result: Any = None, record_return: bool = False) -> None:
        if self.span is not None:
            if exc is not None and not isinstance(exc, GeneratorExit):
                fail_span(self.span, exc)
            _finish_detached(self.span, result, record_return)


def _gen_wrapper(func: Callable[..., Generator[Any, Any, Any]], spec: ProbeSpec) -> Callable[..., Iterator[Any]]:
    """The span covers the whole iteration; the context is attached only while the generator runs."""

    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        steps = _Iteration(spec, args, kwargs)
        gen = func(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = steps.enter()
                try:
                    item = gen.throw(thrown) if thrown is not None else gen.send(sent)
                except StopIteration as stop:
                    result = stop.value
                    break
                finally:
                    steps.leave(token)
                thrown = None
                try:
                    sent = yield item
                except GeneratorExit:
                    token = steps.enter()
                    try:
                        gen.close()
                    finally:
                        steps.leave(token)
                    raise
                except BaseException as exc:  # noqa: BLE001
                    thrown = exc
        except BaseException as exc:
            steps.end(exc)
            raise
        steps.end(None, result, spec.record_return)
        return result

    return wrapper


def _async_gen_wrapper(
    func: Callable[..., AsyncGenerator[Any, Any]], spec: ProbeSpec
) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        steps = _Iteration(spec, args, kwargs)
        agen = func(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = steps.enter()
                try:
                    item = await (agen.athrow(thrown) if thrown is not None else agen.asend(sent))
                except StopAsyncIteration:
                    break
                finally:
                    steps.leave(token)
                thrown = None
                try:
                    sent = yield item
                except GeneratorExit:
                    token = steps.enter()
                    try:
                        await agen.aclose()
                    finally:
                        steps.leave(token)
                    raise
                except BaseException as exc:  # noqa: BLE001
                    thrown = exc
        except BaseException as exc:
            steps.end(exc)
            raise
        steps.end(None)

    return wrapper


def _enter(ctx: Any, hide: bool) -> Any:
    if ctx is not None:
        return context.attach(ctx)
    if hide:
        return HIDDEN.set(True)
    return None


def _leave(token: Any, hide: bool) -> None:
    if token is None:
        return
    if hide:
        HIDDEN.reset(token)
    else:
        context.detach(token)


def _finish_detached(span: Any, result: Any, record_return: bool) -> None:
    try:
        if record_return:
            entry = getattr(span, ENTRY_ATTR, None)
            if isinstance(entry, Entry):
                entry.ret = serialize(result)
        span.end()
    except Exception as err:  # noqa: BLE001
        internal_error(err, "probe end")
