"""What a probe does around each call of its function: start its span (a ``UsageSpan`` or an SDK span), record
the call, make the span current, record an exception, end the span; one wrapper per kind of function (plain,
async, generator, async generator)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Status, StatusCode

from otel_usage._errors import internal_error
from otel_usage._levels import THRESHOLD
from otel_usage._record import Entry, Skip
from otel_usage._runtime import ENTRY_ATTR, HIDDEN
from otel_usage._serialize import serialize
from otel_usage._tracker import ProbeSpec

__all__ = ["async_gen_wrapper", "async_wrapper", "fail_span", "gen_wrapper", "sync_wrapper"]


# --- shared steps (kept out of the wrappers so that each wrapper stays small) -------------------


def _start(spec: ProbeSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Start the span, fill its record and make it current: (span, token), or (None, None)."""
    span = spec.tracker_obj.start_span(spec.function, spec.attributes)
    if span is None:
        return None, None
    try:
        entry = getattr(span, ENTRY_ATTR, None)
        if entry is not None and entry.__class__ is not Skip:
            capture = spec.capture
            entry.set_call(
                spec, capture.capture(args, kwargs), _class_name(args[0]) if capture.is_method and args else None
            )
        return span, context.attach(trace.set_span_in_context(span))
    except Exception:
        _abandon(span)  # the unit of work is not left open
        raise


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


def sync_wrapper(func: Callable[..., Any], spec: ProbeSpec) -> Callable[..., Any]:
    # The hot path: what is read on every call is bound once.
    hidden = HIDDEN
    threshold = THRESHOLD
    level = spec.level
    record_return = spec.record_return
    detach = context.detach
    start = _start

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
        try:
            span, token = start(spec, args, kwargs)
        except Exception as err:  # noqa: BLE001
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


def async_wrapper(func: Callable[..., Any], spec: ProbeSpec) -> Callable[..., Any]:
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


def gen_wrapper(func: Callable[..., Generator[Any, Any, Any]], spec: ProbeSpec) -> Callable[..., Iterator[Any]]:
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


def async_gen_wrapper(
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
