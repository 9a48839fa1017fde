"""SqlUsageExporter.export throughput vs raw SQLAlchemy Core executemany of the same rows (target >= 0.8).

Both sides write the same usage logs (fresh ids per batch) into the same tables of the same database,
batch by batch, one transaction per batch, in interleaved rounds of the same run: the exporter from
OpenTelemetry log records (filtering, conversion to rows, insert-or-ignore, call rows), the baseline
from rows converted beforehand (plain ``INSERT ... RETURNING id`` then the call rows). The SQLite
connections of both use the same settings (WAL, synchronous=NORMAL).

Runs on a temporary SQLite file and on PostgreSQL: a throwaway server started with ``tests/_postgres.py``
(Debian's ``postgresql`` package), or ``--pg-url``. Run from the repository root::

    python benchmarks/bench_sql_exporter.py [--batches 20] [--batch-size 256] [--rounds 7] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from otel_usage._schema import USAGE_LOG_EVENT
from otel_usage.exporters._sql_schema import SqlTables, dumps
from otel_usage.exporters._sql_values import PreparedLog
from otel_usage.exporters.sql import SqlUsageExporter

COLUMNS = {"user": "user_name", "tenant": "tenant"}
START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)
RESOURCE = Resource.create({"service.name": "bench"})


def usage_log(n: int) -> dict[str, Any]:
    """A realistic usage log: info, a request, three call records with parameters."""
    start = START + dt.timedelta(milliseconds=n)
    return {
        "user": f"user{n % 50}",
        "tenant": f"tenant{n % 7}",
        "request": {"method": "GET", "path": f"/cart/{n % 1000}", "status": 200, "remote_addr": "10.0.0.1"},
        "data": [
            {
                "function": "shop.views.cart",
                "tracker": "shop.views",
                "depth": 0,
                "level": "DEFAULT",
                "start": 0.0,
                "duration": 0.0123,
                "params": {"cart_id": n, "page": 1},
                "exception": False,
            },
            {
                "function": "shop.cart.add_item",
                "tracker": "shop.cart",
                "depth": 1,
                "level": "INFO",
                "start": 0.001,
                "duration": 0.008,
                "params": {"item_id": n % 97, "qty": 2, "options": ["gift", "express"]},
                "class_name": "Cart",
                "exception": False,
                "discount": 0.1,
            },
            {
                "function": "shop.db.save",
                "tracker": "shop.db",
                "depth": 2,
                "level": "DEBUG",
                "start": 0.002,
                "duration": 0.004,
                "params": {"row": {"id": n, "total": 12.5}},
                "exception": False,
            },
        ],
        "trace_id": f"{n + 1:032x}",
        "span_id": f"{n + 1:016x}",
        "parent_span_id": None,
        "service": "shop",
        "start": start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "duration": 0.0123,
        "status": "ok",
        "schema": 1,
    }


def _ids() -> Iterator[int]:
    n = 0
    while True:
        yield n
        n += 1


class Workload:
    """Fresh, never-stored logs for each side: as log records for the exporter, as rows for the baseline."""

    def __init__(self, tables: SqlTables, batch_size: int, batches: int) -> None:
        self.tables = tables
        self.batch_size = batch_size
        self.batches = batches
        self.ids = _ids()

    def records(self) -> list[list[ReadableLogRecord]]:
        return [
            [
                ReadableLogRecord(LogRecord(body=usage_log(next(self.ids)), event_name=USAGE_LOG_EVENT), RESOURCE)
                for _ in range(self.batch_size)
            ]
            for _ in range(self.batches)
        ]

    def rows(self) -> list[list[PreparedLog]]:
        return [
            [self.tables.prepare(usage_log(next(self.ids))) for _ in range(self.batch_size)]
            for _ in range(self.batches)
        ]


def raw_engine(url: str) -> sa.Engine:
    """A plain engine; on SQLite with the same connection settings as the exporter's."""
    engine = sa.create_engine(url, json_serializer=dumps)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 10000")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

    return engine


def raw_insert(engine: sa.Engine, tables: SqlTables, batches: list[list[PreparedLog]]) -> None:
    """The baseline: Core executemany of the logs (RETURNING ids), then of their call rows."""
    insert_logs = tables.logs.insert().returning(tables.logs.c.id, sort_by_parameter_order=True)
    insert_calls = tables.calls.insert()
    for batch in batches:
        with engine.begin() as conn:
            ids = [row[0] for row in conn.execute(insert_logs, [tables.log_row(item) for item in batch])]
            calls = [row for item, log_id in zip(batch, ids, strict=True) for row in item.call_rows(log_id)]
            conn.execute(insert_calls, calls)


def exporter_insert(exporter: SqlUsageExporter, batches: list[list[ReadableLogRecord]]) -> None:
    for batch in batches:
        if exporter.export(batch) != LogRecordExportResult.SUCCESS:
            raise RuntimeError("export failed")


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(label: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    exporter = SqlUsageExporter(url, columns=COLUMNS)
    tables = SqlTables("usage_", COLUMNS)
    workload = Workload(tables, args.batch_size, args.batches)
    engine = raw_engine(url)
    exporter_insert(exporter, workload.records()[:2])  # warm-up: schema, connections, statement caches
    raw_insert(engine, tables, workload.rows()[:2])
    n = args.batch_size * args.batches
    exporter_rates: list[float] = []
    raw_rates: list[float] = []
    for round_number in range(args.rounds):
        records, rows = workload.records(), workload.rows()
        sides = [
            (exporter_rates, lambda records=records: exporter_insert(exporter, records)),
            (raw_rates, lambda rows=rows: raw_insert(engine, tables, rows)),
        ]
        if round_number % 2:
            sides.reverse()
        for rates, action in sides:
            rates.append(n / timed(action))
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(tables.logs)).scalar_one()
    expected = n * args.rounds * 2 + args.batch_size * 4
    if stored != expected:
        raise RuntimeError(f"{label}: {stored} logs stored, expected {expected}")
    engine.dispose()
    exporter.shutdown()
    exporter_rate, raw_rate = statistics.median(exporter_rates), statistics.median(raw_rates)
    return {"label": label, "exporter": exporter_rate, "raw": raw_rate, "ratio": exporter_rate / raw_rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20, help="batches per side per round")
    parser.add_argument("--batch-size", type=int, default=256, help="usage logs per batch (one transaction)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median reported)")
    parser.add_argument("--pg-url", help="PostgreSQL URL to use instead of a throwaway server (tables usage_*)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench_sql_") as tmp:
        results.append(run("SQLite (temp file, WAL)", f"sqlite:///{os.path.join(tmp, 'bench.db')}", args))
    if args.pg_url:
        results.append(run("PostgreSQL (--pg-url)", args.pg_url, args))
    elif not args.no_postgres:
        from tests._postgres import PostgresServer

        server = PostgresServer.create()
        if server is None:
            print("PostgreSQL binaries not found: PostgreSQL not measured (use --pg-url)", file=sys.stderr)
        else:
            try:
                server.start()
                results.append(run("PostgreSQL (throwaway, fsync=off)", server.create_database("bench"), args))
            finally:
                server.cleanup()

    n = args.batch_size * args.batches
    print(f"SqlUsageExporter.export vs raw Core executemany: {args.rounds} interleaved rounds of {n} logs per side,")
    print(f"batches of {args.batch_size} (3 call records each); medians in usage logs per second")
    print()
    print(f"{'database':<36} {'exporter/s':>12} {'raw Core/s':>12} {'ratio':>7}  target >= 0.8")
    failed = False
    for result in results:
        ok = result["ratio"] >= 0.8
        failed |= not ok
        print(
            f"{result['label']:<36} {result['exporter']:>12,.0f} {result['raw']:>12,.0f} {result['ratio']:>7.2f}  "
            f"{'ok' if ok else 'BELOW TARGET'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
