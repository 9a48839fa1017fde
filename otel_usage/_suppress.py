"""Suppression of instrumentation around otel_usage's own work: :func:`suppressed` and :func:`is_suppressed`.

Exporters deliver, the assembler assembles and ``replay()`` re-sends under suppression, so that what they
call (a database driver, ``requests``, a probed function) records nothing and cannot feed usage logs back
into the pipeline. Both are OpenTelemetry's own: :func:`suppressed` is
``opentelemetry.instrumentation.utils.suppress_instrumentation``, and :func:`is_suppressed` reads the key it
sets, the one the SDK's instrumentations check.
"""

from __future__ import annotations

import functools

from opentelemetry import context
from opentelemetry.instrumentation.utils import suppress_instrumentation

__all__ = ["is_suppressed", "suppressed"]

#: A context manager: nothing is instrumented (or recorded by probes) inside it.
suppressed = suppress_instrumentation

#: True-ish while instrumentation is suppressed. A C-level partial, not a Python function: probes call it
#: on every call of a probed function, and it costs no more than the lookup it does.
is_suppressed = functools.partial(context.get_value, context._SUPPRESS_INSTRUMENTATION_KEY)
