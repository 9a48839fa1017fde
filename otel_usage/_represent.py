"""How each kind of value is represented: the rules, the registry of :func:`register_representation`.

:class:`~otel_usage._serialize.Walker` asks :func:`rule_for` how to represent an object of a class that
is not JSON-native, and writes scalars with :func:`utf8`, :func:`big_int`, :func:`non_finite` and
:func:`key_text`.

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
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import logging
import numbers
import operator
import pathlib
import uuid
from collections.abc import Callable, Iterable, Mapping, MappingView, Sequence, Set
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_usage._serialize import Walker

__all__ = [
    "BIG_INT",
    "Hook",
    "Rule",
    "big_int",
    "builtin_rule",
    "hook_for",
    "key_text",
    "non_finite",
    "register_representation",
    "rule_for",
    "type_name",
    "unrepresentable",
    "utf8",
]

logger = logging.getLogger(__name__)

#: Ints from this one up (and from its negative down) are written as ``"<int of N bits>"``.
BIG_INT = 1 << 1024
_CACHE_MAX = 4096  # most classes whose hook and rule are cached
_MAX_TYPE_NAME = 128  # longest class name kept in a marker

Hook = Callable[[Any], Any]
Rule = Callable[["Walker", Any, int], Any]

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


def type_name(t: type) -> str:
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


def hook_for(t: type) -> Hook | None:
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


def rule_for(t: type) -> Rule:
    """How to represent an object of class ``t`` (rules 2-6 of the module docstring), cached per class."""
    rule = _rules.get(t)
    if rule is None:
        try:
            hook = hook_for(t)
            rule = builtin_rule(t) if hook is None else _hooked_rule(hook)
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


def builtin_rule(t: type) -> Rule:
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
        return lambda w, obj, depth: w.mapping(obj, (("type", type_name(type(obj))), ("message", str(obj))), 2, depth)
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


def utf8(s: str) -> str:
    """``s`` with its lone surrogates (``os.fsdecode`` of bad bytes, a cut pair) written ``\\udcff``: a
    string no UTF-8 encoder refuses (the JSON, SQL and OTLP exporters, baggage on outgoing calls)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def big_int(value: int) -> str:
    """The marker of an int too large to write as a JSON number."""
    return f"<int of {value.bit_length()} bits>"


def non_finite(value: float) -> str:
    """The string of a float that JSON cannot write: NaN, inf or -inf."""
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def key_text(key: Any) -> str:
    """The text of a dict key that is not a ``str`` (see the module docstring); never raises."""
    t = type(key)
    if t is bool or key is None:
        return "true" if key is True else "false" if key is False else "null"
    if t is int:
        return str(key) if -BIG_INT < key < BIG_INT else big_int(key)
    if t is float:
        return repr(key) if key - key == 0.0 else non_finite(key)
    for convert in (str, repr):
        try:
            text = convert(key)
            if isinstance(text, str):
                return str.__str__(text)
        except Exception:
            logger.debug("%s() of a dict key failed", convert.__name__, exc_info=True)
    return unrepresentable(key)


def unrepresentable(value: object) -> str:
    """The marker of ``value`` when its rule and its ``repr`` both raised."""
    return f"<unrepresentable {type_name(type(value))}>"
