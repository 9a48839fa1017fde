"""Bounded memory under work that never finishes: a root that never ends, children that never end.

Memory is measured with tracemalloc (what the pipeline keeps, independent of the allocator); every unit of
work is accounted for, recorded or counted by reason.
"""

from __future__ import annotations

import gc
import tracemalloc

from opentelemetry import trace

from otel_usage import _counters, traced_usage
from otel_usage.testing import capture_usage

CHILDREN = 100_000
ROOTS = 20_000


@traced_usage(name="mem.child")
def child(i: int) -> int:
    return i


def test_a_root_that_never_ends_keeps_memory_bounded_under_endless_children() -> None:
    """100 000 child probes under one open root: the buffer holds max_records_per_log records, no more;
    the rest are counted as records_per_log."""
    _counters.reset()
    grown: list[int] = []

    @traced_usage(name="mem.endless")
    def endless() -> None:
        for i in range(1000):
            child(i)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(CHILDREN):
            child(i)
        gc.collect()
        grown.append(tracemalloc.get_traced_memory()[0] - before)
        tracemalloc.stop()

    with capture_usage() as usage:  # max_records_per_log at its default, 1000
        endless()
        (log,) = usage.logs
    assert grown[0] < 256 * 1024, f"{grown[0]} bytes kept for spans that were not recorded"
    assert len(log["data"]) == 1000
    assert log["truncated"] == {"records": 1000 + CHILDREN - 999}
    assert _counters.stats()["dropped"]["records_per_log"] == 1000 + CHILDREN - 999


def test_roots_whose_children_never_finish_release_them_and_count_every_root() -> None:
    """20 000 roots each leaving a child span that never ends: after the grace period every log is emitted
    with its child unfinished and nothing stays buffered; roots beyond max_pending_logs are counted."""
    _counters.reset()
    tracers: list[trace.Tracer] = []

    @traced_usage(name="mem.root")
    def root(i: int) -> int:
        tracers[0].start_span("never.ends")  # started under the root, never ended, reference dropped
        return i

    with capture_usage(grace_millis=20) as usage:
        tracers.append(usage.tracer_provider.get_tracer("mem"))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(ROOTS):
            root(i)
        assert usage.flush(60_000)
        usage.exporter.clear()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        current = _counters.stats()
        assert current["spans_buffered"] == 0
        assert current["logs_pending"] == 0
    emitted = current["logs_emitted"]
    refused = current["dropped"].get("pending_logs_full", 0)
    assert emitted + refused == ROOTS, current  # every root: a log, or a counted refusal
    assert current["logs_with_unfinished_children"] == emitted
    assert kept < 2 * 1024 * 1024, f"{kept} bytes still held after every log was emitted"
