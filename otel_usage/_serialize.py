"""Turning any value into JSON-native data: :func:`serialize` and its variants, the limits, the walk.

:func:`serialize` never raises, never consumes iterators or generators, never mutates its input, and
always returns something ``json.dumps(x, allow_nan=False)`` accepts. It follows the process-wide policy,
:class:`SerializeLimits` and a :class:`~otel_usage._redact.Redactor`: :func:`configure` installs them
with :func:`set_policy` (from ``OTEL_USAGE_PARAM_MAX_*``, ``OTEL_USAGE_REDACT`` and
``OTEL_USAGE_REDACT_DEFAULTS``); this module reads no environment variable itself. How each kind of value
is represented is told in :mod:`otel_usage._represent`; a :class:`Walker` applies those rules within the
limits and writes the markers.

Markers (JSON strings; ``…`` is U+2026) say where something was cut or replaced:

=============================== =================================================================
``"abc…[+N chars]"``            a string cut at ``max_length`` (or at what remains of ``max_size``)
``"QUJD…[+N bytes]"``           bytes cut before base64 encoding
``[..., "…[+N items]"]``        a list or set cut at ``max_items`` or at the ``max_size`` budget
``{..., "…": "+N items"}``      a dict cut the same way, or a call's extra keyword arguments
``"…[depth]"``                  a container nested deeper than ``max_depth`` (or a chain of more
                                than 8 representation hooks each returning a new object)
``"…[cycle]"``                  a container or object that contains itself
``"<unrepresentable Foo>"``     an object of class ``Foo`` whose rule and ``repr`` both raised (a class
                                name is cut to 128 characters)
``"<int of N bits>"``           an int too large to write as a JSON number
``"[REDACTED]"``                the value of a sensitive parameter name or dict key
=============================== =================================================================

Any other rule that raises falls back to ``repr(obj)``, cut like any string. The ``max_size`` budget is
rough: the budget is checked before each item, so a value may go over by about one item per nesting
level.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from otel_usage._errors import internal_error
from otel_usage._redact import REDACTED, Redactor
from otel_usage._represent import (
    BIG_INT,
    Hook,
    big_int,
    builtin_rule,
    hook_for,
    key_text,
    non_finite,
    rule_for,
    type_name,
    unrepresentable,
    utf8,
)

__all__ = [
    "CUT_KEY",
    "CYCLE",
    "SerializeLimits",
    "TOO_DEEP",
    "Walker",
    "get_policy",
    "policy",
    "represent",
    "serialize",
    "serialize_attributes",
    "serialize_decoded",
    "serialize_named",
    "set_policy",
]

logger = logging.getLogger(__name__)

CYCLE = "…[cycle]"
TOO_DEEP = "…[depth]"
CUT_KEY = "…"

_MAX_HOPS = 8
_NATIVE = frozenset({str, int, float, bool, type(None), dict, list, tuple})


@dataclasses.dataclass(frozen=True)
class SerializeLimits:
    """Bounds on one serialized value.

    Attributes:
        max_depth: deepest container nesting kept (the top-level container is level 1).
        max_length: longest string kept, in characters.
        max_items: most items kept of one list, dict or set.
        max_size: rough budget, in characters of JSON, for one top-level value (each parameter, each
            data value); checked before each item.
    """

    max_depth: int = 6
    max_length: int = 1024
    max_items: int = 100
    max_size: int = 8192

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SerializeLimits.{field.name} must be an integer >= 1, got {value!r}")


#: The process-wide limits and redactor, replaced (never changed in place) by :func:`set_policy`: read it
#: as an attribute of this module, a name imported from here keeps the policy of the time of the import.
policy: tuple[SerializeLimits, Redactor] = (SerializeLimits(), Redactor())


def set_policy(limits: SerializeLimits, redactor: Redactor) -> None:
    """Install the process-wide limits and redactor (done by ``configure()``); applies to the next value.

    Raises:
        TypeError: an argument has the wrong type.
    """
    global policy
    if not isinstance(limits, SerializeLimits) or not isinstance(redactor, Redactor):
        raise TypeError("set_policy() takes a SerializeLimits and a Redactor")
    policy = (limits, redactor)


def get_policy() -> tuple[SerializeLimits, Redactor]:
    """The process-wide limits and redactor."""
    return policy


class Walker:
    """One top-level value's walk: limits, what remains of the size budget, the containers being walked."""

    __slots__ = ("budget", "max_depth", "max_items", "max_length", "redactor", "stack")

    def __init__(self, limits: SerializeLimits, redactor: Redactor) -> None:
        self.max_depth = limits.max_depth
        self.max_items = limits.max_items
        self.max_length = limits.max_length
        self.budget = limits.max_size
        self.redactor = redactor
        self.stack: set[int] = set()

    def value(self, obj: Any, depth: int) -> Any:
        """The JSON-native form of ``obj`` found at nesting ``depth`` (0 at the top); never raises."""
        t = type(obj)
        if t is str:
            return self.text(obj)
        if t is int:
            self.budget -= (obj.bit_length() * 77 >> 8) + 2
            return obj if -BIG_INT < obj < BIG_INT else big_int(obj)
        if t is bool or obj is None:
            self.budget -= 5
            return obj
        if t is float:
            self.budget -= 12
            return obj if obj - obj == 0.0 else non_finite(obj)
        try:
            if t is dict:
                return self.mapping(obj, obj.items(), len(obj), depth)
            if t is list or t is tuple:
                return self.sequence(obj, obj, len(obj), depth)
            return rule_for(t)(self, obj, depth)
        except Exception:
            logger.debug("representing a %s failed; using repr()", type_name(t), exc_info=True)
            return self.fallback(obj)

    def text(self, s: str, n: int = -1) -> str:
        """``s`` cut at ``max_length`` or at the remaining budget, with its marker; encodable in UTF-8.

        ``n`` is the length of the whole string when ``s`` is its beginning only.
        """
        n = max(n, len(s))
        limit = self.max_length if self.budget >= self.max_length else max(self.budget, 0)
        if n <= limit:
            if not s.isascii():
                s = utf8(s)
            self.budget -= len(s) + 2
            return s
        kept = s[:limit]
        if not kept.isascii():
            kept = utf8(kept)
        self.budget -= len(kept) + 16
        return f"{kept}…[+{n - limit} chars]"

    def binary(self, obj: bytes | bytearray | memoryview) -> str:
        """Base64 of the bytes of ``obj``, cut so that the text fits the length limit."""
        view = memoryview(obj)
        n = view.nbytes
        take = min(self.max_length, max(self.budget, 0)) // 4 * 3
        if view.c_contiguous:
            data = view.cast("B")[:take].tobytes()
        elif view.ndim == 1:  # strided: copy only the items needed, not the whole buffer
            data = view[: -(-take // max(view.itemsize, 1))].tobytes()[:take]
        else:
            data = view.tobytes()[:take]
        encoded = base64.b64encode(data).decode("ascii")
        self.budget -= len(encoded) + 2
        return encoded if n <= take else f"{encoded}…[+{n - take} bytes]"

    def marker(self, text: str) -> str:
        """A marker in place of a value: it counts against the budget like any string."""
        self.budget -= len(text) + 2
        return text

    def fallback(self, obj: Any) -> str:
        """``repr(obj)`` cut to the length limit, or ``"<unrepresentable Foo>"`` when repr raises."""
        try:
            return self.text(str.__str__(repr(obj)))
        except Exception:
            logger.debug("repr() of a %s failed", type_name(type(obj)), exc_info=True)
            return self.marker(unrepresentable(obj))

    def sequence(self, obj: object, items: Iterable[Any], n: int, depth: int, sort: bool = False) -> Any:
        """A list of the first items of ``obj`` (at most ``n`` of them), with the cut marker."""
        # The depth and cycle guard is written out here and in mapping(): as a method of its own it costs
        # a call per container, about 4% of the walk of a small nested value.
        if depth >= self.max_depth:
            return self.marker(TOO_DEEP)
        oid = id(obj)
        if oid in self.stack:
            return self.marker(CYCLE)
        self.stack.add(oid)
        try:
            out: list[Any] = []
            self.budget -= 2
            for item in itertools.islice(items, self.max_items):
                if self.budget <= 0:
                    break
                out.append(self.value(item, depth + 1))
                self.budget -= 1
            if sort:
                try:
                    out = sorted(out)
                except TypeError:
                    logger.debug("set items are not comparable; kept in iteration order")
            if len(out) < n:
                out.append(f"…[+{n - len(out)} items]")
            return out
        finally:
            self.stack.discard(oid)

    def mapping(self, obj: object, items: Iterable[tuple[Any, Any]], n: int, depth: int) -> Any:
        """A dict with str keys of the first items of ``obj``, sensitive keys redacted, with the cut marker."""
        if depth >= self.max_depth:
            return self.marker(TOO_DEEP)
        oid = id(obj)
        if oid in self.stack:
            return self.marker(CYCLE)
        self.stack.add(oid)
        try:
            out: dict[str, Any] = {}
            self.budget -= 2
            kept = 0
            for key, item in itertools.islice(items, self.max_items):
                if self.budget <= 0:
                    break
                kept += 1
                name = key if type(key) is str else key_text(key)
                sensitive = self.redactor.is_sensitive(name[: self.max_length])
                name = self.text(name)
                if name in out:
                    name = next(f"{name}#{i}" for i in itertools.count(2) if f"{name}#{i}" not in out)
                out[name] = REDACTED if sensitive else self.value(item, depth + 1)
                self.budget -= 2
            if kept < n:
                out[CUT_KEY] = f"+{n - kept} items"
            return out
        finally:
            self.stack.discard(oid)

    def convert(self, obj: object, hook: Hook, depth: int) -> Any:
        """Follow representation hooks from ``obj`` (at most ``_MAX_HOPS``), then represent the result."""
        oid = id(obj)
        if oid in self.stack:
            return self.marker(CYCLE)
        self.stack.add(oid)
        try:
            current = obj
            for _ in range(_MAX_HOPS):
                result = hook(current)
                if result is current:
                    self.stack.discard(oid)
                    return builtin_rule(type(current))(self, current, depth)
                current = result
                t = type(current)
                next_hook = None if t in _NATIVE else hook_for(t)
                if next_hook is None:
                    return self.value(current, depth)
                hook = next_hook
            return self.marker(TOO_DEEP)
        finally:
            self.stack.discard(oid)


def represent(value: Any, limits: SerializeLimits, redactor: Redactor) -> Any:
    """One top-level value: the JSON-native fast path, else a walk."""
    t = type(value)
    if t is str:
        limit = min(limits.max_length, limits.max_size)
        if len(value) <= limit:
            return value if value.isascii() else utf8(value)
        kept = value[:limit]
        return f"{kept if kept.isascii() else utf8(kept)}…[+{len(value) - limit} chars]"
    if t is int:
        return value if -BIG_INT < value < BIG_INT else big_int(value)
    if t is bool or value is None:
        return value
    if t is float:
        return value if value - value == 0.0 else non_finite(value)
    return Walker(limits, redactor).value(value, 0)


def serialize(value: object) -> Any:
    """A JSON-native copy of ``value`` under the current policy (dict keys redacted); never raises."""
    limits, redactor = policy
    try:
        return represent(value, limits, redactor)
    except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
        internal_error(exc, "serialize")
        return unrepresentable(value)


def serialize_decoded(value: object, room: int = 4096) -> Any:
    """:func:`serialize` of a value decoded from outside (JSON in inbound baggage); never raises.

    NaN and infinities become their marker strings, nesting is cut at ``max_depth``, lone surrogates are
    made encodable and sensitive keys redacted, but no string or size that fits in ``room`` characters (a
    W3C baggage entry: 4096 bytes) is cut, so a value that already went through :func:`serialize` on the
    sending side comes back as it was.
    """
    limits, redactor = policy
    try:
        if limits.max_length < room or limits.max_size < room:
            limits = dataclasses.replace(
                limits, max_length=max(limits.max_length, room), max_size=max(limits.max_size, room)
            )
        return represent(value, limits, redactor)
    except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
        internal_error(exc, "serialize_decoded")
        return unrepresentable(value)


def serialize_attributes(attributes: Mapping[str, Any]) -> Any:
    """:func:`serialize` of a span's attributes, faster for the usual case; never raises.

    The SDK has already reduced attribute values to strings, numbers, booleans and tuples of those. When
    every key and value is a scalar that the general walk would keep whole (the walk's size accounting is
    replayed here), the result is the attributes as they are, sensitive keys redacted, which is what the
    walk gives; anything else takes the walk.
    """
    limits, redactor = policy
    try:
        if len(attributes) > limits.max_items:
            return serialize(dict(attributes))
        max_length = limits.max_length
        budget = limits.max_size - 2
        out: dict[str, Any] = {}
        for key, value in attributes.items():
            if budget < max_length or type(key) is not str or len(key) > max_length or not key.isascii():
                return serialize(dict(attributes))
            budget -= len(key) + 2
            t = type(value)
            if t is str:
                if budget < max_length or len(value) > max_length or not value.isascii():
                    return serialize(dict(attributes))
                budget -= len(value) + 2
            elif t is bool:
                budget -= 5
            elif t is int and -BIG_INT < value < BIG_INT:
                budget -= (value.bit_length() * 77 >> 8) + 2
            elif t is float and value - value == 0.0:
                budget -= 12
            else:
                return serialize(dict(attributes))
            budget -= 2
            out[key] = REDACTED if redactor.is_sensitive(key) else value
        return out
    except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
        internal_error(exc, "serialize_attributes")
        return unrepresentable(attributes)


def serialize_named(name: str, value: object) -> Any:
    """Like :func:`serialize`, but :data:`REDACTED` when ``name`` is sensitive; never raises."""
    limits, redactor = policy
    try:
        if redactor.is_sensitive(name):
            return REDACTED
        return represent(value, limits, redactor)
    except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
        internal_error(exc, "serialize_named")
        return unrepresentable(value)
