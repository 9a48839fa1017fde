"""The two shortcuts of the hot path give what the SDK's path gives, and step aside when they must.

- A probe makes a ``UsageSpan`` (not an SDK span) when the usage span processor is the tracer's only one
  and the sampler is the default rule; the moment another span processor is added, probes make SDK spans
  again and that processor sees them.
- The assembler hands finished records straight to the delivery processors when they are the logger's
  only processors; with any other processor on the logger, every record goes through ``Logger.emit``.

Each shortcut is compared with the SDK's path on the same calls: the usage logs (ids aside) are equal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_usage import LevelSampler, add_data, add_info, traced_usage
from otel_usage._config import CoreSettings
from otel_usage._pipeline import UsagePipeline, apply_settings
from otel_usage._runtime import RUNTIME
from otel_usage._usage_span import UsageSpan

IDS = ("trace_id", "span_id", "parent_span_id", "start", "duration")


class Sink:
    """A discarding-but-keeping exporter: every record it was given."""

    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> None:
        self.records.extend(batch)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [r.log_record.body for r in self.records]  # type: ignore[misc]


@contextlib.contextmanager
def pipeline(sampler: Any = None) -> Iterator[tuple[UsagePipeline, Sink]]:
    core = CoreSettings.from_env()
    usage = UsagePipeline(
        TracerProvider(sampler=sampler or LevelSampler(), shutdown_on_exit=False),
        LoggerProvider(shutdown_on_exit=False),
        core,
        owns_providers=True,
    )
    sink = Sink()
    usage.add_exporter(sink)
    saved = RUNTIME.tracer_provider
    RUNTIME.tracer_provider = usage.tracer_provider
    RUNTIME.changed()
    apply_settings(core)
    try:
        yield usage, sink
    finally:
        RUNTIME.tracer_provider = saved
        RUNTIME.changed()
        usage.shutdown(10_000)


seen: list[trace.Span] = []


@traced_usage
def leaf(x: int) -> int:
    seen.append(trace.get_current_span())
    add_data("square", x * x)
    return x


@traced_usage
def root(x: int, fail: bool = False) -> int:
    seen.append(trace.get_current_span())
    add_info("user", "ann")
    leaf(x)
    tracer = RUNTIME.provider().get_tracer("other.lib")
    with tracer.start_as_current_span("sdk.child") as span:  # an instrumentation's span
        seen.append(span)
        leaf(x + 1)
    if fail:
        raise KeyError("missing")
    return x


def calls() -> None:
    root(1)
    with contextlib.suppress(KeyError):
        root(2, fail=True)


def without_ids(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for log in logs:
        log = {k: v for k, v in log.items() if k not in IDS}
        log["data"] = [{k: v for k, v in r.items() if k not in ("start", "duration")} for r in log["data"]]
        out.append(log)
    return out


def test_probe_spans_are_usage_spans_and_nest_with_sdk_spans() -> None:
    seen.clear()
    with pipeline() as (usage, sink):
        calls()
        usage.force_flush()
    kinds = [type(span).__name__ for span in seen]
    assert kinds[:4] == ["UsageSpan", "UsageSpan", "_Span", "UsageSpan"]
    outer, _, sdk_child, nested = seen[:4]
    ids = outer.get_span_context()
    # the SDK span started under a UsageSpan has its trace and parent; the probe under it, its trace
    assert sdk_child.get_span_context().trace_id == ids.trace_id
    assert sdk_child.parent is not None and sdk_child.parent.span_id == ids.span_id  # type: ignore[attr-defined]
    assert nested.get_span_context().trace_id == ids.trace_id
    assert ids.trace_flags.sampled and ids.is_valid and not ids.is_remote
    ok, failed = sink.logs
    assert [r["function"] for r in ok["data"]] == [
        "tests.test_fast_paths.root",
        "tests.test_fast_paths.leaf",
        "sdk.child",
        "tests.test_fast_paths.leaf",
    ]
    assert [r["depth"] for r in ok["data"]] == [0, 1, 1, 2]
    assert ok["trace_id"] == format(ids.trace_id, "032x")
    assert ok["span_id"] == format(ids.span_id, "016x")
    assert failed["status"] == "error" and failed["error"] == {"type": "KeyError", "message": "'missing'"}
    assert failed["data"][0]["exception"] is True


def test_usage_spans_give_the_logs_sdk_spans_give() -> None:
    """The same calls with an extra span processor (SDK spans): equal usage logs, and the processor saw
    the probes' spans."""
    with pipeline() as (usage, sink):
        calls()
        usage.force_flush()
        fast_logs = sink.logs
    seen.clear()
    spans = InMemorySpanExporter()
    with pipeline() as (usage, sink):
        usage.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        calls()
        usage.force_flush()
        sdk_logs = sink.logs
    assert all(type(span).__name__ == "_Span" for span in seen)
    assert without_ids(fast_logs) == without_ids(sdk_logs)
    names = [span.name for span in spans.get_finished_spans()]
    assert names.count("tests.test_fast_paths.root") == 2 and names.count("tests.test_fast_paths.leaf") == 4


def test_a_span_processor_added_later_sees_the_next_probe_at_once() -> None:
    spans = InMemorySpanExporter()
    with pipeline() as (usage, sink):
        seen.clear()
        leaf(1)
        usage.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        leaf(2)
        usage.force_flush()
        assert [type(span).__name__ for span in seen] == ["UsageSpan", "_Span"]
        assert [span.name for span in spans.get_finished_spans()] == ["tests.test_fast_paths.leaf"]
        assert [log["data"][0]["params"] for log in sink.logs] == [{"x": 1}, {"x": 2}]


@pytest.mark.parametrize("sampled", [True, False])
def test_a_remote_parent_gives_its_trace_flags_and_state(sampled: bool) -> None:
    """As the SDK with the default rule: the parent's trace, sampled flag and trace state carry over, and an
    unsampled parent is still recorded (RECORD_ONLY)."""
    state = trace.TraceState([("vendor", "v1")])
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=flags, trace_state=state)
    with pipeline() as (usage, sink):
        seen.clear()
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        try:
            leaf(3)
        finally:
            context.detach(token)
        usage.force_flush()
        (span,) = seen
        assert isinstance(span, UsageSpan)
        got = span.get_span_context()
        assert (got.trace_id, got.trace_flags.sampled, got.trace_state) == (0xABC, sampled, state)
        (log,) = sink.logs
        assert log["parent_span_id"] == format(0xDEF, "016x") and log["trace_id"] == format(0xABC, "032x")


def test_a_sampler_that_drops_unsampled_parents_is_obeyed() -> None:
    parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    with pipeline(LevelSampler(record_unsampled=False)) as (usage, sink):
        seen.clear()
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        try:
            leaf(4)
        finally:
            context.detach(token)
        leaf(5)
        usage.force_flush()
        assert not seen[0].is_recording() and isinstance(seen[1], UsageSpan)
        assert [log["data"][0]["params"] for log in sink.logs] == [{"x": 5}]


def test_records_handed_over_directly_equal_those_of_logger_emit() -> None:
    """With a second, non-delivery processor on the logger, records go through Logger.emit: both sinks
    get them, and they equal the directly handed ones field by field."""
    with pipeline() as (usage, sink):
        calls()
        usage.force_flush()
        direct = sink.records
        assert usage.emitter._direct is not None  # handed over directly
    memory = InMemoryLogRecordExporter()
    with pipeline() as (usage, sink):
        usage.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
        calls()
        usage.force_flush()
        through = sink.records
        assert usage.emitter._direct is None  # through Logger.emit
    assert len(direct) == len(through) == len(memory.get_finished_logs()) == 2
    for a, b in zip(direct, through, strict=True):
        assert type(a) is type(b) and type(a.log_record) is type(b.log_record)
        fields_a, fields_b = dict(vars(a.log_record)), dict(vars(b.log_record))
        assert sorted(fields_a) == sorted(fields_b)
        for key in ("severity_text", "severity_number", "event_name", "trace_flags", "exception", "context"):
            assert fields_a[key] == fields_b[key], key
        assert dict(fields_a["attributes"]) == dict(fields_b["attributes"]) == {}
        assert (a.log_record.trace_id, a.log_record.span_id) != (0, 0)
        assert (a.resource, a.instrumentation_scope) == (b.resource, b.instrumentation_scope)
        assert vars(a.limits) == vars(b.limits)
        assert a.log_record.timestamp == int(a.log_record.timestamp)  # type: ignore[arg-type]
    assert without_ids([r.log_record.body for r in direct]) == without_ids([r.log_record.body for r in through])  # type: ignore[misc]
