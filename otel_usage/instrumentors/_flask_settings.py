"""Settings of the Flask usage tracking: explicit argument > ``app.config`` key > environment > default.

Reads ``OTEL_USAGE_FLASK_MODE``, ``OTEL_USAGE_FLASK_TRUSTED_PROXIES``, ``OTEL_USAGE_FLASK_VISITOR_COOKIE``,
``OTEL_USAGE_FLASK_TRACK_STATIC`` and ``OTEL_USAGE_FLASK_GEOIP_DATABASE`` (the ``app.config`` keys have the
same names). A bad environment value is a warning and the default; a bad argument or config value raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from otel_usage import environment_variables as ev
from otel_usage._config import env_parsed

__all__ = ["FIELDS", "FlaskUsageSettings", "resolve_settings", "strict"]

T = TypeVar("T")

_MODES = ("include", "exclude")


def _parse_mode(raw: Any) -> str:
    mode = str(raw).strip().lower()
    if mode not in _MODES:
        raise ValueError(f"expected 'include' or 'exclude', got {raw!r}")
    return mode


def _parse_count(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer >= 0, got {raw!r}")
    value = int(raw)
    if value < 0:
        raise ValueError(f"expected an integer >= 0, got {raw!r}")
    return value


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_path(raw: Any) -> str | None:
    text = str(raw).strip()
    return text or None


@dataclasses.dataclass(frozen=True)
class FlaskUsageSettings:
    """The settings of one tracked app.

    Attributes:
        mode: ``exclude`` (default): every request is tracked except excluded views and blueprints;
            ``include``: only included views and blueprints are tracked.
        trusted_proxies: reverse proxies in front of the app whose ``X-Forwarded-For`` entries are
            trusted to find ``client_ip`` (0: the peer address is the client).
        visitor_cookie: keep a random visitor id in a signed cookie and record it as ``visitor``.
        track_static: also track static files (``static`` endpoints); default False.
        geoip_database: a local MaxMind database file to resolve ``geo`` from ``client_ip``.
    """

    mode: str = "exclude"
    trusted_proxies: int = 0
    visitor_cookie: bool = False
    track_static: bool = False
    geoip_database: str | None = None


#: field -> (environment variable / app.config key, parser)
FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "mode": (ev.OTEL_USAGE_FLASK_MODE, _parse_mode),
    "trusted_proxies": (ev.OTEL_USAGE_FLASK_TRUSTED_PROXIES, _parse_count),
    "visitor_cookie": (ev.OTEL_USAGE_FLASK_VISITOR_COOKIE, _parse_bool),
    "track_static": (ev.OTEL_USAGE_FLASK_TRACK_STATIC, _parse_bool),
    "geoip_database": (ev.OTEL_USAGE_FLASK_GEOIP_DATABASE, _parse_path),
}


def strict(name: str, parse: Callable[[Any], T], value: Any, source: str) -> T:
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: invalid {name}: {exc}") from None


def resolve_settings(explicit: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> FlaskUsageSettings:
    """Explicit arguments (not None) > ``config`` keys (``app.config``) > environment > defaults.

    Raises:
        ValueError: an invalid explicit argument or config value (a bad environment value only warns).
    """
    defaults = FlaskUsageSettings()
    values: dict[str, Any] = {}
    for field, (variable, parse) in FIELDS.items():
        value = explicit.get(field)
        if value is not None:
            values[field] = strict(field, parse, value, "argument")
        elif config is not None and config.get(variable) is not None:
            values[field] = strict(field, parse, config[variable], f"app.config[{variable!r}]")
        else:
            values[field] = env_parsed(variable, getattr(defaults, field), parse)
    return FlaskUsageSettings(**values)
