"""What statistics return, and the streaming aggregation that JSON Lines stores use."""

from __future__ import annotations

import array
import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from otel_usage.query._fields import (
    FIELDS,
    HTTP_STATUS_PATH,
    PERCENTILES,
    TRANSFER_PATH,
    Field,
    TimeZone,
    bucket_label,
    path_value,
    percentile,
    value_of,
)

__all__ = [
    "Aggregator",
    "FIGURES",
    "StatsRow",
    "UsageStats",
    "is_error",
    "number",
    "order_rows",
]


@dataclasses.dataclass
class StatsRow:
    """The figures of one group of usage logs (or of calls, when grouped by function).

    ``group`` maps the bucket (``hour``/``day``/``month``: its local label) and each group-by field to this
    group's value. Durations are in seconds; ``transfer`` is the sum of ``request.response_length`` (bytes).
    """

    group: dict[str, Any]
    hits: int
    users: int
    visitors: int
    transfer: int | float
    errors: int
    duration_mean: float | None
    duration_p50: float | None
    duration_p95: float | None
    duration_p99: float | None

    @property
    def error_rate(self) -> float:
        """``errors / hits`` (0 for no hit)."""
        return self.errors / self.hits if self.hits else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-native dict: the group's values, then the figures (``error_rate`` included)."""
        out: dict[str, Any] = dict(self.group)
        for f in dataclasses.fields(self):
            if f.name != "group":
                out[f.name] = getattr(self, f.name)
        out["error_rate"] = self.error_rate
        return out


#: The figures of a row, in table order.
FIGURES = (
    "hits",
    "users",
    "visitors",
    "transfer",
    "errors",
    "error_rate",
    "duration_mean",
    "duration_p50",
    "duration_p95",
    "duration_p99",
)


@dataclasses.dataclass
class UsageStats:
    """Statistics of a store: one row per group, plus how they were asked for."""

    rows: list[StatsRow]
    by: tuple[str, ...]
    per: str | None
    tz: str
    start: dt.datetime | None
    end: dt.datetime | None
    #: Corrupt lines skipped (JSON Lines stores).
    skipped: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        """The group columns: the bucket (if any), then the group-by fields."""
        return ((self.per,) if self.per else ()) + self.by

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as JSON-native dicts."""
        return [row.to_dict() for row in self.rows]


def number(value: Any) -> float | int | None:
    """``value`` if it is a number (not a boolean), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def is_error(log: Mapping[str, Any]) -> bool:
    """A log counts as an error when its status is ``error`` or its HTTP status is 500 or more."""
    if log.get("status") == "error":
        return True
    code = number(path_value(log, HTTP_STATUS_PATH))
    return code is not None and code >= 500


class _Group:
    __slots__ = ("durations", "errors", "hits", "total", "transfer", "users", "visitors")

    def __init__(self) -> None:
        self.hits = 0
        self.errors = 0
        self.transfer: int | float = 0
        self.total = 0.0
        self.users: set[Any] = set()
        self.visitors: set[Any] = set()
        self.durations = array.array("d")


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


class Aggregator:
    """Statistics in one streaming pass over usage logs (memory: the groups, their distinct users and
    visitors, and 8 bytes per duration for exact percentiles)."""

    def __init__(self, by: Sequence[Field], per: str | None, tz: TimeZone) -> None:
        self._by = list(by)
        self._per = per
        self._tz = tz
        self._function = next((i for i, f in enumerate(self._by) if f.kind == "function"), None)
        self._groups: dict[tuple[Any, ...], _Group] = {}
        self._user = FIELDS["user"]
        self._visitor = FIELDS["visitor"]

    def add(self, log: Mapping[str, Any], start: dt.datetime) -> None:
        """Count one log (its calls, when grouped by function)."""
        base: list[Any] = [bucket_label(start, self._per, self._tz)] if self._per else []
        user = _hashable(value_of(log, self._user))
        visitor = _hashable(value_of(log, self._visitor))
        if self._function is None:
            key = tuple(base + [_hashable(value_of(log, f)) for f in self._by])
            transfer = number(path_value(log, TRANSFER_PATH))
            self._count(key, user, visitor, number(log.get("duration")), is_error(log), transfer)
            return
        for record in log.get("data") or ():
            if not isinstance(record, Mapping):
                continue
            values = [record.get("function") if f.kind == "function" else _hashable(value_of(log, f)) for f in self._by]
            duration = number(record.get("duration"))
            self._count(tuple(base + values), user, visitor, duration, bool(record.get("exception")), None)

    def _count(self, key: tuple[Any, ...], user: Any, visitor: Any, duration: Any, error: bool, transfer: Any) -> None:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.hits += 1
        group.errors += error
        if transfer is not None:
            group.transfer += transfer
        if user is not None:
            group.users.add(user)
        if visitor is not None:
            group.visitors.add(visitor)
        if duration is not None:
            group.durations.append(duration)
            group.total += duration

    def rows(self, names: Sequence[str], top: int | None) -> list[StatsRow]:
        """The rows, ordered like the SQL stores order them."""
        rows = []
        for key, group in self._groups.items():
            durations = sorted(group.durations)
            p50, p95, p99 = (percentile(durations, p) for p in PERCENTILES)
            rows.append(
                StatsRow(
                    group=dict(zip(names, key, strict=True)),
                    hits=group.hits,
                    users=len(group.users),
                    visitors=len(group.visitors),
                    transfer=group.transfer,
                    errors=group.errors,
                    duration_mean=group.total / len(durations) if durations else None,
                    duration_p50=p50,
                    duration_p95=p95,
                    duration_p99=p99,
                )
            )
        return order_rows(rows, names, self._per is not None, top)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def order_rows(rows: list[StatsRow], names: Sequence[str], per: bool, top: int | None) -> list[StatsRow]:
    """Buckets in time order (then most hits first); without buckets, most hits first; ties by value.

    ``top`` keeps the first ``top`` rows (per bucket, when there are buckets).
    """
    group_names = list(names[1:] if per else names)

    def key(row: StatsRow) -> tuple[Any, ...]:
        ties = tuple(_sort_key(row.group[n]) for n in group_names)
        if per:
            return (str(row.group[names[0]]), -row.hits, ties)
        return (-row.hits, ties)

    rows.sort(key=key)
    if top is None:
        return rows
    if not per:
        return rows[:top]
    kept: list[StatsRow] = []
    seen: dict[str, int] = {}
    for row in rows:
        bucket = str(row.group[names[0]])
        if seen.get(bucket, 0) < top:
            seen[bucket] = seen.get(bucket, 0) + 1
            kept.append(row)
    return kept
