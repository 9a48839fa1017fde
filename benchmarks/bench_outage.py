"""A 30 s PostgreSQL outage under a steady stream of usage logs, every setting at its default.

    python benchmarks/bench_outage.py                   # 5 s up, 30 s down, 10 s up again, 500 calls/s
    python benchmarks/bench_outage.py --down 60 --rate 1000

A throwaway PostgreSQL server (tests/_postgres.py) is stopped and started under a thread making probed
root calls at ``--rate``; then the pipeline is flushed and the database counted: rows, distinct trace ids
(a duplicate would show as rows > distinct), drops, spooled logs and how long delivery took after the
restart.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--down", type=float, default=30.0)
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OTEL_USAGE_SPOOL_DIR", tempfile.mkdtemp(prefix="otel-usage-outage-spool-"))
    import sqlalchemy as sa

    import otel_usage
    from otel_usage import traced_usage
    from otel_usage.exporters.sql import SqlUsageExporter
    from tests._postgres import PostgresServer

    server = PostgresServer.create()
    if server is None:
        print("PostgreSQL binaries not found", file=sys.stderr)
        return 2
    try:
        server.start()
        url = server.create_database("outage")
        otel_usage.configure(exporters=[SqlUsageExporter(url)])

        @traced_usage(name="outage.call")
        def call(i: int, tag: str) -> int:
            return i

        made = 0
        start = time.monotonic()
        phases = [("up", args.before), ("down", args.down), ("up again", args.after)]
        restarted = 0.0
        for phase, seconds in phases:
            if phase == "down":
                server.stop()
            elif phase == "up again":
                server.start()
                restarted = time.monotonic()
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                due = int((time.monotonic() - start) * args.rate)
                while made < due:
                    call(made, phase)
                    made += 1
                time.sleep(0.002)
            s = otel_usage.stats()
            print(
                f"after '{phase}' ({seconds:.0f} s): made {made}, exported {s.get('exported:sql', 0)}, "
                f"spooled {s.get('spooled:sql', 0)}, retried {s.get('retried:sql', 0)}, "
                f"queue {s.get('export_queue_sql', 0)}, spool bytes {s.get('spool_bytes_sql', 0)}"
            )
        flushed = otel_usage.force_flush(300_000)
        caught_up = time.monotonic() - restarted
        stats = otel_usage.stats()
        otel_usage.shutdown(30_000)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows, distinct = conn.execute(sa.text("SELECT count(*), count(DISTINCT trace_id) FROM usage_logs")).one()
        engine.dispose()
    finally:
        server.cleanup()
    whole = made == rows == distinct and not stats["dropped"]
    print(
        f"outage of {args.down:.0f} s at {args.rate:.0f} calls/s, default settings: made {made}, stored {rows} "
        f"({distinct} distinct), dropped {stats['dropped']}, spooled {stats.get('spooled:sql', 0)}, "
        f"export failures {stats.get('sql_export_failures', 0)}, flushed {flushed}, everything stored "
        f"{caught_up:.1f} s after the restart: {'PASS' if whole else 'FAIL'}"
    )
    return 0 if whole else 1


if __name__ == "__main__":
    raise SystemExit(main())
