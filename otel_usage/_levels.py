"""Usage levels and the process-wide threshold.

Levels are ordered ``DEBUG < INFO < DEFAULT < NONE`` (python_tracker's order). A probe is recorded when
its level is at or above the threshold; a threshold of ``NONE`` records nothing. The threshold is read
on every call, so :func:`set_level` takes effect on the next call.

Environment variable: ``OTEL_USAGE_LEVEL`` (read by :func:`otel_usage.configure`, never at import).
"""

from __future__ import annotations

import enum

__all__ = [
    "DEBUG",
    "DEFAULT",
    "INFO",
    "Level",
    "NONE",
    "get_level",
    "parse_level",
    "set_level",
]


class Level(enum.IntEnum):
    """How important a probe is; compared against the threshold."""

    DEBUG = 10
    INFO = 20
    DEFAULT = 30
    NONE = 40

    def __str__(self) -> str:
        return self.name


DEBUG = Level.DEBUG
INFO = Level.INFO
DEFAULT = Level.DEFAULT
NONE = Level.NONE

#: python_tracker shipped DEFAULT as its threshold.
DEFAULT_THRESHOLD = Level.DEFAULT


def parse_level(value: Level | int | str) -> Level:
    """Turn a level, its number or its name (any case, surrounding spaces ignored) into a :class:`Level`.

    Raises:
        ValueError: the value names no level.
    """
    if isinstance(value, Level):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a usage level: {value!r}")
    if isinstance(value, int):
        try:
            return Level(value)
        except ValueError:
            raise ValueError(f"not a usage level: {value!r} (expected one of {_names()})") from None
    if isinstance(value, str):
        name = value.strip().upper()
        if name in Level.__members__:
            return Level[name]
        raise ValueError(f"not a usage level: {value!r} (expected one of {_names()}, any case)")
    raise ValueError(f"not a usage level: {value!r}")


def _names() -> str:
    return ", ".join(Level.__members__)


class _Threshold:
    """The mutable threshold, read on the hot path as one attribute load."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int = int(DEFAULT_THRESHOLD)


THRESHOLD = _Threshold()


def set_level(level: Level | int | str) -> None:
    """Set the threshold; the next call of every probe sees it.

    Raises:
        ValueError: ``level`` names no level.
    """
    THRESHOLD.value = int(parse_level(level))


def get_level() -> Level:
    """Return the current threshold."""
    return Level(THRESHOLD.value)
