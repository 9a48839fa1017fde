"""The declarative setting: what one setting is, and how it is resolved.

A :class:`Setting` names its argument, its environment variable (a constant of
:mod:`otel_usage.environment_variables`), its default and its rule: :class:`Integer` (with a minimum and a
maximum), :class:`Boolean`, :class:`Choice`, :class:`Text`, :class:`Names` (a comma-separated list), or any
parser. :meth:`Setting.resolve` gives explicit argument > environment variable > default:

- a bad explicit argument raises ValueError naming the argument, at configuration time;
- a bad environment value logs one line naming the variable, the value, the reason and the default used
  instead (once per variable and value in a process, :data:`WARNED`), and the default is used;
- an unset or blank variable is the default (or, with ``fallback``, what a more general setting gives).

Settings are read when something is configured or built, never on a per-call path. The settings of the
package are defined once, in the table of :mod:`otel_usage._config`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from otel_usage._levels import Level
from otel_usage._warnings import RateLimitedLog

__all__ = ["Boolean", "Choice", "Integer", "Names", "Setting", "Text", "WARNED", "read_variable", "warn_ignored"]

logger = logging.getLogger("otel_usage._config")  # the logger these warnings have always come from

T = TypeVar("T")

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")

#: (variable, value) pairs already reported: a bad value is one warning per process.
WARNED = RateLimitedLog(None)


def read_variable(name: str) -> str | None:
    """The variable's value, stripped; None when it is unset or blank."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def warn_ignored(name: str, value: str, default: object, why: str) -> None:
    """One warning (per process and ``(name, value)``) that the variable's value is ignored for ``default``."""
    if not WARNED.allow((name, value)):
        return
    shown = default.name if isinstance(default, Level) else repr(default)
    logger.warning("otel_usage: ignoring %s=%r (%s); using the default %s", name, value, why, shown)


@dataclasses.dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting: explicit argument > environment variable > default.

    Attributes:
        name: the argument (or field) the setting is given by, named in the error of a bad one.
        variable: the environment variable, or None for a setting that has none.
        default: the value when neither is given, and when the variable's value is bad.
        parser: for a rule of its own: the variable's text to a value, raising ValueError (the reason).
        checker: for a rule of its own: an explicit argument to a value, raising ValueError (the message);
            default ``parser``.
        fallback: the setting read when ``variable`` is unset (a more general variable).
    """

    name: str
    variable: str | None
    default: T
    parser: Callable[[Any], T] | None = None
    checker: Callable[[Any], T] | None = None
    fallback: Setting[T] | None = None

    def parse(self, raw: str) -> T:
        """The variable's text (stripped, not empty) as a value.

        Raises:
            ValueError: the value is bad (the message is the reason, shown in the warning).
        """
        assert self.parser is not None, f"{self.name}: a setting of its own rule needs a parser"
        return self.parser(raw)

    def check(self, value: Any) -> T:
        """An explicit argument (not None), validated.

        Raises:
            ValueError: the argument is bad.
        """
        return self.checker(value) if self.checker is not None else self.parse(value)

    def from_env(self) -> T:
        """The variable's value; the default when it is unset, blank or bad (bad: one warning)."""
        raw = read_variable(self.variable) if self.variable else None
        if raw is None:
            return self.default if self.fallback is None else self.fallback.from_env()
        try:
            return self.parse(raw)
        except ValueError as exc:
            warn_ignored(str(self.variable), raw, self.default, str(exc) or "invalid value")
            return self.default

    def resolve(self, explicit: Any = None) -> T:
        """``explicit`` validated when it is not None, else :meth:`from_env`.

        Raises:
            ValueError: ``explicit`` is bad (a bad environment value only warns).
        """
        return self.from_env() if explicit is None else self.check(explicit)


@dataclasses.dataclass(frozen=True)
class Integer(Setting[int]):
    """An integer from ``minimum`` to ``maximum`` (None: unbounded).

    ``argument_minimum``, when set, is the lower bound of an explicit argument instead of ``minimum`` (a
    laxer bound some arguments have always had).
    """

    minimum: int | None = None
    maximum: int | None = None
    argument_minimum: int | None = None

    def parse(self, raw: str) -> int:
        value = int(raw)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be >= {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be <= {self.maximum}")
        return value

    def check(self, value: Any) -> int:
        low = self.minimum if self.argument_minimum is None else self.argument_minimum
        high = self.maximum
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise ValueError(f"{self.name} must be an integer{_bounds(low, high)}, got {value!r}")
        return value


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return "" if high is None else f" <= {high}"


@dataclasses.dataclass(frozen=True)
class Boolean(Setting[bool]):
    """A boolean: ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off`` (any case) in the variable."""

    def parse(self, raw: str) -> bool:
        low = raw.lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise ValueError("expected true or false")

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{self.name} must be a bool, got {value!r}")
        return value


@dataclasses.dataclass(frozen=True)
class Choice(Setting[str]):
    """One of ``choices`` (matched ignoring case and surrounding spaces), given in lower case."""

    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> str:
        value = raw.strip().lower()
        if value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}")
        return value

    def check(self, value: Any) -> str:
        if self.checker is not None:
            return self.checker(value)
        if not isinstance(value, str) or value.strip().lower() not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        return value.strip().lower()


@dataclasses.dataclass(frozen=True)
class Text(Setting[str]):
    """A string, as it is (stripped) in the variable."""

    def parse(self, raw: str) -> str:
        return raw

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{self.name} must be a string, got {value!r}")
        return value


@dataclasses.dataclass(frozen=True)
class Names(Setting[tuple[str, ...]]):
    """Names separated by commas (items stripped, empty ones left out); an argument may be a sequence."""

    def parse(self, raw: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def check(self, value: Any) -> tuple[str, ...]:
        items = self.parse(value) if isinstance(value, str) else tuple(value)
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f"{self.name} must be strings, got {value!r}")
        return items
