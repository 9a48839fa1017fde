"""Times, time zones and percentiles of the query module."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from otel_usage.query import QueryError, TimeZone, parse_time
from otel_usage.query._fields import percentile


def test_times_accept_iso_dates_and_durations_ago() -> None:
    """ISO dates and times (naive ones in the given zone) and durations ago all become aware UTC datetimes."""
    utc = dt.timezone.utc
    assert parse_time("2026-11-20") == dt.datetime(2026, 11, 20, tzinfo=utc)
    assert parse_time("2026-11-20T10:00:00Z") == dt.datetime(2026, 11, 20, 10, tzinfo=utc)
    assert parse_time("2026-11-20T10:00", TimeZone("+05:30")) == dt.datetime(2026, 11, 20, 4, 30, tzinfo=utc)
    assert parse_time("2026-07-01", TimeZone("Europe/Paris")) == dt.datetime(2026, 6, 30, 22, tzinfo=utc)
    ago = dt.datetime.now(utc) - parse_time("24h")
    assert dt.timedelta(hours=23, minutes=59) < ago < dt.timedelta(hours=24, minutes=1)
    assert dt.timedelta(days=6.99) < dt.datetime.now(utc) - parse_time("7d") < dt.timedelta(days=7.01)
    for bad in ("tomorrow", "2026-13-01", "7 parsecs"):
        with pytest.raises(QueryError, match="bad time"):
            parse_time(bad)


def test_time_zone_transitions_are_found_to_the_second() -> None:
    """The offsets over a range include the daylight-saving change at its exact instant."""
    zone = TimeZone("Europe/Paris")
    offsets = zone.transitions(
        dt.datetime(2026, 10, 20, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    )
    assert offsets == [(None, 120), (dt.datetime(2026, 10, 25, 1, tzinfo=dt.timezone.utc), 60)]
    assert TimeZone("-03:00").transitions(dt.datetime.now(dt.timezone.utc), dt.datetime.now(dt.timezone.utc)) == [
        (None, -180)
    ]
    with pytest.raises(QueryError, match="unknown time zone"):
        TimeZone("Europe/Atlantis")


@pytest.mark.parametrize("n", [1, 2, 3, 10, 21, 101])
def test_percentiles_interpolate_like_percentile_cont(n: int) -> None:
    """Linear interpolation between closest ranks, as statistics.quantiles(method='inclusive')."""
    values = sorted((i * 7919) % 1000 / 7.0 for i in range(n))
    if n > 1:
        expected = statistics.quantiles(values, n=100, method="inclusive")
        for p in (50, 95, 99):
            assert percentile(values, p / 100) == pytest.approx(expected[p - 1])
    else:
        assert percentile(values, 0.95) == values[0]
    assert percentile([], 0.5) is None
