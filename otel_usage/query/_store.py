"""The interface every store implements, and the argument checks they share."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from otel_usage._schema import UsageLog
from otel_usage.query._fields import (
    PERIODS,
    Field,
    Filter,
    QueryError,
    TimeZone,
    group_field,
    parse_filters,
    parse_time,
)
from otel_usage.query._results import StatsRow, UsageStats

__all__ = ["Progress", "Query", "UsageStore"]

#: ``progress(done, total)``: bytes read of a file scan (total 0 when unknown).
Progress = Callable[[int, int], None]


class Query:
    """Checked arguments of a read: time range (UTC), filters."""

    def __init__(
        self,
        start: Any = None,
        end: Any = None,
        filters: dict[str, Any] | None = None,
        tz: TimeZone | str | None = None,
    ) -> None:
        self.tz = tz if isinstance(tz, TimeZone) else TimeZone(tz or "UTC")
        self.start: dt.datetime | None = parse_time(start, self.tz, "start")
        self.end: dt.datetime | None = parse_time(end, self.tz, "end")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise QueryError(f"the end ({self.end.isoformat()}) is before the start ({self.start.isoformat()})")
        self.filters: list[Filter] = parse_filters(filters or {})

    def in_range(self, start: dt.datetime) -> bool:
        """Whether a log that started at ``start`` is inside [start, end)."""
        return (self.start is None or start >= self.start) and (self.end is None or start < self.end)

    def matches(self, log: UsageLog) -> bool:
        """Whether a log passes every filter."""
        from otel_usage.query._fields import value_of

        return all(f.matches(value_of(log, f.field)) for f in self.filters)


def check_page(limit: Any, page: Any, error: type[ValueError] = QueryError) -> None:
    """Raise ``error`` unless ``limit`` and ``page`` are integers >= 1."""
    for name, value in (("limit", limit), ("page", page)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise error(f"{name} must be an integer >= 1, got {value!r}")


def check_stats(by: str | Sequence[str] | None, per: str | None, top: Any) -> list[Field]:
    names = [by] if isinstance(by, str) else list(by or ())
    fields = [group_field(name) for name in names]
    if len({f.name for f in fields}) != len(fields):
        raise QueryError(f"a field is repeated in by={names}")
    if sum(f.kind == "function" for f in fields) > 1:
        raise QueryError("group by function once")
    if per is not None and per not in PERIODS:
        raise QueryError(f"unknown period {per!r}; expected one of {', '.join(PERIODS)}")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        raise QueryError(f"top must be an integer >= 1, got {top!r}")
    return fields


class UsageStore(abc.ABC):
    """Stored usage logs, read only: a SQL database or a JSON Lines file (with its rotated files).

    Open one with :func:`otel_usage.query.open_store`. Every method takes the same filters (see
    :func:`otel_usage.query.get_usage`) and returns the same shapes whatever the store.
    """

    #: The store's name (a URL without its password, or a file path).
    url: str

    @property
    def skipped(self) -> int:
        """Corrupt lines skipped so far (JSON Lines stores; always 0 for SQL)."""
        return 0

    @abc.abstractmethod
    def get_usage(
        self, start: Any = None, end: Any = None, limit: int = 500, page: int = 1, **filters: Any
    ) -> list[UsageLog]:
        """Usage logs that started in [start, end), newest first, ``limit`` per page; ``start`` of each log is
        an aware UTC datetime."""

    @abc.abstractmethod
    def iter_usage(self, start: Any = None, end: Any = None, **filters: Any) -> Iterator[UsageLog]:
        """Every matching usage log, streamed: oldest first from SQL, in the order written from a file."""

    @abc.abstractmethod
    def count(self, start: Any = None, end: Any = None, **filters: Any) -> int:
        """How many usage logs match."""

    def stats(
        self,
        by: str | Sequence[str] | None = None,
        per: str | None = None,
        start: Any = None,
        end: Any = None,
        tz: str = "UTC",
        top: int | None = None,
        **filters: Any,
    ) -> UsageStats:
        """Hits, unique users and visitors, transfer, errors and duration percentiles, per group.

        Args:
            by: field name(s) to group by (see :data:`otel_usage.query.FIELDS`, or ``info.<key>``).
            per: ``hour``, ``day`` or ``month`` buckets, in ``tz``.
            start: from this time (a naive time or date is in ``tz``).
            end: until this time (excluded).
            tz: time zone of the buckets and of naive times: ``UTC``, an IANA name or an offset ``+05:30``.
            top: only the ``top`` groups with the most hits (per bucket).
            **filters: as for :meth:`get_usage`.

        Raises:
            QueryError: an unknown field or period, a bad time or time zone.
        """
        fields = check_stats(by, per, top)
        query = Query(start, end, filters, tz)
        names = ([per] if per else []) + [f.name for f in fields]
        rows, skipped = self._stats_rows(fields, per, query, names, top)
        return UsageStats(
            rows=rows,
            by=tuple(f.name for f in fields),
            per=per,
            tz=query.tz.name,
            start=query.start,
            end=query.end,
            skipped=skipped,
        )

    @abc.abstractmethod
    def _stats_rows(
        self, fields: list[Field], per: str | None, query: Query, names: list[str], top: int | None
    ) -> tuple[list[StatsRow], int]:
        """The rows of :meth:`stats` (keyed by ``names``, ordered, ``top`` kept) and the lines skipped."""

    @abc.abstractmethod
    def get_trace(self, trace_id: str) -> list[UsageLog]:
        """The usage logs of one trace (one per service it crossed), oldest first."""

    @abc.abstractmethod
    def follow(self, poll_seconds: float = 1.0, **filters: Any) -> Iterator[UsageLog | None]:
        """New usage logs as they are stored, forever; yields None after each poll that found none."""

    def close(self) -> None:
        """Release the store's connections and files."""
        return None

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
