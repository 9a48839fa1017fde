"""Soak: the highest sustainable rate for two minutes, default settings, file + SQLite at once.

    python benchmarks/bench_soak.py                      # 10 s calibration, then 120 s at 85 % of it
    python benchmarks/bench_soak.py --seconds 30

Calibration: one thread makes root calls (one probe, 3 parameters) as fast as it can for 10 s (the
back-pressure slows it to the pipeline's pace); the rate at which usage logs reached *both* sinks is the
pipeline's capacity. Soak: the same thread paced at 85 % of that rate for ``--seconds``; every 10 s the
RSS, the backlog of spans, the export queues, the spool and the logs delivered are printed. At the end:
logs made vs lines in the file vs rows in SQLite, drops by reason.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import otel_usage
from otel_usage import traced_usage
from otel_usage.exporters.file import FileUsageExporter
from otel_usage.exporters.sql import SqlUsageExporter


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@traced_usage(name="soak.call")
def call(i: int, tag: str, ratio: float) -> int:
    return i


def delivered() -> int:
    s = otel_usage.stats()
    return min(s.get("exported:file", 0), s.get("exported:sql", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--calibrate", type=float, default=10.0)
    parser.add_argument("--fraction", type=float, default=0.85)
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="otel-usage-soak-")
    os.environ.setdefault("OTEL_USAGE_SPOOL_DIR", os.path.join(work, "spool"))  # read when exporters are built
    path, db = os.path.join(work, "usage.jsonl"), os.path.join(work, "usage.db")
    otel_usage.configure(exporters=[FileUsageExporter(path), SqlUsageExporter(f"sqlite:///{db}")])
    made = 0
    start, before = time.monotonic(), delivered()
    while time.monotonic() - start < args.calibrate:
        for _ in range(100):
            call(made, "soak", 0.5)
            made += 1
    otel_usage.force_flush(120_000)
    capacity = (delivered() - before) / (time.monotonic() - start)
    rate = capacity * args.fraction
    print(
        f"calibration: {made} calls in {args.calibrate:.0f} s, delivered to both sinks at {capacity:.0f}/s "
        f"(including the flush); soak at {rate:.0f} calls/s for {args.seconds:.0f} s"
    )
    print(" t (s) | RSS MB | spans queued | file queue | sql queue | spool KB | made | in both sinks")
    start = time.monotonic()
    next_report = 10.0
    peak = rss_mb()
    soak_made = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= args.seconds:
            break
        due = int(elapsed * rate)
        while soak_made < due:
            call(made, "soak", 0.5)
            made += 1
            soak_made += 1
        if elapsed >= next_report:
            s = otel_usage.stats()
            peak = max(peak, rss_mb())
            spool = sum(v for k, v in s.items() if k.startswith("spool_bytes_"))
            print(
                f" {elapsed:5.0f} | {rss_mb():6.1f} | {s.get('spans_queued', 0):12d} | "
                f"{s.get('export_queue_file', 0):10d} | {s.get('export_queue_sql', 0):9d} | {spool // 1024:8d} | "
                f"{made:7d} | {delivered()}"
            )
            next_report += 10.0
        time.sleep(0.001)
    flushed = otel_usage.force_flush(120_000)
    s = otel_usage.stats()
    otel_usage.shutdown(30_000)
    with open(path, encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT count(*) FROM usage_logs").fetchone()[0]
    whole = made == lines == rows and not s["dropped"]
    print(
        f"soak: {soak_made} calls at {soak_made / args.seconds:.0f}/s; made {made} in all, file {lines}, "
        f"sqlite {rows}, dropped {s['dropped']}, flushed {flushed}, peak RSS {peak:.1f} MB: "
        f"{'PASS' if whole else 'FAIL'}"
    )
    return 0 if whole else 1


if __name__ == "__main__":
    raise SystemExit(main())
