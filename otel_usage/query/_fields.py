"""The vocabulary of the reading side: fields to filter and group on, time ranges, buckets, percentiles.

A *field* names one value of a usage log. Built-in fields are stored columns (``service``, ``status``,
``trace_id``), the call records' ``function``, or paths into the info keys (``endpoint`` is
``request.endpoint``); ``info.<key>[.<key>...]`` names any other info key. Every store (SQL or JSON Lines)
resolves the same field to the same value, so their answers agree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "FIELDS",
    "Field",
    "Filter",
    "PERCENTILES",
    "PERIODS",
    "QueryError",
    "StoreError",
    "TimeZone",
    "bucket_label",
    "field",
    "group_field",
    "parse_filters",
    "parse_time",
    "percentile",
    "value_of",
]


class QueryError(ValueError):
    """A bad request to a store: unknown field, bad date, bad time zone, bad limit."""


class StoreError(Exception):
    """A store that cannot be read: missing file, unreachable database, no usage tables."""


#: Percentiles of durations that statistics report.
PERCENTILES = (0.5, 0.95, 0.99)

#: Time buckets of statistics: name -> strftime format of the bucket's label (local to the time zone).
PERIODS = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


@dataclasses.dataclass(frozen=True)
class Field:
    """One value of a usage log.

    ``kind`` is ``column`` (a top-level key with its own SQL column), ``function`` (the call records'
    function names) or ``info`` (the first of ``paths`` present and not null, each a path into the info keys).
    """

    name: str
    kind: str
    paths: tuple[tuple[str, ...], ...] = ()
    description: str = ""


def _info(name: str, description: str, *paths: str) -> Field:
    return Field(name, "info", tuple(tuple(p.split(".")) for p in paths), description)


#: The built-in fields, by name (``server`` is ``service``, as Flask-Track-Usage called it).
FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("service", "column", (), "the service that wrote the log (OTEL_SERVICE_NAME)"),
        Field("status", "column", (), "the log's status: ok or error"),
        Field("trace_id", "column", (), "the trace id (one log per service of a trace)"),
        Field("span_id", "column", (), "the local root span's id"),
        Field("function", "function", (), "a tracked function (a log matches when one of its calls does)"),
        _info("user", "the user: info key user, else request.username", "user", "request.username"),
        _info("visitor", "the unique visitor cookie's id", "request.visitor"),
        _info("url", "the full URL", "request.url"),
        _info("path", "the URL path", "request.path"),
        _info("route", "the URL rule, e.g. /notes/<int:note_id>", "request.route"),
        _info("endpoint", "the Flask endpoint", "request.endpoint"),
        _info("blueprint", "the Flask blueprint", "request.blueprint"),
        _info("method", "the HTTP method", "request.method"),
        _info("http_status", "the HTTP status code", "request.status"),
        _info("remote", "the peer address (remote_addr)", "request.remote_addr"),
        _info("client_ip", "the client address (X-Forwarded-For as far as trusted)", "request.client_ip"),
        _info("browser", "the browser family", "request.user_agent.browser"),
        _info("os", "the operating system family", "request.user_agent.os"),
        _info("device", "the device family", "request.user_agent.device"),
        _info("language", "the preferred language (Accept-Language)", "request.user_agent.language"),
        _info("country", "the geo lookup's country", "request.geo.country"),
    )
}
FIELDS["server"] = dataclasses.replace(FIELDS["service"], description="alias of service")

#: Info paths of the figures statistics compute.
TRANSFER_PATH = ("request", "response_length")
HTTP_STATUS_PATH = ("request", "status")


def field(name: str) -> Field:
    """The field called ``name``: a built-in one, ``info.<path>``, or (for filters) a bare info key.

    Raises:
        QueryError: a malformed path.
    """
    known = FIELDS.get(name)
    if known is not None:
        return known
    path = name[5:] if name.startswith("info.") else name.replace("__", ".")
    parts = tuple(path.split("."))
    if not path or not all(_SEGMENT.match(part) for part in parts):
        raise QueryError(f"invalid field {name!r}: expected a field name or info.<key>[.<key>...]")
    return Field(name, "info", (parts,), f"info key {path}")


def group_field(name: str) -> Field:
    """A field to group statistics by: a built-in one or ``info.<path>``.

    Raises:
        QueryError: an unknown name (with the list of known ones).
    """
    if name in FIELDS or name.startswith("info."):
        if name in ("trace_id", "span_id"):
            raise QueryError(f"cannot group by {name}: every log has its own")
        return field(name)
    known = ", ".join(sorted(n for n in FIELDS if n not in ("trace_id", "span_id")))
    raise QueryError(f"unknown group-by field {name!r}; known fields: {known}; any info key as info.<key>")


@dataclasses.dataclass(frozen=True)
class Filter:
    """Equality on a field: the value, or any of several values; ``None`` matches a missing value."""

    field: Field
    values: tuple[Any, ...]

    def matches(self, value: Any) -> bool:
        """Whether a log's ``value`` of the field passes (``value`` is a list for ``function``)."""
        if isinstance(value, list):
            return any(self.matches(v) for v in value) if value else None in self.values
        return any(_same(value, wanted) for wanted in self.values)


def _same(value: Any, wanted: Any) -> bool:
    if value is None or wanted is None:
        return value is None and wanted is None
    if isinstance(value, bool) or isinstance(wanted, bool):
        return isinstance(value, bool) and isinstance(wanted, bool) and value == wanted
    return bool(value == wanted)


def parse_filters(filters: Mapping[str, Any]) -> list[Filter]:
    """Filters from keyword arguments: ``name=value`` or ``name=[v1, v2]`` (any of).

    Raises:
        QueryError: a malformed field name or an empty list of values.
    """
    parsed = []
    for name, value in filters.items():
        values = tuple(value) if isinstance(value, (list, tuple, set, frozenset)) else (value,)
        if not values:
            raise QueryError(f"filter {name!r} has an empty list of values")
        for v in values:
            if v is not None and not isinstance(v, (str, int, float, bool)):
                raise QueryError(f"filter {name!r}: {v!r} is not a string, number, boolean or None")
        parsed.append(Filter(field(name), values))
    return parsed


def value_of(log: Mapping[str, Any], f: Field) -> Any:
    """The value of field ``f`` in a usage log (a list of function names for ``function``)."""
    if f.kind == "column":
        return log.get("service" if f.name == "server" else f.name)
    if f.kind == "function":
        return [r.get("function") for r in log.get("data") or () if isinstance(r, Mapping)]
    for path in f.paths:
        value = path_value(log, path)
        if value is not None:
            return value
    return None


def path_value(log: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path`` in a log's info keys, None when missing."""
    node: Any = log
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


# --- time ----------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*\Z", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str | dt.datetime | dt.date | None, tz: TimeZone | None = None, what: str = "time") -> Any:
    """An aware UTC datetime from a datetime, a date, an ISO-8601 string or a duration ago (``7d``, ``24h``,
    ``30m``, ``90s``, ``2w``); a time without an offset is in ``tz`` (default UTC). None stays None.

    Raises:
        QueryError: a string that is neither.
    """
    if value is None:
        return None
    zone = (tz or TimeZone("UTC")).zone
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        relative = _RELATIVE.match(text)
        if relative:
            seconds = float(relative.group(1)) * _UNITS[relative.group(2).lower()]
            return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)
        if text.lower() in ("now",):
            return dt.datetime.now(dt.timezone.utc)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(
                f"bad {what} {value!r}: expected an ISO-8601 date or time (2026-11-20, 2026-11-20T10:00, "
                "2026-11-20T10:00:00+01:00) or a duration ago (30m, 24h, 7d, 2w)"
            ) from None
    else:
        raise QueryError(f"bad {what} {value!r}: expected a datetime or a string")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.timezone.utc)


_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})\Z")


class TimeZone:
    """The time zone of time buckets: ``UTC``, an IANA name (``Europe/Paris``) or a fixed offset (``+05:30``).

    Raises:
        QueryError: an unknown zone.
    """

    def __init__(self, name: str = "UTC") -> None:
        text = (name or "UTC").strip()
        offset = _OFFSET.match(text)
        self.offset_minutes: int | None = None
        self.zone: dt.tzinfo
        if text.upper() in ("UTC", "Z", "GMT"):
            self.name, self.zone, self.offset_minutes = "UTC", dt.timezone.utc, 0
        elif offset:
            minutes = int(offset.group(2)) * 60 + int(offset.group(3))
            if minutes >= 24 * 60:
                raise QueryError(f"bad time zone {name!r}: offset out of range")
            minutes = -minutes if offset.group(1) == "-" else minutes
            self.name, self.offset_minutes = f"{offset.group(1)}{offset.group(2)}:{offset.group(3)}", minutes
            self.zone = dt.timezone(dt.timedelta(minutes=minutes))
        else:
            try:
                self.zone = zoneinfo.ZoneInfo(text)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise QueryError(
                    f"unknown time zone {name!r}: use UTC, an IANA name such as Europe/Paris, or an offset such as "
                    "+05:30"
                ) from None
            self.name = text

    def __repr__(self) -> str:
        return f"TimeZone({self.name!r})"

    def transitions(self, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime | None, int]]:
        """The UTC offsets (minutes) in force over [lo, hi]: ``[(None, first), (t1, second), ...]`` where
        each ``ti`` (UTC) is when that offset starts."""
        if self.offset_minutes is not None:
            return [(None, self.offset_minutes)]

        def offset(moment: dt.datetime) -> int:
            delta = moment.astimezone(self.zone).utcoffset() or dt.timedelta()
            return int(delta.total_seconds() // 60)

        result: list[tuple[dt.datetime | None, int]] = [(None, offset(lo))]
        step = dt.timedelta(hours=12)
        a = lo
        while a < hi:
            b = min(a + step, hi)
            if offset(b) != offset(a):
                left, right = a, b  # offset(left) != offset(right): bisect to the second
                while right - left > dt.timedelta(seconds=1):
                    mid = left + (right - left) / 2
                    if offset(mid) == offset(a):
                        left = mid
                    else:
                        right = mid
                result.append((right.replace(microsecond=0), offset(right)))
            a = b
        return result


def bucket_label(start: dt.datetime, per: str, tz: TimeZone) -> str:
    """The label of the ``per`` bucket (hour, day, month) that holds ``start``, in ``tz``."""
    return start.astimezone(tz.zone).strftime(PERIODS[per])


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``); None when empty."""
    n = len(sorted_values)
    if not n:
        return None
    h = (n - 1) * p
    lo = math.floor(h)
    low = sorted_values[lo]
    high = sorted_values[lo + 1] if lo + 1 < n else low
    return low + (h - lo) * (high - low)
