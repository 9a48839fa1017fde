"""Settings of the Flask usage tracking: explicit argument > ``app.config`` key > environment > default.

Reads ``OTEL_USAGE_FLASK_MODE``, ``OTEL_USAGE_FLASK_TRUSTED_PROXIES``, ``OTEL_USAGE_FLASK_VISITOR_COOKIE``,
``OTEL_USAGE_FLASK_TRACK_STATIC`` and ``OTEL_USAGE_FLASK_GEOIP_DATABASE`` (the ``app.config`` keys have the
same names), defined in the settings table (:data:`otel_usage._config.FLASK`). A bad environment value is a
warning and the default; a bad argument or config value raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from otel_usage._config import FLASK

__all__ = ["FIELDS", "FlaskUsageSettings", "resolve_settings", "strict"]

T = TypeVar("T")


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

    mode: str = FLASK["mode"].default
    trusted_proxies: int = FLASK["trusted_proxies"].default
    visitor_cookie: bool = FLASK["visitor_cookie"].default
    track_static: bool = FLASK["track_static"].default
    geoip_database: str | None = FLASK["geoip_database"].default


#: field -> its setting (variable, also the app.config key; default; parser of any value)
FIELDS = FLASK


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
    values: dict[str, Any] = {}
    for field, setting in FIELDS.items():
        value = explicit.get(field)
        variable = str(setting.variable)
        if value is not None:
            values[field] = strict(field, setting.parse, value, "argument")
        elif config is not None and config.get(variable) is not None:
            values[field] = strict(field, setting.parse, config[variable], f"app.config[{variable!r}]")
        else:
            values[field] = setting.from_env()
    return FlaskUsageSettings(**values)
