"""Helpers for testing code that records usage: capture the usage logs it produces.

    from otel_usage.testing import capture_usage

    def test_checkout():
        with capture_usage() as usage:
            checkout(cart)
        assert usage.logs[0]["data"][0]["function"] == "shop.checkout"

``capture_usage`` builds a private pipeline (its own tracer provider, span processor, logger provider
and in-memory exporter) that probes use while the block runs; OpenTelemetry's global providers are
not touched. ``usage.logs`` flushes first, so it returns every finished log. The pytest fixture
``usage_capture`` (registered by the package's pytest plugin entry point) yields the same object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

from otel_usage import _params, _transaction
from otel_usage._chain import UsageProcessor
from otel_usage._config import CoreSettings
from otel_usage._levels import THRESHOLD
from otel_usage._pipeline import UsagePipeline, apply_settings
from otel_usage._runtime import RUNTIME
from otel_usage._sampling import LevelSampler
from otel_usage.exporters.memory import InMemoryUsageExporter

__all__ = ["CapturedUsage", "capture_usage", "usage_capture"]


class CapturedUsage:
    """The private pipeline of a capture and what it received."""

    def __init__(self, pipeline: UsagePipeline, exporter: InMemoryUsageExporter) -> None:
        self.pipeline = pipeline
        self.exporter = exporter

    @property
    def tracer_provider(self) -> TracerProvider:
        return self.pipeline.tracer_provider

    @property
    def logs(self) -> list[dict[str, Any]]:
        """Every finished usage log so far, oldest first (flushes first)."""
        self.flush()
        return self.exporter.get_logs()

    def flush(self, timeout_millis: int = 10000) -> bool:
        return self.pipeline.force_flush(timeout_millis)

    def clear(self) -> None:
        self.flush()
        self.exporter.clear()


@contextlib.contextmanager
def capture_usage(
    *,
    processors: Iterable[UsageProcessor] = (),
    sampler: Sampler | None = None,
    service_name: str = "test",
    **settings: Any,
) -> Iterator[CapturedUsage]:
    """Capture the usage logs produced inside the block (see the module docstring).

    Args:
        processors: usage processors for the private pipeline.
        sampler: its sampler (wrapped in :class:`~otel_usage.LevelSampler`); default the level rule.
        service_name: its ``service.name``.
        **settings: core settings (``level``, limits, ...); unset ones come from the environment.
    """
    core = CoreSettings.from_env(**settings)
    if sampler is None or not isinstance(sampler, LevelSampler):
        sampler = LevelSampler(sampler, record_unsampled=core.record_unsampled)
    resource = Resource.create({"service.name": service_name})
    tracer_provider = TracerProvider(sampler=sampler, resource=resource, shutdown_on_exit=False)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    exporter = InMemoryUsageExporter()
    pipeline = UsagePipeline(tracer_provider, logger_provider, core, list(processors), owns_providers=True)
    pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))
    saved = (RUNTIME.tracer_provider, RUNTIME.disabled, THRESHOLD.value)
    saved_policy = _params.get_policy()
    saved_lines = (_transaction.VERBOSITY.value, _transaction._bridge is not None)
    RUNTIME.tracer_provider = tracer_provider
    RUNTIME.disabled = False
    RUNTIME.changed()
    apply_settings(core)
    try:
        yield CapturedUsage(pipeline, exporter)
    finally:
        RUNTIME.tracer_provider, RUNTIME.disabled, THRESHOLD.value = saved
        _params.set_policy(*saved_policy)
        _transaction.VERBOSITY.value = saved_lines[0]
        _transaction.install_logging_bridge(saved_lines[1])
        RUNTIME.changed()
        pipeline.shutdown(5000)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    @pytest.fixture
    def usage_capture() -> Iterator[CapturedUsage]:
        """A :func:`capture_usage` around the test."""
        with capture_usage() as captured:
            yield captured
