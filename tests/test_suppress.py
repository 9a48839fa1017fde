"""The one suppression of instrumentation otel_usage uses around its own work."""

from __future__ import annotations

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_usage._suppress import is_suppressed, suppressed


def test_suppressed_is_seen_by_is_suppressed_and_by_opentelemetry() -> None:
    assert not is_suppressed()
    assert is_instrumentation_enabled()
    with suppressed():
        assert is_suppressed()
        assert not is_instrumentation_enabled()
    assert not is_suppressed()
    assert is_instrumentation_enabled()
