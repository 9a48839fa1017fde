"""Capturing a tracked function's parameters: :class:`ParamCapture`.

A probe builds one :class:`ParamCapture` per decorated function, at decoration time (the signature is
read once, never per call), and calls :meth:`ParamCapture.capture` on every call. Values whose type is
exactly ``str``/``int``/``float``/``bool``/``None`` are kept as they are (strings cut to the length
limit); anything else is serialized under the process-wide policy (see :mod:`otel_usage._serialize`),
with the same limits, markers and redaction. The extra keyword arguments of a call (``**kwargs``) count as
one value: together they get one budget and at most ``max_items`` of them are kept.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from otel_usage import _serialize
from otel_usage._errors import internal_error
from otel_usage._redact import REDACTED, Redactor
from otel_usage._represent import BIG_INT, big_int
from otel_usage._serialize import CUT_KEY, SerializeLimits, Walker, represent

__all__ = ["ParamCapture"]

logger = logging.getLogger(__name__)

_MISSING: Any = object()  # a parameter without a default
_VAR_POSITIONAL: Any = object()  # the *args parameter, whatever positional arguments follow the named ones
_NO_INDEX = 1 << 62  # the position of a parameter that cannot be passed by position
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _describe(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    module = getattr(func, "__module__", None)
    if not isinstance(name, str):
        return repr(func)
    return f"{module}.{name}" if isinstance(module, str) else name


def _name_set(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    return frozenset((names,) if isinstance(names, str) else names)


class ParamCapture:
    """How to capture one function's parameters, precomputed at decoration time.

    Attributes:
        is_method: the call's first argument is the instance or class: the first parameter is named
            ``self`` or ``cls`` and the function is defined in a class (a bound method is not: its
            instance is not among the arguments).
        first_param: ``"self"`` or ``"cls"`` when :attr:`is_method`, else None.
    """

    __slots__ = (
        "_extra_exclude", "_extra_include", "_extras", "_keyword", "_names", "_npos", "_plan", "_sensitive",
        "first_param", "is_method",
    )  # fmt: skip

    def __init__(
        self,
        func: Callable[..., Any],
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
    ) -> None:
        """Read ``func``'s signature once.

        Args:
            func: the function (also a method, classmethod, staticmethod, partial, builtin).
            include: capture only these parameter names (and ``**kwargs`` keys); naming the ``*args``
                or ``**kwargs`` parameter includes all its values. ``self``/``cls`` only when named here.
            exclude: never capture these names; exclude wins over include.

        Raises:
            ValueError: include or exclude names a parameter the function does not have (unless it takes
                ``**kwargs``, or its signature cannot be read, when any key may turn up).
        """
        if isinstance(func, (classmethod, staticmethod)):
            func = func.__func__
        try:
            parameters: list[inspect.Parameter] | None = list(inspect.signature(func).parameters.values())
        except Exception:
            logger.debug("no signature for %r; capturing args and kwargs as given", func, exc_info=True)
            parameters = None
        if parameters is None:
            parameters = [
                inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
        first = parameters[0] if parameters and parameters[0].kind in _POSITIONAL else None
        self_name = first.name if first is not None and first.name in ("self", "cls") else None
        qualname = getattr(func, "__qualname__", "")
        parts = qualname.split(".") if isinstance(qualname, str) else []
        self.is_method = self_name is not None and len(parts) >= 2 and parts[-2] != "<locals>"
        self.first_param = self_name if self.is_method else None

        var_keyword = next((p.name for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD), None)
        inc, exc = _name_set(include), _name_set(exclude) or frozenset()
        unknown = ((inc or frozenset()) | exc) - {p.name for p in parameters}
        if unknown and var_keyword is None:
            raise ValueError(
                f"{_describe(func)} has no parameter named {', '.join(sorted(unknown))} "
                f"(include/exclude); its parameters are: {', '.join(p.name for p in parameters) or 'none'}"
            )

        npos = sum(1 for p in parameters if p.kind in _POSITIONAL)
        plan: list[tuple[str, int, Any, bool]] = []
        for index, p in enumerate(parameters):
            name = p.name
            if p.kind is inspect.Parameter.VAR_KEYWORD or name in exc or (inc is not None and name not in inc):
                continue
            if name == self_name and not (inc and name in inc):
                continue
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                plan.append((name, _NO_INDEX, _VAR_POSITIONAL, False))
            else:
                default = _MISSING if p.default is inspect.Parameter.empty else p.default
                plan.append((name, index if index < npos else _NO_INDEX, default, p.kind in _KEYWORD))
        self._plan = tuple(plan)
        self._npos = npos
        self._keyword = frozenset(p.name for p in parameters if p.kind in _KEYWORD)
        self._names = tuple(p.name for p in parameters)
        self._extras = var_keyword is None or var_keyword not in exc
        self._extra_include = None if inc is None or var_keyword in inc else inc
        self._extra_exclude = exc
        self._sensitive: tuple[Redactor | None, frozenset[str]] = (None, frozenset())

    def capture(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's parameters, JSON-native, keyed by name in signature order; never raises.

        Defaults are applied; extra positional arguments are a list under the ``*args`` name; extra
        keyword arguments follow, each under its own key (``"**key"`` if the key is already taken), at
        most ``max_items`` of them within one ``max_size`` budget (then ``"…": "+N items"``).
        A call that does not bind is captured as far as it goes: positional arguments by name in
        order, keywords by key.
        """
        limits, redactor = _serialize.policy
        try:
            return self._capture(args, kwargs, limits, redactor)
        except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
            internal_error(exc, "ParamCapture.capture")
            return {}

    def _capture(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], limits: SerializeLimits, redactor: Redactor
    ) -> dict[str, Any]:
        cached = self._sensitive
        if cached[0] is not redactor:
            cached = self._sensitive = (redactor, frozenset(n for n in self._names if redactor.is_sensitive(n)))
        sensitive = cached[1]
        max_length = min(limits.max_length, limits.max_size)
        n = len(args)
        out: dict[str, Any] = {}
        for name, index, default, by_keyword in self._plan:
            if index < n:
                value = args[index]
            elif by_keyword and kwargs and name in kwargs:
                value = kwargs[name]
            elif default is _MISSING:
                continue
            elif default is _VAR_POSITIONAL:
                value = args[self._npos :]
            else:
                value = default
            t = type(value)
            if name in sensitive:
                out[name] = REDACTED
            elif t is str:
                short = len(value) <= max_length and value.isascii()
                out[name] = value if short else represent(value, limits, redactor)
            elif t is int or t is bool or value is None:
                out[name] = value if t is not int or -BIG_INT < value < BIG_INT else big_int(value)
            else:
                out[name] = represent(value, limits, redactor)
        if not kwargs or not self._extras:
            return out
        keyword, include, exclude = self._keyword, self._extra_include, self._extra_exclude
        # The extra keyword arguments are as many as the caller passes (``f(**request.args)``): like one
        # dict, they share one size budget and at most max_items of them are kept.
        walker: Walker | None = None
        kept = cut = 0
        for key, value in kwargs.items():
            if key in keyword or (include is not None and key not in include) or key in exclude:
                continue
            if walker is None:
                walker = Walker(limits, redactor)
            if kept >= limits.max_items or walker.budget <= 0:
                cut += 1
                continue
            kept += 1
            secret = redactor.is_sensitive(key[: limits.max_length])
            slot = key if len(key) <= max_length and key.isascii() else represent(key, limits, redactor)
            if slot in out:
                slot = f"**{slot}"
                if slot in out:
                    slot = next(f"{slot}#{i}" for i in itertools.count(2) if f"{slot}#{i}" not in out)
            walker.budget -= len(slot) + 4
            out[slot] = walker.marker(REDACTED) if secret else walker.value(value, 0)
        if cut:
            out[CUT_KEY] = f"+{cut} items"
        return out
