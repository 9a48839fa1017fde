"""Info (shared by a whole usage log) and data (per call record).

- :func:`add_info` records a key on the current unit of work: authoritatively on the current span's
  record, and in the execution context (baggage included) so that what runs from here on sees it: later
  events, descendants in other threads, tasks and services.
- :func:`usage_context` sets info for everything inside a ``with`` block (or a decorated function);
  nested contexts behave as a stack, same names included.
- :func:`add_data` adds a key to the current call's record, or to an ancestor's (``depth``).
- :func:`get_info` reads the info in force here, which is also the ``context`` of an event emitted here.

Two views of info, on purpose (edX event-tracking semantics for the second):

- the **usage log's info** is everything set during its unit of work, whenever and wherever it was set:
  a ``usage_context`` that has exited, or an ``add_info`` of a call that has returned, still describes
  the log;
- the **info in force** (:func:`get_info`, an event's ``context``) holds only what is open at this point
  of the execution: allow-listed inbound baggage, then the usage contexts entered and not yet exited and
  the ``add_info`` keys of the enclosing calls, the later (inner) one winning for a key. It lives in the
  ``contextvars`` context (:data:`INFO_KEY`): an ``add_info`` lasts until the end of the innermost
  enclosing probed call or ``usage_context`` block; an asyncio task or a thread started with a copy of
  the context sees what was in force when it was created, and nothing entered by its parent later.

Outside any recorded unit of work, ``add_info`` and ``add_data`` are dropped with a warning once per
key and never raise; nothing set there can leak into a later, unrelated log.

Baggage carries strings only: a string value travels as it is; any other value (and a string that
would be altered on the wire) travels JSON-encoded behind the prefix ``"j:"`` and is decoded back on
the way in. A value whose baggage entry would exceed the W3C limit (4096 bytes) is refused with a
warning and counted (``info_oversize``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote_plus

from opentelemetry import baggage, context, trace

from otel_usage import _counters, _serialize
from otel_usage._info_codec import encode_info_value
from otel_usage._runtime import ENTRY_ATTR, HIDDEN, INFO_KEY
from otel_usage._schema import RECORD_KEYS, RESERVED_KEYS
from otel_usage._warnings import RateLimitedLog

__all__ = [
    "add_data",
    "add_info",
    "current_entry",
    "get_info",
    "info_in_force",
    "is_recorded",
    "per_call",
    "usage_context",
]

logger = logging.getLogger("otel_usage")

P = ParamSpec("P")
R = TypeVar("R")

_MAX_PAIR_BYTES = 4096

_warned = RateLimitedLog(None, max_keys=10_000)  # once per process


def _warn_once(kind: str, key: str, message: str) -> None:
    if not _warned.allow(f"{kind}:{key}"):
        return
    logger.warning(message, key)


def _check_info_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"info keys must be non-empty strings, got {key!r}")
    if key in RESERVED_KEYS:
        raise ValueError(
            f"{key!r} is reserved in usage logs and cannot be an info key (reserved: {sorted(RESERVED_KEYS)})"
        )
    return key


def current_entry() -> Any:
    """The current span's record when a usage processor buffers it, else None (or a skip marker)."""
    return getattr(trace.get_current_span(), ENTRY_ATTR, None)


def is_recorded(entry: Any) -> bool:
    return entry is not None and hasattr(entry, "root")


def _prepared(key: str, value: Any) -> tuple[Any, str] | None:
    """Serialize an info value and its baggage form; None (warned, counted) when it cannot travel."""
    clean = _serialize.serialize_named(key, value)
    encoded = encode_info_value(clean)
    # percent-encoding at most triples the UTF-8 bytes: measure exactly only when that could be too long
    if (len(key) + len(encoded)) * 12 + 1 > _MAX_PAIR_BYTES and (
        len(quote_plus(key)) + 1 + len(quote_plus(encoded)) > _MAX_PAIR_BYTES
    ):
        _counters.count_drop("info_oversize", detail=f"info key {key!r}")
        return None
    return clean, encoded


def add_info(key: str, value: Any) -> None:
    """Share ``key`` = ``value`` with the whole current usage log (and its descendants, via baggage).

    Raises:
        ValueError: ``key`` is not a string or is one of the reserved top-level keys.
    """
    _check_info_key(key)
    try:
        if HIDDEN.get():
            return
        entry = current_entry()
        if not is_recorded(entry):
            _warn_once("info", key, "otel_usage: add_info(%r) outside a recorded unit of work was ignored")
            _counters.count_drop("info_outside_unit_of_work")
            return
        prepared = _prepared(key, value)
        if prepared is None:
            return
        clean, encoded = prepared
        entry.add_info(key, clean)
        # What runs from here on (events, threads with context, tasks, outgoing calls) sees it; the
        # detach of the enclosing probe or usage context ends it.
        ctx = baggage.set_baggage(key, encoded)
        context.attach(context.set_value(INFO_KEY, _with_info(ctx, {key: clean}), ctx))
    except Exception as exc:  # noqa: BLE001
        from otel_usage._errors import internal_error

        internal_error(exc, "add_info")


def add_data(key: str, value: Any, depth: int | None = None) -> None:
    """Add ``key`` = ``value`` to the current call's record, or to an ancestor's.

    Args:
        key: a name that is not one of the record's own keys.
        value: any value; serialized (and redacted by name) now.
        depth: None for the current call; ``0`` for the local root, ``n > 0`` for the ancestor at that
            depth; ``-1`` for the parent, ``-2`` for the grandparent and so on.

    Raises:
        ValueError: ``key`` is not a string or is one of the record's own keys.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"data keys must be non-empty strings, got {key!r}")
    if key in RECORD_KEYS:
        raise ValueError(
            f"{key!r} is a built-in key of call records and cannot be data (built-in: {sorted(RECORD_KEYS)})"
        )
    try:
        if HIDDEN.get():
            return
        entry = current_entry()
        if not is_recorded(entry):
            _warn_once("data", key, "otel_usage: add_data(%r) outside a recorded call was ignored")
            _counters.count_drop("data_outside_unit_of_work")
            return
        target = _ancestor(entry, depth)
        if target is None:
            _warn_once("depth", f"{key}:{depth}", f"otel_usage: add_data(%r, depth={depth}) names no ancestor; ignored")
            _counters.count_drop("data_bad_depth")
            return
        target.add_data(key, _serialize.serialize_named(key, value))
    except Exception as exc:  # noqa: BLE001
        from otel_usage._errors import internal_error

        internal_error(exc, "add_data")


def _ancestor(entry: Any, depth: int | None) -> Any:
    if depth is None:
        return entry
    if depth < 0:
        target = entry
        for _ in range(-depth):
            target = target.parent
            if target is None:
                return None
        return target
    if depth > entry.depth:
        return None
    target = entry
    while target.depth > depth:
        target = target.parent
    return target


def _with_info(ctx: context.Context, items: Mapping[str, Any]) -> dict[str, Any]:
    """A new info-in-force dict: the one of ``ctx`` with ``items`` on top."""
    outer = context.get_value(INFO_KEY, ctx)
    merged: dict[str, Any] = dict(outer) if outer else {}  # type: ignore[call-overload]
    merged.update(items)
    return merged


def info_in_force() -> Mapping[str, Any] | None:
    """The info in force here, shared (never mutate it); None when there is none. See :func:`get_info`."""
    ctx_info: Mapping[str, Any] | None = context.get_value(INFO_KEY)  # type: ignore[assignment]
    entry = current_entry()
    inbound = entry.root.inbound_info if is_recorded(entry) else None
    if not inbound:
        return ctx_info
    if not ctx_info:
        return inbound  # type: ignore[no-any-return]
    merged = dict(inbound)
    merged.update(ctx_info)
    return merged


def get_info() -> dict[str, Any]:
    """The info in force here (a new dict): what an event emitted here carries as its ``context``.

    Allow-listed inbound baggage, then the usage contexts entered and not yet exited and the
    :func:`add_info` keys of the enclosing calls; for a key set at several levels the innermost wins.
    A context that has exited, or an ``add_info`` of a call that has returned, is no longer in force
    (the usage log's info still has it).
    """
    info = info_in_force()
    return dict(info) if info else {}


class usage_context(contextlib.ContextDecorator):
    """Set info for everything inside: ``with usage_context(tenant="acme"): ...``.

    Also a decorator. Contexts nest as a stack: an inner value of the same name wins inside and the
    outer one is back after; on exit (an exception included) its keys leave the info in force, so
    events emitted later no longer carry them. Inside a recorded unit of work the info is also
    recorded on the usage log, which keeps it.

    Raises:
        ValueError: a key is reserved (see :func:`add_info`).
    """

    def __init__(self, info: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        merged = dict(info or {}, **kwargs)
        for key in merged:
            _check_info_key(key)
        self._raw = merged
        self._tokens: list[object] = []

    def __enter__(self) -> usage_context:
        token = None
        try:
            token = self._enter()
        except Exception as exc:  # noqa: BLE001
            from otel_usage._errors import internal_error

            internal_error(exc, "usage_context")
        self._tokens.append(token)
        return self

    def _enter(self) -> object:
        prepared: dict[str, Any] = {}
        ctx = context.get_current()
        for key, value in self._raw.items():
            pair = _prepared(key, value)
            if pair is None:
                continue
            prepared[key] = pair[0]
            ctx = baggage.set_baggage(key, pair[1], ctx)
        ctx = context.set_value(INFO_KEY, _with_info(ctx, prepared), ctx)
        if not HIDDEN.get():
            entry = current_entry()
            if is_recorded(entry) and prepared:
                entry.update_info(prepared)
        return context.attach(ctx)

    def __exit__(self, *exc_info: object) -> None:
        token = self._tokens.pop() if self._tokens else None
        if token is not None:
            context.detach(token)  # type: ignore[arg-type]

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:  # type: ignore[override]
        raw = self._raw
        return per_call(func, lambda: usage_context(raw))


def per_call(func: Callable[P, R], make: Callable[[], contextlib.AbstractContextManager[Any]]) -> Callable[P, R]:
    """``func`` (plain or async) run inside a new ``make()`` on each call: the decorator form of
    :class:`usage_context` and ``timer``."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with make():
                return await func(*args, **kwargs)

        return run_async  # type: ignore[return-value]

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with make():
            return func(*args, **kwargs)

    return run
