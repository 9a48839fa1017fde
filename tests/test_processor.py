"""The span processor: local roots, late children, limits and drop counters, other instrumentations."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time

from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import otel_usage
from otel_usage import add_data, traced_usage
from otel_usage.testing import capture_usage


def names(log):
    return [r["function"].rsplit(".", 1)[-1] for r in log["data"]]


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@traced_usage
def child(n):
    return n


def test_late_child_from_asyncio_task_is_waited_for():
    """An asyncio task that outlives its root is still in the root's log (within the grace period)."""
    release = None

    @traced_usage
    async def background():
        await release.wait()
        return child(1)

    @traced_usage
    async def handler():
        return asyncio.get_running_loop().create_task(background())

    async def main():
        nonlocal release
        release = asyncio.Event()
        task = await handler()
        await asyncio.sleep(0.05)
        release.set()
        await task

    with capture_usage(grace_millis=5000) as usage:
        asyncio.run(main())
    (log,) = usage.logs
    assert names(log) == ["handler", "background", "child"]
    assert all(r["duration"] is not None for r in log["data"])


def test_late_child_from_thread_pool():
    """Pool work submitted with the context nests under the root even when it ends after it."""
    pool = concurrent.futures.ThreadPoolExecutor(2)
    gate = threading.Event()

    @traced_usage
    def job():
        gate.wait(5)
        return child(2)

    @traced_usage
    def submit():
        ctx = contextvars.copy_context()
        return pool.submit(ctx.run, job)

    with capture_usage(grace_millis=5000) as usage:
        future = submit()
        gate.set()
        assert future.result() == 2
    pool.shutdown()
    (log,) = usage.logs
    assert names(log) == ["submit", "job", "child"]
    assert [r["depth"] for r in log["data"]] == [0, 1, 2]


def test_child_past_grace_is_marked_unfinished_and_counted_late():
    """A child still running after the grace period is in the log as unfinished; its end is late."""
    gate = threading.Event()
    otel_usage._counters.reset()

    @traced_usage
    def slow():
        gate.wait(5)

    @traced_usage
    def root():
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(slow,))
        t.start()
        return t

    with capture_usage(grace_millis=50) as usage:
        t = root()
        logs = usage.logs  # flushing waits out the 50 ms grace, not the child
        gate.set()
        t.join()
        usage.flush()
    (log,) = logs
    assert names(log) == ["root", "slow"]
    assert log["data"][1]["unfinished"] is True and log["data"][1]["duration"] is None
    assert otel_usage.stats()["dropped"].get("late_span") == 1


def test_two_concurrent_local_roots_of_one_trace():
    """Two inbound calls of the same upstream trace give two logs sharing the trace id."""
    upstream = SpanContext(trace_id=0xABC, span_id=0x1, is_remote=True, trace_flags=TraceFlags(1))
    barrier = threading.Barrier(2)

    @traced_usage
    def handle(n):
        barrier.wait(5)
        return child(n)

    def serve(n):
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(upstream)))
        try:
            handle(n)
        finally:
            context.detach(token)

    with capture_usage() as usage:
        threads = [threading.Thread(target=serve, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    logs = usage.logs
    assert len(logs) == 2
    assert {log["trace_id"] for log in logs} == {format(0xABC, "032x")}
    assert {log["parent_span_id"] for log in logs} == {format(1, "016x")}
    assert sorted(log["data"][1]["params"]["n"] for log in logs) == [1, 2]
    for log in logs:
        assert log["data"][0]["params"]["n"] == log["data"][1]["params"]["n"]


def test_unsampled_upstream_still_recorded():
    """An upstream traceparent with the sampled flag off does not suppress usage logs."""
    upstream = SpanContext(trace_id=0xABD, span_id=0x2, is_remote=True, trace_flags=TraceFlags(0))
    with capture_usage() as usage:
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(upstream)))
        try:
            child(1)
        finally:
            context.detach(token)
    assert len(usage.logs) == 1


def test_other_instrumentation_spans_are_records():
    """Spans of other instrumentations become records with their attributes."""
    with capture_usage() as usage:
        tracer = usage.tracer_provider.get_tracer("http.client")
        with tracer.start_as_current_span("GET /api", attributes={"http.status_code": 200, "tags": ("a", "b")}):
            child(3)
    (log,) = usage.logs
    root, rec = log["data"]
    assert root["function"] == "GET /api"
    assert root["tracker"] == "http.client"
    assert root["level"] is None
    assert root["attributes"] == {"http.status_code": 200, "tags": ["a", "b"]}
    assert rec["depth"] == 1


def test_records_per_log_limit_truncates_and_counts():
    """Spans beyond the per-log limit are left out, reported in `truncated` and counted."""
    otel_usage._counters.reset()

    @traced_usage
    def many():
        for i in range(10):
            child(i)

    with capture_usage(max_records_per_log=4) as usage:
        many()
    (log,) = usage.logs
    assert len(log["data"]) == 4
    assert log["truncated"] == {"records": 7}
    assert otel_usage.stats()["dropped"]["records_per_log"] == 7


def test_pending_logs_limit_drops_and_counts():
    """New units of work beyond the pending limit are not recorded and are counted."""
    otel_usage._counters.reset()
    gate = threading.Event()
    started = threading.Semaphore(0)

    @traced_usage
    def hold():
        started.release()
        gate.wait(5)

    with capture_usage(max_pending_logs=2) as usage:
        threads = [threading.Thread(target=hold) for _ in range(2)]
        for t in threads:
            t.start()
        for _ in threads:
            assert started.acquire(timeout=5)
        child(1)
        child(2)
        gate.set()
        for t in threads:
            t.join()
        logs = usage.logs
    assert len(logs) == 2
    assert otel_usage.stats()["dropped"]["pending_logs_full"] == 2


def test_open_root_past_max_age_emitted_unfinished():
    """A unit of work open longer than the age limit is emitted as unfinished and counted."""
    otel_usage._counters.reset()
    gate = threading.Event()

    @traced_usage
    def forever():
        child(1)
        gate.wait(5)

    with capture_usage(max_log_age_millis=50, schedule_delay_millis=10) as usage:
        t = threading.Thread(target=forever)
        t.start()
        assert wait_for(lambda: len(usage.exporter.get_logs()) == 1, 5)
        gate.set()
        t.join()
        logs = usage.logs
    (log,) = logs
    assert log["status"] == "unfinished"
    assert log["duration"] is None
    assert names(log) == ["forever", "child"]
    dropped = otel_usage.stats()["dropped"]
    assert dropped["log_age"] == 1
    assert dropped["late_span"] == 1


def test_root_ending_while_its_unfinished_log_is_being_emitted_is_late():
    """A root taken for emission as unfinished (age limit, shutdown) that ends before the log is out is a
    late span, not an internal error, and its log is emitted once."""
    otel_usage._counters.reset()
    with capture_usage() as usage:
        processor = usage.pipeline.span_processor
        span = usage.tracer_provider.get_tracer("t").start_span("job")
        taken = processor._collect(final=True)  # the worker's step, frozen between collect and emit
        assert len(taken) == 1
        span.end()
        processor._emit(taken[0])
        usage.flush()
        (log,) = usage.logs
    assert log["span_id"] == format(span.get_span_context().span_id, "016x")
    stats = otel_usage.stats()
    assert stats.get("internal_errors", 0) == 0
    assert stats["dropped"].get("late_span") == 1


def test_stats_counts_emitted_logs():
    """stats() counts emitted logs and reports nothing buffered when idle."""
    otel_usage._counters.reset()
    with capture_usage() as usage:
        child(1)
        child(2)
        usage.flush()
        snapshot = otel_usage.stats()
    assert snapshot["logs_emitted"] == 2
    assert snapshot["spans_buffered"] == 0
    assert snapshot["logs_pending"] == 0
    assert snapshot["dropped_total"] == 0


def test_inbound_baggage_only_allow_listed_keys():
    """Baggage from another process becomes info only for allow-listed keys, decoded."""
    upstream = SpanContext(trace_id=0xABE, span_id=0x3, is_remote=True, trace_flags=TraceFlags(1))
    ctx = trace.set_span_in_context(NonRecordingSpan(upstream))
    ctx = baggage.set_baggage("tenant", "acme", ctx)
    ctx = baggage.set_baggage("role", "admin", ctx)
    ctx = baggage.set_baggage("quota", 'j:{"max":3}', ctx)
    with capture_usage(baggage_allow=("tenant", "quota")) as usage:
        token = context.attach(ctx)
        try:
            child(1)
        finally:
            context.detach(token)
    (log,) = usage.logs
    assert log["tenant"] == "acme"
    assert log["quota"] == {"max": 3}
    assert "role" not in log


def test_processor_never_raises_into_the_application(monkeypatch):
    """An internal failure in the span processor is logged, and the call's result is intact."""
    from otel_usage import _errors
    from otel_usage._processor import UsageSpanProcessor

    monkeypatch.setattr(_errors, "RAISE", False)

    def broken(self, *args):
        raise RuntimeError("processor bug")

    for method in ("_open", "_close"):  # what every span's start and end go through (SDK or usage span)
        with monkeypatch.context() as patch:
            patch.setattr(UsageSpanProcessor, method, broken)
            otel_usage._counters.reset()
            with capture_usage():
                assert child(5) == 5
            assert otel_usage.stats()["internal_errors"] >= 1, method


def test_data_outside_a_unit_of_work_is_dropped_not_raised():
    """add_data outside any recorded call is dropped and counted, never raised."""
    otel_usage._counters.reset()
    add_data("k", 1)
    add_data("k", 2)
    assert otel_usage.stats()["dropped"]["data_outside_unit_of_work"] == 2
