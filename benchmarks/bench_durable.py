"""What durable delivery (OTEL_USAGE_DURABILITY=disk) costs per usage log, against the default in one run.

    python benchmarks/bench_durable.py            # 11 rounds of 5000 probed root calls per contender
    python benchmarks/bench_durable.py --quick

Two pipelines in one process, each with a JSON Lines file sink: ``memory`` (the default) and ``disk``
(every log written to the spool within 50 ms and exported from there). Rounds alternate; per call the
caller's wall time and the whole process's CPU (``process_time``, including the flush that waits until
the round's logs are in the file) are compared. Both files are checked to hold every log.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("OTEL_USAGE_SPOOL_DIR", tempfile.mkdtemp(prefix="otel-usage-bench-spool-"))

from bench_core import per_call_three_ways
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

import otel_usage
from otel_usage import environment_variables as ev
from otel_usage import traced_usage
from otel_usage._config import CoreSettings
from otel_usage._pipeline import UsagePipeline, apply_settings
from otel_usage._runtime import RUNTIME
from otel_usage._sampling import LevelSampler
from otel_usage.exporters._delivery import UsageBatchProcessor
from otel_usage.exporters.file import FileUsageExporter


def pipeline_with(mode: str, path: str) -> UsagePipeline:
    os.environ[ev.OTEL_USAGE_DURABILITY] = mode  # read when the span processor and delivery are built
    try:
        core = CoreSettings.from_env()
        pipeline = UsagePipeline(
            TracerProvider(sampler=LevelSampler(), shutdown_on_exit=False),
            LoggerProvider(shutdown_on_exit=False),
            core,
            owns_providers=True,
        )
        sink = FileUsageExporter(path)
        pipeline.add_exporter(sink, UsageBatchProcessor(sink, name=f"file_{mode}"))
        apply_settings(core)
        return pipeline
    finally:
        del os.environ[ev.OTEL_USAGE_DURABILITY]


def lines(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds, n = (5, 2000) if args.quick else (11, 5000)
    work = tempfile.mkdtemp(prefix="otel-usage-durable-")

    @traced_usage(name="bench.f")
    def f(item_id: int, name: str, price: float) -> int:
        return item_id

    pipelines = {mode: pipeline_with(mode, os.path.join(work, f"{mode}.jsonl")) for mode in ("memory", "disk")}
    samples: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in pipelines}
    for _ in range(rounds):
        for mode, pipeline in pipelines.items():
            RUNTIME.tracer_provider = pipeline.tracer_provider
            RUNTIME.changed()
            samples[mode].append(per_call_three_ways(lambda: f(1, "hat", 2.5), n, pipeline.force_flush))
    stats = otel_usage.stats()
    for pipeline in pipelines.values():
        pipeline.shutdown()
    med: dict[str, Any] = {m: [statistics.median(s[i] for s in v) for i in range(3)] for m, v in samples.items()}
    counts = {mode: lines(os.path.join(work, f"{mode}.jsonl")) for mode in pipelines}
    print(f"durable delivery, {rounds} rounds of {n} calls, file sink; medians per call")
    for i, what in ((0, "caller wall time"), (2, "whole-process CPU")):
        extra = (med["disk"][i] - med["memory"][i]) / 1000
        print(
            f"  {what}: memory {med['memory'][i] / 1000:.2f} us, disk {med['disk'][i] / 1000:.2f} us: "
            f"+{extra:.2f} us per log, ratio {med['disk'][i] / med['memory'][i]:.2f}"
        )
    print(
        f"  logs in the files: {counts} (expected {rounds * n} each); persisted to the spool: "
        f"{stats.get('persisted:file_disk', 0)}; dropped {stats['dropped']}"
    )
    return 0 if all(c == rounds * n for c in counts.values()) and not stats["dropped"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
