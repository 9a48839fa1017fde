"""Burst benchmark (P3 extended): default settings, file + SQLite at once, count in == count out.

    python benchmarks/bench_burst.py                 # both scenarios, each in a fresh process
    python benchmarks/bench_burst.py --scenario single --calls 100000

Scenarios (every setting at its default; the spool is a temporary directory):

single   100 000 root calls (one probe, 3 parameters) as fast as one thread makes them
threads  16 threads x 2 000 traces of 6 probes (a root and 5 children)

Printed: calls made, lines in the JSONL file, rows in SQLite's usage_logs (and distinct trace ids), drops
by reason, spooled counts, peak RSS (VmHWM) and RSS / queue depths sampled every second, time to produce
and time until every log was in both sinks, and the CPU of the application's threads vs the whole process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def vm(field: str) -> int:
    """A /proc/self/status field in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run_scenario(scenario: str, calls: int, threads: int, per_thread: int) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="otel-usage-burst-")
    os.environ.setdefault("OTEL_USAGE_SPOOL_DIR", os.path.join(work, "spool"))
    import otel_usage
    from otel_usage import traced_usage
    from otel_usage.exporters.file import FileUsageExporter
    from otel_usage.exporters.sql import SqlUsageExporter

    path, db = os.path.join(work, "usage.jsonl"), os.path.join(work, "usage.db")
    otel_usage.configure(exporters=[FileUsageExporter(path), SqlUsageExporter(f"sqlite:///{db}")])
    series: list[tuple[float, int, int, int, int]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            s = otel_usage.stats()
            series.append(
                (
                    round(time.monotonic() - started, 1),
                    vm("VmRSS") // 1024,
                    s.get("spans_queued", 0),
                    s.get("export_queue_file", 0),
                    s.get("export_queue_sql", 0),
                )
            )
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    @traced_usage(name="burst.leaf")
    def leaf(i: int, tag: str, ratio: float) -> int:
        return i

    @traced_usage(name="burst.root")
    def root(i: int, tag: str, ratio: float) -> int:
        return i

    @traced_usage(name="burst.root6")
    def root6(i: int, tag: str, ratio: float) -> int:
        for j in range(5):
            leaf(j, tag, ratio)
        return i

    caller_cpu = [0.0]
    lock = threading.Lock()
    process_before = time.process_time()
    t0 = time.perf_counter()
    if scenario == "single":
        cpu = time.thread_time()
        for i in range(calls):
            root(i, "burst", 0.5)
        caller_cpu[0] = time.thread_time() - cpu
        made = calls
    else:

        def produce(base: int) -> None:
            cpu = time.thread_time()
            for i in range(per_thread):
                root6(base + i, "threads", 0.5)
            with lock:
                caller_cpu[0] += time.thread_time() - cpu

        workers = [threading.Thread(target=produce, args=(n * per_thread,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        made = threads * per_thread
    produced = time.perf_counter() - t0
    flushed = otel_usage.force_flush(600_000)
    delivered = time.perf_counter() - t0
    process_cpu = time.process_time() - process_before
    stats = otel_usage.stats()
    otel_usage.shutdown(60_000)
    stop.set()
    sampler.join()
    peak = vm("VmHWM") // 1024  # before the check below reads every log back
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT trace_id) FROM usage_logs").fetchone()
    return {
        "scenario": scenario,
        "made": made,
        "file_lines": len(lines),
        "file_distinct": len({log["trace_id"] for log in lines}),
        "sqlite_rows": rows,
        "sqlite_distinct": distinct,
        "flushed": flushed,
        "dropped": stats["dropped"],
        "spooled": {k: v for k, v in stats.items() if k.startswith("spooled:")},
        "pauses": stats.get("backpressure_pauses", 0),
        "produce_s": round(produced, 2),
        "delivered_s": round(delivered, 2),
        "peak_rss_mb": peak,
        "caller_cpu_us_per_call": round(caller_cpu[0] / made * 1e6, 1),
        "process_cpu_us_per_call": round(process_cpu / made * 1e6, 1),
        "series (s, RSS MB, spans queued, file queue, sql queue)": series,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["single", "threads"])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--per-thread", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.calls, args.threads, args.per_thread)))
        return 0
    ok = True
    for scenario in ("single", "threads"):
        out = subprocess.run(
            [sys.executable, __file__, "--scenario", scenario, "--calls", str(args.calls), "--threads",
             str(args.threads), "--per-thread", str(args.per_thread)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        whole = result["made"] == result["file_lines"] == result["file_distinct"] == result["sqlite_rows"]
        whole = whole and result["sqlite_rows"] == result["sqlite_distinct"] and not result["dropped"]
        ok = ok and whole
        print(
            f"{scenario}: made {result['made']}, file {result['file_lines']} ({result['file_distinct']} distinct), "
            f"sqlite {result['sqlite_rows']} ({result['sqlite_distinct']} distinct), dropped {result['dropped']}, "
            f"spooled {result['spooled']}, backpressure pauses {result['pauses']}: {'PASS' if whole else 'FAIL'}"
        )
        print(
            f"  produced in {result['produce_s']} s, all in both sinks after {result['delivered_s']} s; "
            f"peak RSS {result['peak_rss_mb']} MB; CPU per call: application threads "
            f"{result['caller_cpu_us_per_call']} us, whole process {result['process_cpu_us_per_call']} us"
        )
        print("  " + json.dumps(result["series (s, RSS MB, spans queued, file queue, sql queue)"]))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
