"""File exporter throughput against a hand-written json.dumps + file.write of the same logs.

    python benchmarks/bench_file_exporter.py            # full run (~30 s)
    python benchmarks/bench_file_exporter.py --quick    # fewer rounds

P5  FileUsageExporter.export (defaults: no rotation, fsync never; batches of 512 realistic usage logs of
    10 call records each, as log records from a real LoggerProvider) vs json.dumps(log, compact,
    ensure_ascii=False) + write of each log to a buffered text file, flushed after each batch.
    Reported: logs/s of each and the ratio exporter/baseline.                             target >= 0.8

Rounds alternate between the contenders (and which goes first) so that drift of the machine hits both
alike; files are emptied between rounds, outside the timing; each figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord

from otel_usage._schema import USAGE_LOG_EVENT
from otel_usage.exporters.file import FileUsageExporter

BATCH_SIZE = 512


def usage_log(i: int) -> dict[str, Any]:
    """A realistic usage log: request info and 10 call records with parameters."""
    records = []
    for depth, function in enumerate(["shop.views.checkout", "shop.cart.load", "shop.db.query", "shop.pricing.total"]):
        records.append(
            {
                "function": function,
                "tracker": function.rsplit(".", 1)[0],
                "depth": min(depth, 2),
                "level": "INFO",
                "start": 0.001 * depth,
                "duration": 0.0042,
                "params": {"cart_id": i, "items": [1, 2, 3], "coupon": None, "note": "café"},
                "exception": False,
            }
        )
    for k in range(6):
        records.append(
            {
                "function": f"shop.items.price_{k}",
                "tracker": "shop.items",
                "depth": 2,
                "level": "DEBUG",
                "start": 0.01 + k * 0.0005,
                "duration": 0.0002,
                "params": {"item_id": 1000 + k, "qty": k + 1, "currency": "EUR"},
                "exception": False,
                "discount": 0.1 * k,
            }
        )
    return {
        "user": f"user{i % 97}",
        "tenant": "acme",
        "request": {
            "method": "POST",
            "path": f"/cart/{i}/checkout",
            "status": 200,
            "remote_addr": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        },
        "data": records,
        "trace_id": f"{i + 1:032x}",
        "span_id": f"{i + 1:016x}",
        "parent_span_id": None,
        "service": "shop",
        "start": "2026-11-20T10:00:00.123456Z",
        "duration": 0.0231,
        "status": "ok",
        "schema": 1,
    }


class _Collect(LogRecordProcessor):
    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        lr = log_record
        self.records.append(ReadableLogRecord(lr.log_record, lr.resource, lr.instrumentation_scope, lr.limits))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_batches(n_logs: int) -> list[list[ReadableLogRecord]]:
    provider = LoggerProvider(shutdown_on_exit=False)
    collect = _Collect()
    provider.add_log_record_processor(collect)
    logger = provider.get_logger("bench")
    for i in range(n_logs):
        logger.emit(body=usage_log(i), event_name=USAGE_LOG_EVENT)
    records = collect.records
    return [records[i : i + BATCH_SIZE] for i in range(0, len(records), BATCH_SIZE)]


def run_exporter(path: str, batches: Sequence[Sequence[ReadableLogRecord]]) -> float:
    exporter = FileUsageExporter(path)
    start = time.perf_counter()
    for batch in batches:
        exporter.export(batch)
    elapsed = time.perf_counter() - start
    exporter.shutdown()
    return elapsed


def run_baseline(path: str, batches: Sequence[Sequence[ReadableLogRecord]]) -> float:
    logs = [[record.log_record.body for record in batch] for batch in batches]  # outside the timing
    with open(path, "a", encoding="utf-8") as f:
        start = time.perf_counter()
        for batch in logs:
            for log in batch:
                f.write(json.dumps(log, ensure_ascii=False, separators=(",", ":")) + "\n")
            f.flush()
        return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and logs")
    args = parser.parse_args(argv)
    rounds, n_logs = (5, 5_120) if args.quick else (15, 20_480)

    batches = make_batches(n_logs)
    contenders: dict[str, Callable[[str, Sequence[Sequence[ReadableLogRecord]]], float]] = {
        "FileUsageExporter.export": run_exporter,
        "json.dumps + file.write": run_baseline,
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, f"{i}.jsonl") for i, name in enumerate(contenders)}
        for name, run in contenders.items():  # warm-up, and check both write the same bytes
            run(paths[name], batches[:2])
        exporter_bytes, baseline_bytes = (Path(p).read_bytes() for p in paths.values())
        assert exporter_bytes == baseline_bytes, "the contenders must write the same lines"
        for r in range(rounds):
            order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            this_round: dict[str, float] = {}
            for name in order:
                open(paths[name], "w").close()
                gc.collect()
                elapsed = contenders[name](paths[name], batches)
                this_round[name] = n_logs / elapsed
                rates[name].append(this_round[name])
            ratios.append(this_round["FileUsageExporter.export"] / this_round["json.dumps + file.write"])
        size = os.path.getsize(paths["FileUsageExporter.export"]) / n_logs

    print(f"P5 file exporter: {n_logs} usage logs of 10 records (~{size:.0f} bytes/line), batches of {BATCH_SIZE},")
    print(f"   {rounds} interleaved rounds, median logs/s (python {sys.version.split()[0]})")
    print()
    print(f"{'contender':<28}{'logs/s':>12}")
    for name, values in rates.items():
        print(f"{name:<28}{statistics.median(values):>12,.0f}")
    ratio = statistics.median(ratios)
    print()
    print(
        f"ratio exporter/baseline (median of per-round ratios): {ratio:.2f}   target >= 0.8   "
        f"{'OK' if ratio >= 0.8 else 'MISSED'}"
    )
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
