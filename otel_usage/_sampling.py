"""``LevelSampler``: the usage level rule as an OpenTelemetry sampler.

Spans whose start attributes carry a level (``otel_usage.level``) below the threshold are dropped,
and so is every span started while a filtered probe runs (its hidden subtree). Everything else is
decided by the wrapped sampler (default ``ParentBased(ALWAYS_ON)``), with two guarantees:

- the start attributes are always passed through (a sampler that forgets them erases the span's
  attributes);
- by default a span the wrapped sampler drops is still **recorded** (``RECORD_ONLY``): span
  processors see it, trace exporters do not. Usage logs stay complete while trace export is
  ratio-sampled, and an upstream ``traceparent`` with the sampled flag off does not silently
  suppress usage logs. ``record_unsampled=False`` lets trace sampling thin usage logs too.

Selectable as ``OTEL_TRACES_SAMPLER=usage_level`` with ``OTEL_TRACES_SAMPLER_ARG`` = threshold name (see
:func:`usage_level_sampler`: the argument becomes the process threshold).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otel_usage import environment_variables as ev
from otel_usage._levels import THRESHOLD, Level, parse_level
from otel_usage._runtime import HIDDEN, LEVEL_ATTR

__all__ = ["LevelSampler", "adopt_sampler_argument", "usage_level_sampler"]

logger = logging.getLogger(__name__)

_LEVELS = {level.name: int(level) for level in Level}


class LevelSampler(Sampler):
    """Applies usage levels, then delegates.

    Args:
        delegate: the sampler deciding everything else; default ``ParentBased(ALWAYS_ON)``.
        threshold: a fixed threshold; None (default) follows :func:`otel_usage.set_level`.
        record_unsampled: keep recording (RECORD_ONLY) what the delegate drops.
    """

    def __init__(
        self,
        delegate: Sampler | None = None,
        threshold: Level | int | str | None = None,
        record_unsampled: bool = True,
    ) -> None:
        self._delegate = delegate if delegate is not None else ParentBased(ALWAYS_ON)
        # The default delegate's decision, computed inline: the sampler runs for every span.
        self._parent_based_on = delegate is None
        self._threshold = None if threshold is None else int(parse_level(threshold))
        self._record_unsampled = record_unsampled

    @property
    def delegate(self) -> Sampler:
        return self._delegate

    @property
    def record_unsampled(self) -> bool:
        """Whether what the delegate drops is still recorded (``RECORD_ONLY``)."""
        return self._record_unsampled

    @property
    def default_rule(self) -> bool:
        """True for the default rule: the process threshold, then ``ParentBased(ALWAYS_ON)`` (computed inline)."""
        return self._parent_based_on and self._threshold is None

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if HIDDEN.get():
            return SamplingResult(Decision.DROP, None, _parent_state(parent_context))
        if attributes:
            level = attributes.get(LEVEL_ATTR)
            if level is not None:
                threshold = THRESHOLD.value if self._threshold is None else self._threshold
                if _LEVELS.get(str(level), 0) < threshold:
                    return SamplingResult(Decision.DROP, None, _parent_state(parent_context))
        if self._parent_based_on:
            parent = get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, None)
            if parent.trace_flags.sampled:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
            if self._record_unsampled:
                return SamplingResult(Decision.RECORD_ONLY, attributes, parent.trace_state)
            return SamplingResult(Decision.DROP, None, parent.trace_state)
        result = self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is Decision.DROP and self._record_unsampled:
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state or _parent_state(parent_context))
        if attributes and not result.attributes:
            return SamplingResult(result.decision, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        fixed = "current" if self._threshold is None else Level(self._threshold).name
        return f"LevelSampler{{threshold={fixed},delegate={self._delegate.get_description()}}}"


def _parent_state(parent_context: Context | None) -> TraceState | None:
    return get_current_span(parent_context).get_span_context().trace_state


def usage_level_sampler(argument: str | None) -> LevelSampler:
    """Factory for ``OTEL_TRACES_SAMPLER=usage_level``; the argument (``OTEL_TRACES_SAMPLER_ARG``) is a level name.

    The argument is the process threshold, so that probes (which skip their span below it) and the
    sampler agree: it becomes the default of ``OTEL_USAGE_LEVEL`` (see :func:`adopt_sampler_argument`) and,
    when it does, is applied at once. An ``OTEL_USAGE_LEVEL`` that is set wins (a different argument is a
    warning), and so does an explicit ``configure(level=...)``. The sampler itself follows the process
    threshold, so ``set_level()`` moves both. An argument that names no level is a warning, and the
    threshold is left as it is. ``OTEL_USAGE_RECORD_UNSAMPLED`` is honoured.
    """
    from otel_usage._config import RECORD_UNSAMPLED

    sampler = LevelSampler(record_unsampled=RECORD_UNSAMPLED.from_env())
    level = _argument_level(argument, warn=True)
    if level is not None and _adopt(level, argument, warn=True):
        THRESHOLD.value = int(level)
    return sampler


def adopt_sampler_argument() -> None:
    """With ``OTEL_TRACES_SAMPLER=usage_level``, make a valid ``OTEL_TRACES_SAMPLER_ARG`` the default of
    ``OTEL_USAGE_LEVEL`` now, before settings are read (so that explicit arguments still win over it).

    Quiet: the factory reports a bad argument when it builds the sampler.
    """
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() != "usage_level":
        return
    argument = os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    level = _argument_level(argument, warn=False)
    if level is not None:
        _adopt(level, argument, warn=False)


def _argument_level(argument: str | None, warn: bool) -> Level | None:
    if argument is None or not str(argument).strip():
        return None
    try:
        return parse_level(str(argument))
    except ValueError as exc:
        if warn:
            logger.warning("Ignoring OTEL_TRACES_SAMPLER_ARG=%r for the usage_level sampler (%s)", argument, exc)
        return None


def _adopt(level: Level, argument: str | None, warn: bool) -> bool:
    """Set ``OTEL_USAGE_LEVEL`` to ``level`` unless it is set; True when it was set here."""
    explicit = os.environ.get(ev.OTEL_USAGE_LEVEL, "").strip()
    if explicit:
        if warn and explicit.upper() != level.name:
            logger.warning(
                "Ignoring OTEL_TRACES_SAMPLER_ARG=%r: %s=%r is set and wins", argument, ev.OTEL_USAGE_LEVEL, explicit
            )
        return False
    os.environ[ev.OTEL_USAGE_LEVEL] = level.name
    return True
