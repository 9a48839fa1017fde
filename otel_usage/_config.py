"""Reading settings: explicit argument > environment variable > default.

The ``env_*`` readers take a variable name from :mod:`otel_usage.environment_variables`; an unset or
empty variable gives the default; a bad value logs a warning naming the variable, the value and the
default used instead. :class:`CoreSettings` is the frozen settings object of the core pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from otel_usage import environment_variables as ev
from otel_usage._levels import DEFAULT_THRESHOLD, Level, parse_level
from otel_usage._schema import RESERVED_KEYS

__all__ = [
    "CoreSettings",
    "DURABILITY_MODES",
    "durability",
    "env_bool",
    "env_float",
    "env_int",
    "env_list",
    "env_str",
    "int_setting",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


_warned: set[tuple[str, str]] = set()  # (variable, value) already reported: once per process


def _warn(name: str, value: str, default: object, why: str) -> None:
    if (name, value) in _warned or len(_warned) > 1000:
        return
    _warned.add((name, value))
    shown = default.name if isinstance(default, Level) else repr(default)
    logger.warning("otel_usage: ignoring %s=%r (%s); using the default %s", name, value, why, shown)


def env_parsed(name: str, default: T, parse: Callable[[str], T]) -> T:
    """The variable parsed by ``parse`` (which raises ValueError on bad input), or ``default``."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        _warn(name, raw, default, str(exc) or "invalid value")
        return default


def env_str(name: str, default: str) -> str:
    """The variable's value, stripped, or ``default`` when unset or empty."""
    raw = _raw(name)
    return default if raw is None else raw


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    """The variable as an integer (at least ``minimum``), or ``default``."""

    def parse(raw: str) -> int:
        value = int(raw)
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {minimum}")
        return value

    return env_parsed(name, default, parse)


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    """The variable as a float (at least ``minimum``), or ``default``."""

    def parse(raw: str) -> float:
        value = float(raw)
        if value != value or (minimum is not None and value < minimum):
            raise ValueError(f"must be a number >= {minimum}")
        return value

    return env_parsed(name, default, parse)


def env_bool(name: str, default: bool) -> bool:
    """The variable as a boolean (true/false, 1/0, yes/no, on/off), or ``default``."""

    def parse(raw: str) -> bool:
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("expected true or false")

    return env_parsed(name, default, parse)


def env_list(name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The variable split on commas, items stripped, empty items left out; ``default`` when unset."""
    raw = _raw(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


DURABILITY_MODES = ("memory", "disk")


def durability() -> str:
    """:envvar:`OTEL_USAGE_DURABILITY`: ``memory`` (the default) or ``disk`` (write-ahead to the spool)."""
    return env_parsed(ev.OTEL_USAGE_DURABILITY, "memory", _durability)


def _durability(raw: str) -> str:
    value = raw.lower()
    if value not in DURABILITY_MODES:
        raise ValueError(f"expected one of {', '.join(DURABILITY_MODES)}")
    return value


def _positive(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def int_setting(arg: str, value: Any, env_name: str, default: int, minimum: int) -> int:
    """An integer setting: ``value`` if given, else the variable ``env_name``, else ``default``; all >= ``minimum``.

    Raises:
        ValueError: ``value`` is given and is not an integer >= ``minimum`` (the message names ``arg``).
    """
    if value is None:
        return env_int(env_name, default, minimum)
    return _positive(arg, value, minimum)


@dataclasses.dataclass(frozen=True)
class CoreSettings:
    """Settings of the probes, the span processor and the sampler."""

    level: Level = DEFAULT_THRESHOLD
    max_pending_logs: int = 4096
    max_queued_spans: int = 65_536
    max_records_per_log: int = 1000
    max_log_age_millis: int = 600_000
    grace_millis: int = 2000
    schedule_delay_millis: int = 200
    baggage_allow: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    redact_defaults: bool = True
    param_max_depth: int = 6
    param_max_length: int = 1024
    param_max_items: int = 100
    param_max_size: int = 8192
    record_unsampled: bool = True
    log_verbosity: int = 30
    log_bridge: bool = False

    @classmethod
    def from_env(cls, **overrides: Any) -> CoreSettings:
        """Build from the environment; keyword arguments (not None) win and are validated strictly.

        Raises:
            ValueError: an explicit argument is invalid or unknown.
        """
        d = cls()
        values: dict[str, Any] = {
            "level": env_parsed(ev.OTEL_USAGE_LEVEL, d.level, parse_level),
            "max_pending_logs": env_int(ev.OTEL_USAGE_MAX_PENDING_LOGS, d.max_pending_logs, 1),
            "max_queued_spans": env_int(ev.OTEL_USAGE_MAX_QUEUED_SPANS, d.max_queued_spans, 1),
            "max_records_per_log": env_int(ev.OTEL_USAGE_MAX_RECORDS_PER_LOG, d.max_records_per_log, 1),
            "max_log_age_millis": env_int(ev.OTEL_USAGE_MAX_LOG_AGE_MILLIS, d.max_log_age_millis, 1),
            "grace_millis": env_int(ev.OTEL_USAGE_GRACE_MILLIS, d.grace_millis, 0),
            "schedule_delay_millis": env_int(ev.OTEL_USAGE_SCHEDULE_DELAY_MILLIS, d.schedule_delay_millis, 1),
            "baggage_allow": _env_baggage_allow(),
            "redact": env_list(ev.OTEL_USAGE_REDACT),
            "redact_defaults": env_bool(ev.OTEL_USAGE_REDACT_DEFAULTS, d.redact_defaults),
            "param_max_depth": env_int(ev.OTEL_USAGE_PARAM_MAX_DEPTH, d.param_max_depth, 1),
            "param_max_length": env_int(ev.OTEL_USAGE_PARAM_MAX_LENGTH, d.param_max_length, 8),
            "param_max_items": env_int(ev.OTEL_USAGE_PARAM_MAX_ITEMS, d.param_max_items, 1),
            "param_max_size": env_int(ev.OTEL_USAGE_PARAM_MAX_SIZE, d.param_max_size, 64),
            "record_unsampled": env_bool(ev.OTEL_USAGE_RECORD_UNSAMPLED, d.record_unsampled),
            "log_verbosity": env_int(ev.OTEL_USAGE_LOG_VERBOSITY, d.log_verbosity),
            "log_bridge": env_bool(ev.OTEL_USAGE_LOG_BRIDGE, d.log_bridge),
        }
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in overrides.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}")
            if value is None:
                continue
            values[key] = _validate(key, value)
        return cls(**values)


def _reserved_message(name: str, source: str) -> str:
    return (
        f"{source}: {name!r} is a reserved key of usage logs and cannot be allowed in from baggage "
        f"(allowed: any other info key; reserved: {', '.join(sorted(RESERVED_KEYS))})"
    )


def _env_baggage_allow() -> tuple[str, ...]:
    """``OTEL_USAGE_BAGGAGE_ALLOW``: a reserved name is ignored with a warning, the others are kept."""
    names = env_list(ev.OTEL_USAGE_BAGGAGE_ALLOW)
    for name in names:
        if name in RESERVED_KEYS:
            logger.warning("Ignoring %s", _reserved_message(name, ev.OTEL_USAGE_BAGGAGE_ALLOW))
    return tuple(name for name in names if name not in RESERVED_KEYS)


def _validate(key: str, value: Any) -> Any:
    if key == "level":
        return parse_level(value)
    if key in ("baggage_allow", "redact"):
        items = tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else tuple(value)
        if not all(isinstance(v, str) for v in items):
            raise ValueError(f"{key} must be strings, got {value!r}")
        if key == "baggage_allow":
            for name in items:
                if name in RESERVED_KEYS:
                    raise ValueError(_reserved_message(name, key))
        return items
    if key == "log_verbosity":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"log_verbosity must be an integer, got {value!r}")
        return value
    if key in ("redact_defaults", "record_unsampled", "log_bridge"):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be a bool, got {value!r}")
        return value
    if key == "grace_millis":
        return _positive(key, value, 0)
    return _positive(key, value, 1)
