"""The machinery of :mod:`otel_usage.testing` (documented there)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from opentelemetry import context, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

from otel_usage import _pipeline
from otel_usage._config import CoreSettings
from otel_usage._pipeline import UsagePipeline
from otel_usage._runtime_state import STATE
from otel_usage._sampling import LevelSampler
from otel_usage._usage_processors import UsageProcessor
from otel_usage.exporters.memory import InMemoryUsageExporter

__all__ = ["CapturedUsage", "capture_usage", "usage_capture"]

_RELAY_TAG = "_otel_usage_capture_relay"


class CapturedUsage(Sequence[dict[str, Any]]):
    """The usage logs of one :func:`capture_usage` block: a read-only sequence, flushed on every read."""

    def __init__(self, pipeline: UsagePipeline, exporter: InMemoryUsageExporter, flush_source: Any = None) -> None:
        self.pipeline = pipeline
        self.exporter = exporter
        self._flush_source = flush_source  # the installed pipeline whose logs are diverted here, if any

    @property
    def tracer_provider(self) -> TracerProvider:
        """The provider whose spans become the captured logs (pass it to instrumentations explicitly)."""
        source = self._flush_source
        return source.tracer_provider if source is not None else self.pipeline.tracer_provider

    @property
    def logs(self) -> list[dict[str, Any]]:
        """Every finished usage log so far, oldest first (flushes first)."""
        self.flush()
        return self.exporter.get_logs()

    def flush(self, timeout_millis: int = 10000) -> bool:
        """Emit every usage log whose unit of work has ended; True when all of it got through in time."""
        source = self._flush_source
        if source is not None:
            return bool(source.span_processor.force_flush(timeout_millis))
        return self.pipeline.force_flush(timeout_millis)

    def clear(self) -> None:
        """Forget the logs captured so far."""
        self.flush()
        self.exporter.clear()

    def __len__(self) -> int:
        return len(self.logs)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self.logs[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.logs)

    def __repr__(self) -> str:
        return f"<CapturedUsage: {len(self.exporter.get_logs())} usage log(s)>"


class _CaptureRelay(SpanProcessor):
    """On a global SDK provider: hands its spans to the innermost active private capture, if any."""

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        target = _relay_target()
        if target is not None:
            target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        target = _relay_target()
        if target is not None:
            target.on_end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_active: list[tuple[CapturedUsage, SpanProcessor | None]] = []  # innermost last
_active_lock = threading.Lock()


def _relay_target() -> SpanProcessor | None:
    active = _active
    return active[-1][1] if active else None


def _global_sdk_provider(sampler: Sampler) -> TracerProvider | None:
    """The global SDK tracer provider, carrying the relay; installed when there is none yet."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        if not isinstance(current, trace.ProxyTracerProvider):
            return None  # another API implementation: nothing to relay from
        installed = TracerProvider(sampler=sampler, shutdown_on_exit=False)
        setattr(installed, _pipeline.CAPTURE_INSTALLED_TAG, True)
        trace.set_tracer_provider(installed)
        current = trace.get_tracer_provider()
        if not isinstance(current, TracerProvider):  # pragma: no cover - set by another thread meanwhile
            return None
    if getattr(current, _RELAY_TAG, None) is None:
        relay = _CaptureRelay()
        current.add_span_processor(relay)
        setattr(current, _RELAY_TAG, relay)
    return current


@contextlib.contextmanager
def capture_usage(
    *,
    processors: Iterable[UsageProcessor] = (),
    sampler: Sampler | None = None,
    service_name: str = "test",
    **settings: Any,
) -> Iterator[CapturedUsage]:
    """Capture every usage log recorded inside the block (see the module docstring).

    Args:
        processors: usage processors run on the captured logs (after an installed pipeline's own).
        sampler: a sampler for a private pipeline (wrapped in :class:`~otel_usage.LevelSampler`); giving one
            records the block's probes on a private provider even when a pipeline is installed.
        service_name: ``service.name`` of a private pipeline.
        **settings: core settings (``level``, limits, ...) for the block; unset ones come from the environment.
    """
    core = CoreSettings.from_env(**settings)
    installed = _pipeline.get_pipeline() if sampler is None else None
    if sampler is None or not isinstance(sampler, LevelSampler):
        sampler = LevelSampler(sampler, record_unsampled=core.record_unsampled)
    resource = Resource.create({"service.name": service_name})
    tracer_provider = TracerProvider(sampler=sampler, resource=resource, shutdown_on_exit=False)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    exporter = InMemoryUsageExporter()
    pipeline = UsagePipeline(
        tracer_provider, logger_provider, core, [] if installed else list(processors), owns_providers=True
    )
    pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))
    captured = CapturedUsage(pipeline, exporter, flush_source=installed)
    saved = STATE.snapshot()
    added: list[UsageProcessor] = []
    if installed is not None:
        installed.span_processor.force_flush(5000)  # what ended before the block goes where it was going
        for processor in processors:
            if all(p is not processor for p in installed.emitter.processors):
                installed.emitter.processors.append(processor)
                added.append(processor)
        installed.emitter.redirect(logger_provider)
        relay_target: SpanProcessor | None = None
    else:
        _global_sdk_provider(LevelSampler(record_unsampled=core.record_unsampled))
        STATE.tracer_provider = tracer_provider
        relay_target = pipeline.span_processor
    STATE.disabled = False
    STATE.changed()
    STATE.apply(core)
    with _active_lock:
        _active.append((captured, relay_target))
    try:
        yield captured
    finally:
        captured.flush()
        with _active_lock:
            _active[:] = [entry for entry in _active if entry[0] is not captured]
            outer = next((c for c, _ in reversed(_active) if c._flush_source is installed), None)
        if installed is not None:  # back to the enclosing capture of the same pipeline, or to its exporters
            installed.emitter.redirect(None if outer is None else outer.pipeline.logger_provider)
            for processor in added:
                with contextlib.suppress(ValueError):
                    installed.emitter.processors.remove(processor)
        STATE.restore(saved)
        pipeline.shutdown(5000)


def _usage_capture() -> Iterator[CapturedUsage]:
    """A :func:`capture_usage` around the test."""
    with capture_usage() as captured:
        yield captured


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional: the same generator, not a fixture
    usage_capture = _usage_capture
else:
    usage_capture = pytest.fixture(name="usage_capture")(_usage_capture)
