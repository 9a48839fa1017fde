"""Process-wide state read on the hot path: which tracer provider probes use, and the hidden flag.

``RUNTIME.generation`` changes whenever the provider changes, so trackers re-resolve their tracer once
instead of on every call. ``HIDDEN`` is set while a probe below the threshold runs: nothing it calls is
recorded (probes skip, :class:`~otel_usage.LevelSampler` drops, the span processor ignores).
"""

from __future__ import annotations

import contextvars

from opentelemetry import context, trace

__all__ = ["ENTRY_ATTR", "HIDDEN", "INFO_KEY", "LEVEL_ATTR", "RUNTIME", "Runtime"]

#: Span attribute carrying a probe's level name; the sampler reads it from the start attributes.
LEVEL_ATTR = "otel_usage.level"

#: Name of the attribute the span processor sets on each SDK span it buffers (its compact record).
ENTRY_ATTR = "_otel_usage_entry"

HIDDEN: contextvars.ContextVar[bool] = contextvars.ContextVar("otel_usage.hidden", default=False)

#: Context key holding the info in force (usage contexts and ``add_info``): a flat dict, never mutated
#: once set (a change makes a new dict in a new context), so it can be shared without copying.
INFO_KEY = context.create_key("otel_usage.info")


class Runtime:
    """Which provider probes use. ``tracer_provider`` None means the global one."""

    __slots__ = ("disabled", "generation", "tracer_provider")

    def __init__(self) -> None:
        self.generation = 0
        self.tracer_provider: trace.TracerProvider | None = None
        self.disabled = False

    def provider(self) -> trace.TracerProvider:
        return self.tracer_provider if self.tracer_provider is not None else trace.get_tracer_provider()

    def changed(self) -> None:
        self.generation += 1


RUNTIME = Runtime()
