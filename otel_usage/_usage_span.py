"""The probe's own span: what a recorded probe makes when the usage span processor is the only one.

An SDK span costs about 12 µs to start, make current and end, most of it for what only trace exporters
read (attributes with limits, events, links, a ``ReadableSpan`` snapshot, the processors' fan-out). When
the tracer's only span processor is a :class:`~otel_usage._processor.UsageSpanProcessor` and its sampler
is the default :class:`~otel_usage.LevelSampler` rule (levels, then ``ParentBased(ALWAYS_ON)``), nothing
but that processor will ever see the span, so a probe starts a :class:`UsageSpan` instead: an API span
with the same ids, flags and trace state the SDK would give it, made current the same way (callees,
SDK spans of instrumentations included, nest under it), whose start and end go straight to the
processor. The moment another span processor is added, or the sampler, the tracer's configuration or
the SDK's internals are not the ones described here, probes go back to SDK spans (:func:`fast_start_for`
decides once per tracer; :meth:`FastStart.start` re-checks the processor list on every call).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util import types

from otel_usage._processor import UsageSpanProcessor
from otel_usage._record import Skip
from otel_usage._sampling import LevelSampler

__all__ = ["FastStart", "UsageSpan", "fast_start_for"]

_SAMPLED = TraceFlags.SAMPLED
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
_ERROR = StatusCode.ERROR
_OK = StatusCode.OK
_UNSET = StatusCode.UNSET
_time_ns = time.time_ns
_get_current = context.get_current
_current_span = trace.get_current_span


class UsageSpan(trace.Span):
    """A recording span seen only by the usage span processor (see the module's docstring)."""

    __slots__ = (
        "_context",
        "_ended",
        "_exception",
        "_flags",
        "_otel_usage_entry",
        "_processor",
        "_resource",
        "_span_id",
        "_status",
        "_status_text",
        "_trace_id",
        "_trace_state",
        "name",
    )

    def __init__(
        self,
        name: str,
        trace_id: int,
        span_id: int,
        flags: int,
        trace_state: TraceState | None,
        processor: UsageSpanProcessor,
        resource: Any,
    ) -> None:
        self.name = name
        self._trace_id = trace_id
        self._span_id = span_id
        self._flags = flags
        self._trace_state = trace_state
        self._processor = processor
        self._resource = resource
        self._context: SpanContext | None = None
        self._ended = False
        self._status = _UNSET
        self._status_text = ""
        self._exception: dict[str, str] | None = None
        self._otel_usage_entry: Any = None

    def get_span_context(self) -> SpanContext:
        span_context = self._context
        if span_context is None:
            span_context = self._context = SpanContext(
                self._trace_id,
                self._span_id,
                is_remote=False,
                trace_flags=TraceFlags(self._flags),
                trace_state=self._trace_state,
            )
        return span_context

    def is_recording(self) -> bool:
        return not self._ended

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        entry = self._otel_usage_entry
        if entry is None or entry.__class__ is Skip:  # not recorded
            return
        error = None
        failed = self._status is _ERROR
        if failed:
            error = self._exception or {"type": "", "message": self._status_text}
        self._processor.end_usage_span(entry, end_time or _time_ns(), failed, error, self._resource)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # as the SDK: OK is final, UNSET changes nothing
        if self._ended or self._status is _OK:
            return
        if isinstance(status, Status):
            code, text = status.status_code, status.description or ""
        else:
            code, text = status, description or ""
        if code is not _UNSET:
            self._status = code
            self._status_text = text if code is _ERROR else ""

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        if self._ended:
            return
        try:
            message = str(exception)
        except Exception:  # noqa: BLE001 - the probe records a failing __str__ through add_event
            return
        self._exception = {"type": type(exception).__qualname__, "message": message}

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if name == "exception" and attributes and not self._ended:
            self._exception = {
                "type": str(attributes.get("exception.type", "")),
                "message": str(attributes.get("exception.message", "")),
            }

    # what only trace exporters read: nothing will export this span

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        pass

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        pass

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        pass

    def update_name(self, name: str) -> None:
        if not self._ended:
            self.name = name

    def __repr__(self) -> str:
        return f"UsageSpan(name={self.name!r}, span_id=0x{self._span_id:016x})"


class FastStart:
    """Starts :class:`UsageSpan` objects for one tracer whose only span processor is ours."""

    __slots__ = ("_id_generator", "_multi", "_processor", "_processors", "_random_ids", "_record_unsampled", "_tracer")

    def __init__(self, tracer: Any, processor: UsageSpanProcessor, processors: Sequence[Any]) -> None:
        self._tracer = tracer
        self._multi = tracer.span_processor
        self._processors = processors
        self._processor = processor
        self._id_generator = tracer.id_generator
        self._random_ids = bool(tracer.id_generator.is_trace_id_random())
        self._record_unsampled = bool(tracer.sampler.record_unsampled)

    def start(self, name: str, ctx: context.Context | None = None) -> UsageSpan | None:
        """A started span under ``ctx`` (default the current context), or None when the SDK must make this
        one (the processors or the tracer's configuration changed, or the sampler drops it)."""
        tracer = self._tracer
        if self._multi._span_processors is not self._processors or not tracer._tracer_config.is_enabled:
            return None
        if ctx is None:
            ctx = _get_current()
        parent = _current_span(ctx)
        parent_context = parent.get_span_context()
        flags: int
        if parent_context.is_valid:
            flags = parent_context.trace_flags & (_SAMPLED | _RANDOM)
            if not flags & _SAMPLED and not self._record_unsampled:
                return None  # the sampler drops it: the SDK's non-recording span
            trace_id = parent_context.trace_id
            trace_state = parent_context.trace_state
        else:
            trace_id = self._id_generator.generate_trace_id()
            flags = _SAMPLED | _RANDOM if self._random_ids else _SAMPLED
            trace_state = None
        span = UsageSpan(
            name, trace_id, self._id_generator.generate_span_id(), flags, trace_state, self._processor, tracer.resource
        )
        self._processor.start_usage_span(span, span._span_id, trace_id, name, _time_ns(), parent, ctx)
        return span


def fast_start_for(tracer: Any) -> FastStart | None:
    """A :class:`FastStart` when probes of ``tracer`` may use :class:`UsageSpan`; None when they need SDK spans.

    Every SDK detail relied on is checked here, so that an SDK that differs only costs speed.
    """
    try:
        from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, Tracer
        from opentelemetry.sdk.trace.id_generator import IdGenerator

        if type(tracer) is not Tracer:
            return None
        sampler = tracer.sampler
        if type(sampler) is not LevelSampler or not sampler.default_rule:
            return None
        multi = tracer.span_processor
        if type(multi) is not SynchronousMultiSpanProcessor:
            return None
        processors = multi._span_processors
        if not isinstance(processors, tuple) or len(processors) != 1:
            return None
        (processor,) = processors
        if type(processor) is not UsageSpanProcessor:
            return None
        if type(tracer._tracer_metrics).__name__ != "NoOpTracerMetrics":
            return None  # the SDK's own span metrics are on: they count SDK spans
        if not isinstance(tracer.id_generator, IdGenerator) or not hasattr(tracer._tracer_config, "is_enabled"):
            return None
        return FastStart(tracer, processor, processors)
    except Exception:  # noqa: BLE001 - an SDK that differs: SDK spans
        return None
