"""LevelSampler: the level rule for spans, composable, attributes passed through, RECORD_ONLY kept."""

from __future__ import annotations

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_usage import DEBUG, DEFAULT, INFO, LevelSampler, get_level, set_level, traced_usage
from otel_usage._runtime import HIDDEN, LEVEL_ATTR
from otel_usage._sampling import usage_level_sampler
from otel_usage.testing import capture_usage


def decide(sampler, attributes=None, parent=None):
    return sampler.should_sample(parent, 0x1234, "span", attributes=attributes)


@pytest.mark.parametrize(
    ("level", "threshold", "decision"),
    [
        ("DEBUG", INFO, Decision.DROP),
        ("INFO", INFO, Decision.RECORD_AND_SAMPLE),
        ("DEFAULT", INFO, Decision.RECORD_AND_SAMPLE),
        ("INFO", DEFAULT, Decision.DROP),
    ],
)
def test_level_rule(level, threshold, decision):
    """Spans carrying a level below the threshold are dropped; the rest are sampled."""
    sampler = LevelSampler(threshold=threshold)
    assert decide(sampler, {LEVEL_ATTR: level}).decision is decision


def test_start_attributes_always_pass_through():
    """The start attributes are returned with every non-drop decision."""
    attrs = {LEVEL_ATTR: "INFO", "user": "alice"}
    result = decide(LevelSampler(ALWAYS_OFF, threshold=DEBUG), attrs)
    assert result.decision is Decision.RECORD_ONLY
    assert dict(result.attributes) == attrs


def test_ratio_sampled_out_spans_stay_recorded_by_default():
    """What the delegate drops is RECORD_ONLY by default, DROP when asked."""
    assert decide(LevelSampler(ALWAYS_OFF)).decision is Decision.RECORD_ONLY
    assert decide(LevelSampler(ALWAYS_OFF, record_unsampled=False)).decision is Decision.DROP


def test_unsampled_remote_parent_keeps_recording():
    """An upstream parent with the sampled flag off no longer silences usage logs."""
    parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0))))
    assert decide(LevelSampler(), parent=parent).decision is Decision.RECORD_ONLY


def test_hidden_subtree_is_dropped():
    """Inside a filtered probe, every span is dropped by the sampler."""
    token = HIDDEN.set(True)
    try:
        assert decide(LevelSampler()).decision is Decision.DROP
    finally:
        HIDDEN.reset(token)


def test_composes_with_ratio_sampler_and_usage_logs_stay_complete():
    """With trace export ratio-sampled to zero, usage logs are complete and no span is exported."""
    with capture_usage(sampler=ParentBased(TraceIdRatioBased(0.0))) as usage:
        exported = InMemorySpanExporter()
        usage.tracer_provider.add_span_processor(SimpleSpanProcessor(exported))

        @traced_usage
        def child():
            return 1

        @traced_usage
        def root():
            return child()

        for _ in range(5):
            root()
    assert len(usage.logs) == 5
    assert all(len(log["data"]) == 2 for log in usage.logs)
    assert exported.get_finished_spans() == ()


def test_probe_spans_exported_with_level_attribute():
    """Recorded probe spans reach trace exporters with their level attribute."""
    with capture_usage(level=DEBUG) as usage:
        exported = InMemorySpanExporter()
        usage.tracer_provider.add_span_processor(SimpleSpanProcessor(exported))

        @traced_usage(level=INFO)
        def f():
            return 1

        f()
    (span,) = exported.get_finished_spans()
    assert span.attributes[LEVEL_ATTR] == "INFO"


def test_sampler_on_a_plain_provider_hides_other_spans_in_filtered_probe():
    """On any provider, the sampler drops spans started inside a filtered probe."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=LevelSampler())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    token = HIDDEN.set(True)
    try:
        with tracer.start_as_current_span("hidden"):
            pass
    finally:
        HIDDEN.reset(token)
    with tracer.start_as_current_span("shown"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["shown"]
    assert context.get_current() is not None


@pytest.mark.parametrize(("arg", "expected"), [(None, "DEFAULT"), ("info", "INFO"), (" DEBUG ", "DEBUG")])
def test_usage_level_factory(arg, expected, monkeypatch):
    """OTEL_TRACES_SAMPLER=usage_level: the argument becomes the process threshold, which the sampler follows."""
    monkeypatch.setenv("OTEL_USAGE_LEVEL", "")
    saved = get_level()
    try:
        set_level(DEFAULT)
        assert "threshold=current" in usage_level_sampler(arg).get_description()
        assert get_level().name == expected
    finally:
        set_level(saved)
