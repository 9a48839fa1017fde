"""Turning any value into JSON-native data: :func:`serialize`, its limits, redaction and representations.

:func:`serialize` never raises, never consumes iterators or generators, never mutates its input, and
always returns something ``json.dumps(x, allow_nan=False)`` accepts. :func:`configure` installs the
limits and the redaction list with :func:`set_policy` (from ``OTEL_USAGE_PARAM_MAX_*``,
``OTEL_USAGE_REDACT`` and ``OTEL_USAGE_REDACT_DEFAULTS``); this module reads no environment variable
itself.

How a value is represented (the first matching rule wins):

1. the JSON-native types ``str``, ``int``, ``float``, ``bool``, ``None``, ``dict``, ``list``, ``tuple``
   (exact types) are handled directly and are never looked up in the registry;
2. a function registered with :func:`register_representation` for the value's class or its nearest
   base class (MRO order);
3. the value's ``__usage__()`` method, then ``__track__()`` (the hook of python_tracker);
4. ``model_dump()`` (pydantic v2 style), then ``dict()`` when the class has ``__fields__`` (v1 style);
   the result of rules 2-4 is represented in turn (a hook returning its own object falls through to
   rule 5; a hook that raises falls back to ``repr``);
5. built-in rules: ``Enum`` → its value; subclasses of ``int``/``float``/``str`` → the plain value;
   ``datetime``/``date``/``time`` → ISO-8601 (an aware datetime keeps its offset, a naive one stays
   naive); ``timedelta`` → seconds as a float; ``UUID``, ``Decimal`` (keeps its precision), paths →
   ``str``; ``bytes``/``bytearray``/``memoryview`` → base64 text (standard alphabet); exceptions →
   ``{"type": class name, "message": str(exc)}``; dataclass instances → dict of their fields (fields
   declared with ``repr=False`` are left out); namedtuples → dict of their fields; ``dict`` and other
   mappings → dict with str keys; ``list``/``tuple``/``deque`` → list; ``set``/``frozenset`` → list,
   sorted when the kept items are comparable; other ``numbers.Integral``/``numbers.Real`` (numpy
   scalars) → int/float; ``UserString`` → ``str``; other sets (dict keys and items views) → list, sorted
   like sets; other sequences (``array.array``, ``UserList``) and dict values views → list (their
   ``repr`` would cost time in proportion to their size);
6. anything else, generators and iterators included → ``repr(obj)``.

Strings are kept encodable in UTF-8: a lone surrogate (``os.fsdecode`` of undecodable bytes, a pair cut
in half) is written as the six characters ``\\udcff``. Floats NaN, inf and -inf become the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; ints of more than 1024 bits become ``"<int of N bits>"``.
Dict keys that are not strings become ``"true"``, ``"false"``, ``"null"`` (as JSON writes them),
``str(number)``, else ``str(key)``, else ``repr(key)``; a key that collides with one already kept gets a
``#2``, ``#3``... suffix. Dict keys are checked by the redactor at every level: the value of a sensitive
key is ``"[REDACTED]"``.

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
import collections
import dataclasses
import datetime
import decimal
import enum
import itertools
import logging
import numbers
import operator
import pathlib
import uuid
from collections.abc import Callable, Iterable, Mapping, MappingView, Sequence, Set
from typing import Any

from otel_usage._errors import internal_error
from otel_usage._redact import REDACTED, Redactor

__all__ = [
    "BIG_INT",
    "CUT_KEY",
    "SerializeLimits",
    "Walker",
    "big_int",
    "get_policy",
    "policy",
    "register_representation",
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

_CACHE_MAX = 4096
_MAX_HOPS = 8
_MAX_TYPE_NAME = 128  # longest class name kept in a marker
BIG_INT = 1 << 1024
_NATIVE = frozenset({str, int, float, bool, type(None), dict, list, tuple})

Hook = Callable[[Any], Any]
Rule = Callable[["Walker", Any, int], Any]


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


# --- representation rules ----------------------------------------------------------------------------

_registry: dict[type, Hook] = {}
_hooks: dict[type, Hook | None] = {}
_rules: dict[type, Rule] = {}


def register_representation(type_: type, func: Callable[[Any], Any]) -> None:
    """Represent instances of ``type_`` and its subclasses by ``func(obj)``, itself serialized in turn.

    The registry wins over ``__usage__``/``__track__`` and the built-in rules; a subclass uses the
    function of its nearest registered class (MRO order). The JSON-native types are never looked up.

    Raises:
        TypeError: ``type_`` is not a class or ``func`` is not callable.
    """
    if not isinstance(type_, type) or not callable(func):
        raise TypeError("register_representation() takes a class and a callable")
    _registry[type_] = func
    _hooks.clear()
    _rules.clear()


def _type_name(t: type) -> str:
    """``t.__name__`` (cut to ``_MAX_TYPE_NAME`` characters), or ``"object"`` when it is unreadable."""
    try:
        name = t.__name__
    except Exception:
        logger.debug("a class without a readable __name__", exc_info=True)
        return "object"
    if not isinstance(name, str):
        return "object"
    name = str.__str__(name)
    return name if len(name) <= _MAX_TYPE_NAME else f"{name[:_MAX_TYPE_NAME]}…"


def _hook_for(t: type) -> Hook | None:
    """The representation hook of class ``t`` (rules 2-4 of the module docstring), cached per class."""
    try:
        return _hooks[t]
    except KeyError:
        hook: Hook | None = None
        try:
            hook = _find_hook(t)
        except Exception:
            logger.debug("looking up the representation of %r failed", t, exc_info=True)
        if len(_hooks) >= _CACHE_MAX:
            _hooks.clear()
        _hooks[t] = hook
        return hook


def _find_hook(t: type) -> Hook | None:
    for klass in t.__mro__:
        func = _registry.get(klass)
        if func is not None:
            return func
    for name in ("__usage__", "__track__", "model_dump"):
        if callable(getattr(t, name, None)):
            return operator.methodcaller(name)
    if callable(getattr(t, "dict", None)) and hasattr(t, "__fields__"):
        return operator.methodcaller("dict")
    return None


def _rule_for(t: type) -> Rule:
    rule = _rules.get(t)
    if rule is None:
        try:
            hook = _hook_for(t)
            rule = _builtin_rule(t) if hook is None else _hooked_rule(hook)
        except Exception:
            logger.debug("choosing the representation of %r failed", t, exc_info=True)
            rule = _fallback_rule
        if len(_rules) >= _CACHE_MAX:
            _rules.clear()
        _rules[t] = rule
    return rule


def _hooked_rule(hook: Hook) -> Rule:
    return lambda w, obj, depth: w.convert(obj, hook, depth)


def _text_rule(func: Callable[[Any], object]) -> Rule:
    def rule(w: Walker, obj: Any, depth: int) -> Any:
        result = func(obj)
        if not isinstance(result, str):
            raise TypeError(f"expected a string, got {type(result)!r}")
        return w.text(str.__str__(result))

    return rule


def _sequence_rule(base: Any, sort: bool = False) -> Rule:
    length, iterate = base.__len__, base.__iter__
    return lambda w, obj, depth: w.sequence(obj, iterate(obj), length(obj), depth, sort)


def _fields_rule(names: tuple[str, ...], read: Callable[[Any], Iterable[Any]]) -> Rule:
    return lambda w, obj, depth: w.mapping(obj, zip(names, read(obj), strict=False), len(names), depth)


def _dataclass_rule(t: type) -> Rule:
    names = tuple(f.name for f in dataclasses.fields(t) if f.repr)
    return _fields_rule(names, lambda obj: (getattr(obj, name) for name in names))


def _str_subclass_rule(w: Walker, obj: Any, depth: int) -> Any:
    """The plain text of a str subclass, copying only what is kept (``str.__str__`` copies it whole)."""
    n = str.__len__(obj)
    if n <= w.max_length:
        return w.text(str.__str__(obj))
    return w.text(str.__getitem__(obj, slice(0, w.max_length)), n)


def _fallback_rule(w: Walker, obj: Any, depth: int) -> Any:
    return w.fallback(obj)


def _builtin_rule(t: type) -> Rule:
    """The built-in rule for class ``t`` (rules 5-6 of the module docstring)."""
    if issubclass(t, enum.Enum):
        return lambda w, obj, depth: w.value(obj._value_, depth)
    if issubclass(t, int):
        return lambda w, obj, depth: w.value(int.__int__(obj), depth)
    if issubclass(t, float):
        return lambda w, obj, depth: w.value(float.__float__(obj), depth)
    if issubclass(t, str):
        return _str_subclass_rule
    if issubclass(t, datetime.datetime):
        return _text_rule(datetime.datetime.isoformat)
    if issubclass(t, datetime.date):
        return _text_rule(datetime.date.isoformat)
    if issubclass(t, datetime.time):
        return _text_rule(datetime.time.isoformat)
    if issubclass(t, datetime.timedelta):
        return lambda w, obj, depth: w.value(datetime.timedelta.total_seconds(obj), depth)
    if issubclass(t, (uuid.UUID, decimal.Decimal, pathlib.PurePath)):
        return _text_rule(str)
    if issubclass(t, (bytes, bytearray, memoryview)):
        return lambda w, obj, depth: w.binary(obj)
    if issubclass(t, BaseException):
        return lambda w, obj, depth: w.mapping(obj, (("type", _type_name(type(obj))), ("message", str(obj))), 2, depth)
    if dataclasses.is_dataclass(t):
        return _dataclass_rule(t)
    fields = getattr(t, "_fields", None)
    if issubclass(t, tuple) and isinstance(fields, tuple) and all(isinstance(f, str) for f in fields):
        return _fields_rule(fields, tuple.__iter__)
    if issubclass(t, dict):
        return lambda w, obj, depth: w.mapping(obj, dict.items(obj), dict.__len__(obj), depth)
    for base in (list, tuple, collections.deque):
        if issubclass(t, base):
            return _sequence_rule(base)
    for unordered in (set, frozenset):
        if issubclass(t, unordered):
            return _sequence_rule(unordered, sort=True)
    if issubclass(t, Mapping):
        return lambda w, obj, depth: w.mapping(obj, obj.items(), len(obj), depth)
    # Other containers (their repr costs time and memory in proportion to their size): their first items.
    if issubclass(t, collections.UserString):
        return _text_rule(str)
    if issubclass(t, Set):
        return lambda w, obj, depth: w.sequence(obj, iter(obj), len(obj), depth, True)
    if issubclass(t, (Sequence, MappingView)) and not issubclass(t, range):
        return lambda w, obj, depth: w.sequence(obj, iter(obj), len(obj), depth)
    if issubclass(t, numbers.Integral):
        return lambda w, obj, depth: w.value(int(obj), depth)
    if issubclass(t, numbers.Real):
        return lambda w, obj, depth: w.value(float(obj), depth)
    return _fallback_rule


def _utf8(s: str) -> str:
    """``s`` with its lone surrogates (``os.fsdecode`` of bad bytes, a cut pair) written ``\\udcff``: a
    string no UTF-8 encoder refuses (the JSON, SQL and OTLP exporters, baggage on outgoing calls)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def big_int(value: int) -> str:
    return f"<int of {value.bit_length()} bits>"


def _non_finite(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _key_text(key: Any) -> str:
    t = type(key)
    if t is bool or key is None:
        return "true" if key is True else "false" if key is False else "null"
    if t is int:
        return str(key) if -BIG_INT < key < BIG_INT else big_int(key)
    if t is float:
        return repr(key) if key - key == 0.0 else _non_finite(key)
    for convert in (str, repr):
        try:
            text = convert(key)
            if isinstance(text, str):
                return str.__str__(text)
        except Exception:
            logger.debug("%s() of a dict key failed", convert.__name__, exc_info=True)
    return f"<unrepresentable {_type_name(t)}>"


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
            return obj if obj - obj == 0.0 else _non_finite(obj)
        try:
            if t is dict:
                return self.mapping(obj, obj.items(), len(obj), depth)
            if t is list or t is tuple:
                return self.sequence(obj, obj, len(obj), depth)
            return _rule_for(t)(self, obj, depth)
        except Exception:
            logger.debug("representing a %s failed; using repr()", _type_name(t), exc_info=True)
            return self.fallback(obj)

    def text(self, s: str, n: int = -1) -> str:
        """``s`` cut at ``max_length`` or at the remaining budget, with its marker; encodable in UTF-8.

        ``n`` is the length of the whole string when ``s`` is its beginning only.
        """
        n = max(n, len(s))
        limit = self.max_length if self.budget >= self.max_length else max(self.budget, 0)
        if n <= limit:
            if not s.isascii():
                s = _utf8(s)
            self.budget -= len(s) + 2
            return s
        kept = s[:limit]
        if not kept.isascii():
            kept = _utf8(kept)
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
            logger.debug("repr() of a %s failed", _type_name(type(obj)), exc_info=True)
            return self.marker(_unrepresentable(obj))

    def sequence(self, obj: object, items: Iterable[Any], n: int, depth: int, sort: bool = False) -> Any:
        """A list of the first items of ``obj`` (at most ``n`` of them), with the cut marker."""
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
                name = key if type(key) is str else _key_text(key)
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
                    return _builtin_rule(type(current))(self, current, depth)
                current = result
                t = type(current)
                next_hook = None if t in _NATIVE else _hook_for(t)
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
            return value if value.isascii() else _utf8(value)
        kept = value[:limit]
        return f"{kept if kept.isascii() else _utf8(kept)}…[+{len(value) - limit} chars]"
    if t is int:
        return value if -BIG_INT < value < BIG_INT else big_int(value)
    if t is bool or value is None:
        return value
    if t is float:
        return value if value - value == 0.0 else _non_finite(value)
    return Walker(limits, redactor).value(value, 0)


def _unrepresentable(value: object) -> str:
    return f"<unrepresentable {_type_name(type(value))}>"


def serialize(value: object) -> Any:
    """A JSON-native copy of ``value`` under the current policy (dict keys redacted); never raises."""
    limits, redactor = policy
    try:
        return represent(value, limits, redactor)
    except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
        internal_error(exc, "serialize")
        return _unrepresentable(value)


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
        return _unrepresentable(value)


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
        return _unrepresentable(attributes)


def serialize_named(name: str, value: object) -> Any:
    """Like :func:`serialize`, but :data:`REDACTED` when ``name`` is sensitive; never raises."""
    limits, redactor = policy
    try:
        if redactor.is_sensitive(name):
            return REDACTED
        return represent(value, limits, redactor)
    except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
        internal_error(exc, "serialize_named")
        return _unrepresentable(value)
