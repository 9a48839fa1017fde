"""Core benchmarks: what a probe costs the application, against baselines measured in the same run.

    python benchmarks/bench_core.py            # full run (~1 minute)
    python benchmarks/bench_core.py --quick    # fewer rounds

P1  recorded probe with 3 captured params vs an OTel SDK span with 3 attributes made current, with a
    BatchSpanProcessor to a discarding exporter, three ways per call: the caller's wall time, the
    caller thread's CPU, and the whole process's CPU (caller + assembler + export workers: the
    ``process_time`` delta of a round including the flush that waits until everything of the round
    was assembled and exported, vs the baseline's including its BatchSpanProcessor's export).
                                                                                        target <= 1.0
P2  filtered probe (hiding its subtree) vs a pass-through wrapt decorator, overhead
    above the bare call.                                                                target <= 0.5
P3  8 threads producing traces of 10 probes: drops at default limits (target 0), and
    assembler CPU per trace vs caller CPU per trace.                                    target <= 0.5
P6  bytes retained per buffered span (tracemalloc).                                     target <= 1536

Rounds alternate between the contenders so that drift of the machine hits both alike; each
figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OTEL_USAGE_SPOOL_DIR", tempfile.mkdtemp(prefix="otel-usage-bench-spool-"))

import wrapt
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import otel_usage
from otel_usage import DEBUG, DEFAULT, traced_usage
from otel_usage._config import CoreSettings
from otel_usage._pipeline import UsagePipeline, apply_settings, log_processor_for
from otel_usage._runtime import RUNTIME
from otel_usage._sampling import LevelSampler


class DiscardSpans(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class DiscardLogs(LogRecordExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def usage_pipeline(**settings: Any) -> tuple[UsagePipeline, DiscardLogs]:
    core = CoreSettings.from_env(**settings)
    pipeline = UsagePipeline(
        TracerProvider(sampler=LevelSampler(), shutdown_on_exit=False),
        LoggerProvider(shutdown_on_exit=False),
        core,
        owns_providers=True,
    )
    sink = DiscardLogs()
    pipeline.add_exporter(sink, log_processor_for(sink))
    RUNTIME.tracer_provider = pipeline.tracer_provider
    RUNTIME.changed()
    apply_settings(core)
    return pipeline, sink


def per_call_cpu_ns(fn: Callable[[], Any], n: int) -> float:
    start = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - start) / n


def interleaved(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, measure in contenders.items():
            samples[name].append(measure())
    return {name: statistics.median(values) for name, values in samples.items()}


def target(a: float, b: float) -> float:
    return a / b if b else float("inf")


# --- P1 -----------------------------------------------------------------------------------------


def per_call_three_ways(fn: Callable[[], Any], n: int, flush: Callable[[], Any]) -> tuple[float, float, float]:
    """(caller wall ns, caller-thread CPU ns, whole-process CPU ns) per call; the flush is part of the
    whole-process figure (it waits until the round's work is done on every thread)."""
    wall, cpu, process = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
    for _ in range(n):
        fn()
    wall, cpu = time.perf_counter_ns() - wall, time.thread_time_ns() - cpu
    flush()
    process = time.process_time_ns() - process
    return wall / n, cpu / n, process / n


def bench_p1(rounds: int, n: int) -> dict[str, tuple[float, float, float]]:
    def f(item_id: int, name: str, price: float) -> int:
        return item_id

    probe = traced_usage(name="bench.f")(f)
    pipeline, sink = usage_pipeline()

    base_provider = TracerProvider(shutdown_on_exit=False)
    base_processor = BatchSpanProcessor(DiscardSpans())
    base_provider.add_span_processor(base_processor)
    tracer = base_provider.get_tracer("bench")

    def baseline() -> int:
        with tracer.start_as_current_span("bench.f", attributes={"item_id": 1, "name": "hat", "price": 2.5}):
            return f(1, "hat", 2.5)

    samples: dict[str, list[tuple[float, float, float]]] = {"probe": [], "sdk_span": []}
    for _ in range(rounds):
        before = sink.count
        samples["probe"].append(per_call_three_ways(lambda: probe(1, "hat", 2.5), n, pipeline.force_flush))
        assert sink.count - before == n, "a round's usage logs were not all exported by its flush"
        samples["sdk_span"].append(per_call_three_ways(baseline, n, base_provider.force_flush))
    pipeline.shutdown()
    base_provider.shutdown()
    return {
        name: tuple(statistics.median(v[i] for v in values) for i in range(3))  # type: ignore[misc]
        for name, values in samples.items()
    }


# --- P2 -----------------------------------------------------------------------------------------


def bench_p2(rounds: int, n: int) -> dict[str, float]:
    def f(a: int, b: int, c: int) -> int:
        return a

    @wrapt.decorator
    def passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    wrapped = passthrough(f)
    filtered = traced_usage(level=DEBUG)(f)
    pipeline, _ = usage_pipeline(level=DEFAULT)
    result = interleaved(
        {
            "bare": lambda: per_call_cpu_ns(lambda: f(1, 2, 3), n),
            "filtered_probe": lambda: per_call_cpu_ns(lambda: filtered(1, 2, 3), n),
            "wrapt_passthrough": lambda: per_call_cpu_ns(lambda: wrapped(1, 2, 3), n),
        },
        rounds,
    )
    pipeline.shutdown()
    return result


# --- P3 -----------------------------------------------------------------------------------------


def thread_cpu_ns(thread: threading.Thread | None) -> int:
    if thread is None or thread.ident is None or not thread.is_alive():
        return 0
    return time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))


def bench_p3(traces_per_thread: int, threads: int = 8) -> dict[str, float]:
    @traced_usage(name="bench.leaf")
    def leaf(i: int, tag: str, ratio: float) -> int:
        return i

    @traced_usage(name="bench.root")
    def root(i: int, tag: str, ratio: float) -> int:
        return sum(leaf(j, tag, ratio) for j in range(9))

    otel_usage._counters.reset()
    pipeline, sink = usage_pipeline()
    root(0, "warm", 0.5)
    pipeline.force_flush()
    assembler = pipeline.span_processor._worker
    assembler_before = thread_cpu_ns(assembler)
    caller_cpu: list[int] = []
    lock = threading.Lock()

    def produce() -> None:
        start = time.thread_time_ns()
        for i in range(traces_per_thread):
            root(i, "x", 0.5)
        with lock:
            caller_cpu.append(time.thread_time_ns() - start)

    workers = [threading.Thread(target=produce) for _ in range(threads)]
    wall = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    pipeline.span_processor.force_flush()
    wall = time.perf_counter() - wall
    assembler_cpu = thread_cpu_ns(assembler) - assembler_before
    pipeline.force_flush()
    stats = otel_usage.stats()
    traces = threads * traces_per_thread
    pipeline.shutdown()
    return {
        "traces": traces,
        "delivered": sink.count - 1,
        "dropped": stats["dropped_total"],
        "caller_cpu_per_trace_us": sum(caller_cpu) / traces / 1000,
        "assembler_cpu_per_trace_us": assembler_cpu / traces / 1000,
        "traces_per_s": traces / wall,
    }


# --- P6 -----------------------------------------------------------------------------------------


def bench_p6(spans: int) -> dict[str, float]:
    @traced_usage(name="bench.child")
    def child(item_id: int, name: str, price: float) -> int:
        return item_id

    measured: dict[str, float] = {}

    @traced_usage(name="bench.holder")
    def holder() -> None:
        for i in range(200):
            child(i, "warm", 1.0)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for i in range(spans):
            child(i, f"item-{i % 10}", 2.5)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        measured["bytes_per_span"] = growth / spans

    pipeline, _ = usage_pipeline(max_records_per_log=spans + 1000)
    holder()
    pipeline.shutdown()
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds, n = (5, 2000) if args.quick else (15, 5000)

    print(f"python {sys.version.split()[0]}, otel_usage {otel_usage.__version__}; medians of {rounds} rounds")
    p1 = bench_p1(rounds, n)
    for i, what in enumerate(("caller wall time", "caller-thread CPU", "whole-process CPU")):
        r1 = target(p1["probe"][i], p1["sdk_span"][i])
        print(
            f"P1 {what}/call: recorded probe {p1['probe'][i] / 1000:.2f} us vs SDK span+BSP "
            f"{p1['sdk_span'][i] / 1000:.2f} us: ratio {r1:.2f} (target <= 1.0) {'PASS' if r1 <= 1.0 else 'FAIL'}"
        )

    p2 = bench_p2(rounds, n * 10)
    over_probe = p2["filtered_probe"] - p2["bare"]
    over_wrapt = p2["wrapt_passthrough"] - p2["bare"]
    r2 = target(over_probe, over_wrapt)
    print(
        f"P2 filtered probe +{over_probe:.0f} ns vs wrapt pass-through +{over_wrapt:.0f} ns over a bare call "
        f"({p2['bare']:.0f} ns): ratio {r2:.2f} (target <= 0.5) {'PASS' if r2 <= 0.5 else 'FAIL'}; "
        f"whole-call ratio {target(p2['filtered_probe'], p2['wrapt_passthrough']):.2f}"
    )

    p3 = bench_p3(250 if args.quick else 1000)
    r3 = target(p3["assembler_cpu_per_trace_us"], p3["caller_cpu_per_trace_us"])
    ok3 = p3["dropped"] == 0 and r3 <= 0.5 and p3["delivered"] == p3["traces"]
    print(
        f"P3 {p3['traces']:.0f} traces of 10 probes from 8 threads: delivered {p3['delivered']:.0f}, "
        f"dropped {p3['dropped']:.0f}; caller CPU {p3['caller_cpu_per_trace_us']:.1f} us/trace, assembler CPU "
        f"{p3['assembler_cpu_per_trace_us']:.1f} us/trace: ratio {r3:.2f} (target <= 0.5) "
        f"{'PASS' if ok3 else 'FAIL'}; {p3['traces_per_s']:.0f} traces/s"
    )

    p6 = bench_p6(2000 if args.quick else 10000)
    b6 = p6["bytes_per_span"]
    print(f"P6 bytes retained per buffered span: {b6:.0f} (target <= 1536) {'PASS' if b6 <= 1536 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
