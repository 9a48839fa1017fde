"""Reading side: statistics in the database over a 1,000,000-log SQLite table, and a JSON Lines scan.

Builds (once, then reuses) a SQLite store of ``--logs`` usage logs spread over ``--days`` days, written by the
real :class:`SqlUsageExporter` (one call record per log, Flask-like ``request`` info: route, user, visitor,
browser, status, response length). Then times, median of ``--rounds``:

- the *daily summary*: one day's hits, unique users and visitors, transfer, errors and p50/p95/p99, per hour
  (``otel-usage stats --per hour --since DAY --until DAY+1``), target < 1 s;
- one day's top routes and top users; the whole table per day; the newest page of ``get_usage``;
- the same daily summary computed the naive way (every log of the day loaded into Python through
  ``get_usage``, then aggregated): the ratio says what computing in the database saves;
- a JSON Lines store of ``--jsonl-logs`` logs: one streaming stats pass, logs per second.

Run from the repository root::

    python benchmarks/bench_query.py [--logs 1000000] [--days 30] [--rounds 5] [--db /tmp/otel_usage_bench_1m.db]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource

from otel_usage._schema import USAGE_LOG_EVENT
from otel_usage.exporters.file import FileUsageExporter
from otel_usage.exporters.sql import SqlUsageExporter
from otel_usage.query import open_store
from otel_usage.query._fields import PERCENTILES, percentile

START = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
ROUTES = ["/notes/", "/notes/<int:note_id>", "/notes/search", "/api/notes", "/login", "/notes/new", "/admin/export"]
BROWSERS = [("Chrome", "Windows"), ("Firefox", "Linux"), ("Safari", "Mac OS X"), ("Mobile Safari", "iOS")]
RESOURCE = Resource.create({"service.name": "bench"})


def make_log(i: int, n: int, days: int, rng: random.Random) -> dict[str, Any]:
    route = rng.choice(ROUTES)
    browser, system = rng.choice(BROWSERS)
    code = rng.choice((200,) * 18 + (404, 500))
    duration = rng.lognormvariate(-5, 0.8)
    start = START + dt.timedelta(seconds=i * days * 86400 / n)
    return {
        "request": {
            "method": "GET",
            "path": route.replace("<int:note_id>", str(i % 50)),
            "route": route,
            "endpoint": route.strip("/").replace("/", ".") or "index",
            "status": code,
            "client_ip": f"203.0.113.{i % 250}",
            "username": f"user{rng.randrange(2000)}",
            "visitor": f"{rng.randrange(5000):032x}",
            "user_agent": {"browser": browser, "os": system, "language": "en-US"},
            "response_length": rng.randrange(200, 20000),
        },
        "data": [
            {"function": "GET " + route, "depth": 0, "start": 0.0, "duration": duration, "exception": code == 500}
        ],
        "trace_id": f"{i + 1:032x}",
        "span_id": f"{i + 1:016x}",
        "parent_span_id": None,
        "service": "bench",
        "start": start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "duration": duration,
        "status": "error" if code == 500 else "ok",
        "schema": 1,
    }


def record(log: dict[str, Any]) -> ReadableLogRecord:
    return ReadableLogRecord(
        LogRecord(body=log, event_name=USAGE_LOG_EVENT, trace_id=int(log["trace_id"], 16)), RESOURCE
    )


def build_sqlite(path: str, n: int, days: int) -> None:
    if os.path.exists(path):
        with open_store(path) as store:
            if store.count() == n:
                print(f"reusing {path} ({n} logs)")
                return
        os.remove(path)
    print(f"writing {n} logs to {path} through SqlUsageExporter ...", flush=True)
    rng = random.Random(1)
    exporter = SqlUsageExporter(f"sqlite:///{path}")
    began = time.perf_counter()
    batch = 5000
    for first in range(0, n, batch):
        result = exporter.export([record(make_log(i, n, days, rng)) for i in range(first, min(n, first + batch))])
        assert result.name == "SUCCESS"
    exporter.shutdown()
    print(f"  written in {time.perf_counter() - began:.0f} s", flush=True)


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def naive_daily(store: Any, day: dt.datetime) -> dict[str, Any]:
    """The daily summary computed in Python from every log of the day (what this module avoids)."""
    logs: list[dict[str, Any]] = []
    page = 1
    while True:
        chunk = store.get_usage(start=day, end=day + dt.timedelta(days=1), limit=5000, page=page)
        logs.extend(chunk)
        if len(chunk) < 5000:
            break
        page += 1
    hours: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        hours.setdefault(log["start"].strftime("%Y-%m-%dT%H:00"), []).append(log)
    out = {}
    for hour, items in hours.items():
        durations = sorted(x["duration"] for x in items)
        out[hour] = (
            len(items),
            len({x["request"]["username"] for x in items}),
            *(percentile(durations, p) for p in PERCENTILES),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jsonl-logs", type=int, default=100_000)
    parser.add_argument("--db", default=os.path.join(tempfile.gettempdir(), "otel_usage_bench_1m.db"))
    args = parser.parse_args()
    build_sqlite(args.db, args.logs, args.days)
    day = START + dt.timedelta(days=args.days // 2)
    next_day = day + dt.timedelta(days=1)
    rows: list[tuple[str, float, str]] = []
    with open_store(args.db) as store:
        per_day = args.logs // args.days
        t, daily = timed(lambda: store.stats(per="hour", start=day, end=next_day), args.rounds)
        assert sum(r.hits for r in daily.rows) in range(per_day - 1, per_day + 2)
        rows.append(("daily summary (per hour, one day)", t, f"{sum(r.hits for r in daily.rows)} logs"))
        t, _ = timed(lambda: store.stats(by="route", start=day, end=next_day, top=10), args.rounds)
        rows.append(("one day's top 10 routes", t, ""))
        t, _ = timed(lambda: store.stats(by="user", start=day, end=next_day, top=10), args.rounds)
        rows.append(("one day's top 10 users", t, ""))
        t, _ = timed(lambda: store.stats(per="hour", start=day, end=next_day, tz="Europe/Paris"), args.rounds)
        rows.append(("daily summary, Europe/Paris buckets", t, ""))
        t, _ = timed(lambda: store.get_usage(limit=50), args.rounds)
        rows.append(("get_usage newest 50", t, ""))
        naive_t, naive = timed(lambda: naive_daily(store, day), max(1, args.rounds // 2))
        rows.append(("daily summary, naive (load the day into Python)", naive_t, ""))
        first = {r.group["hour"]: r.hits for r in daily.rows}
        assert {hour: v[0] for hour, v in naive.items()} == first
        ratio = naive_t / rows[0][1]
        t, whole = timed(lambda: store.stats(per="day"), max(1, args.rounds // 2))
        rows.append(("whole table per day (all logs)", t, f"{len(whole.rows)} days"))
        t, _ = timed(lambda: store.stats(by="browser"), max(1, args.rounds // 2))
        rows.append(("whole table by browser", t, ""))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "usage.jsonl")
        exporter = FileUsageExporter(path)
        rng = random.Random(2)
        for first in range(0, args.jsonl_logs, 5000):
            end = min(args.jsonl_logs, first + 5000)
            exporter.export([record(make_log(i, args.jsonl_logs, 3, rng)) for i in range(first, end)])
        exporter.shutdown()
        with open_store(path) as jsonl:
            t, _ = timed(lambda: jsonl.stats(by="route", per="day"), max(1, args.rounds // 2))
        rows.append((f"JSONL stats by route per day ({args.jsonl_logs} logs)", t, f"{args.jsonl_logs / t:,.0f} logs/s"))
    print(f"\nSQLite {args.logs} logs over {args.days} days ({args.db}); median of {args.rounds} rounds\n")
    print(f"| {'query':<52} | {'seconds':>8} | note |")
    print(f"|{'-' * 54}|{'-' * 10}|------|")
    for name, seconds, note in rows:
        print(f"| {name:<52} | {seconds:>8.3f} | {note} |")
    print(f"\ndaily summary: {rows[0][1]:.3f} s (target < 1 s): {'PASS' if rows[0][1] < 1 else 'FAIL'}")
    print(f"naive / in-database ratio for the daily summary: {ratio:.1f}x")


if __name__ == "__main__":
    main()
