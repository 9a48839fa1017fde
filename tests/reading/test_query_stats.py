"""Statistics from every store agree with a plain Python reference: SQLite and PostgreSQL in SQL, JSONL streamed."""

from __future__ import annotations

import collections
import datetime as dt
import statistics
import zoneinfo
from typing import Any

import pytest

from otel_usage.query import QueryError, open_store

LABELS = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}


def _start(log: dict[str, Any]) -> dt.datetime:
    return dt.datetime.strptime(log["start"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _get(log: dict[str, Any], path: str) -> Any:
    node: Any = log
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


REFERENCE_FIELDS = {
    "endpoint": lambda log: _get(log, "request.endpoint"),
    "browser": lambda log: _get(log, "request.user_agent.browser"),
    "http_status": lambda log: _get(log, "request.status"),
    "service": lambda log: log["service"],
    "info.tenant": lambda log: log.get("tenant"),
}


def reference(logs: list[dict[str, Any]], by: tuple[str, ...], per: str | None, tz: str) -> dict[tuple, dict]:
    """The figures computed the obvious way, one group at a time."""
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30)) if tz == "+05:30" else zoneinfo.ZoneInfo(tz)
    groups: dict[tuple, list[dict[str, Any]]] = collections.defaultdict(list)
    for log in logs:
        key = (_start(log).astimezone(zone).strftime(LABELS[per]),) if per else ()
        if "function" in by:
            for call in log["data"]:
                groups[
                    key + tuple(call["function"] if f == "function" else REFERENCE_FIELDS[f](log) for f in by)
                ].append({"log": log, "duration": call["duration"], "error": call["exception"], "transfer": None})
            continue
        key += tuple(REFERENCE_FIELDS[f](log) for f in by)
        request = log["request"]
        groups[key].append(
            {
                "log": log,
                "duration": log["duration"],
                "error": log["status"] == "error" or request["status"] >= 500,
                "transfer": request["response_length"],
            }
        )
    out = {}
    for key, items in groups.items():
        durations = sorted(i["duration"] for i in items if i["duration"] is not None)
        users = {i["log"].get("user") or i["log"]["request"]["username"] for i in items} - {None}
        out[key] = {
            "hits": len(items),
            "users": len(users),
            "visitors": len({i["log"]["request"]["visitor"] for i in items}),
            "transfer": sum(i["transfer"] or 0 for i in items),
            "errors": sum(bool(i["error"]) for i in items),
            "duration_mean": statistics.fmean(durations) if durations else None,
            "duration_p50": _pct(durations, 50),
            "duration_p95": _pct(durations, 95),
            "duration_p99": _pct(durations, 99),
        }
    return out


CASES = [
    ((), None, "UTC"),
    (("endpoint",), None, "UTC"),
    (("browser", "http_status"), None, "UTC"),
    (("function",), None, "UTC"),
    ((), "day", "Europe/Paris"),
    (("service",), "hour", "UTC"),
    (("info.tenant",), "day", "+05:30"),
    (("function",), "day", "America/New_York"),
    ((), "month", "UTC"),
]


@pytest.mark.parametrize(("by", "per", "tz"), CASES)
def test_stats_match_the_python_reference(store_url: str, logs: list[dict[str, Any]], by, per, tz) -> None:
    """Hits, users, visitors, transfer, errors, mean and p50/p95/p99 per group equal the reference's."""
    expected = reference(logs, by, per, tz)
    with open_store(store_url) as store:
        result = store.stats(by=by, per=per, tz=tz)
    got = {tuple(row.group[c] for c in result.columns): row for row in result.rows}
    assert set(got) == set(expected)
    assert sum(row.hits for row in result.rows) == sum(e["hits"] for e in expected.values())
    for key, figures in expected.items():
        row = got[key]
        for name, value in figures.items():
            actual = getattr(row, name)
            if value is None:
                assert actual is None, (key, name)
            else:
                assert actual == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name, actual, value)
    assert [row.hits for row in result.rows] == sorted((r.hits for r in result.rows), reverse=True) or per


def test_daylight_saving_day_has_25_hours_in_paris(store_url: str, logs: list[dict[str, Any]]) -> None:
    """Hourly buckets in Europe/Paris on 2026-10-25 follow the zone's offset change, like zoneinfo does."""
    with open_store(store_url) as store:
        result = store.stats(per="hour", tz="Europe/Paris", start="2026-10-25T00:00", end="2026-10-25T06:00")
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    expected = collections.Counter(
        _start(log).astimezone(paris).strftime("%Y-%m-%dT%H:00")
        for log in logs
        if dt.datetime(2026, 10, 25, tzinfo=paris) <= _start(log) < dt.datetime(2026, 10, 25, 6, tzinfo=paris)
    )
    assert {row.group["hour"]: row.hits for row in result.rows} == dict(expected)
    assert result.start == dt.datetime(2026, 10, 24, 22, tzinfo=dt.timezone.utc)  # naive times are in tz


def test_filters_restrict_stats(store_url: str, logs: list[dict[str, Any]]) -> None:
    """Filters on info keys, request fields, function and status restrict what is counted."""
    with open_store(store_url) as store:
        shows = store.stats(endpoint="notes.show").rows[0].hits
        assert shows == sum(log["request"]["endpoint"] == "notes.show" for log in logs)
        errors = store.stats(status="error", tenant="acme").rows[0].hits
        assert errors == sum(log["status"] == "error" and log["tenant"] == "acme" for log in logs)
        render = store.stats(function="notes_app.render").rows[0].hits
        assert render == sum(any(c["function"] == "notes_app.render" for c in log["data"]) for log in logs)
        top = store.stats(by="endpoint", top=2)
        assert len(top.rows) == 2 and top.rows[0].hits >= top.rows[1].hits


def test_top_keeps_the_busiest_groups(store_url: str, logs: list[dict[str, Any]]) -> None:
    """``top`` keeps the groups with the most hits (per bucket with ``per``)."""
    counts = collections.Counter(log["request"]["client_ip"] for log in logs)
    with open_store(store_url) as store:
        result = store.stats(by="client_ip", top=3)
        assert [row.hits for row in result.rows] == [n for _, n in counts.most_common(3)]
        per_day = store.stats(by="client_ip", per="day", top=1)
    days = {row.group["day"] for row in per_day.rows}
    assert len(per_day.rows) == len(days) == 4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"by": "tenant"}, "unknown group-by field 'tenant'"),
        ({"by": "trace_id"}, "cannot group by trace_id"),
        ({"per": "week"}, "unknown period 'week'"),
        ({"start": "yesterday-ish"}, "bad start 'yesterday-ish'"),
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"start": "2026-11-02", "end": "2026-11-01"}, "is before the start"),
        ({"top": 0}, "top must be an integer >= 1"),
        ({"by": ["endpoint", "endpoint"]}, "repeated"),
    ],
)
def test_bad_arguments_are_clear_errors(store_url: str, arguments: dict[str, Any], message: str) -> None:
    """Unknown fields, periods, zones and bad dates raise QueryError naming the problem."""
    with open_store(store_url) as store, pytest.raises(QueryError, match=message.replace("(", r"\(")):
        store.stats(**arguments)
