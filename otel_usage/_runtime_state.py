"""The process-wide state of otel_usage as one object, :data:`STATE`: read, set, saved and restored whole.

What a probe does depends on six pieces of process state: the tracer provider probes use and the disabled
flag (:data:`~otel_usage._runtime.RUNTIME`), the level threshold (:data:`~otel_usage._levels.THRESHOLD`),
the serialization policy (:func:`~otel_usage._serialize.get_policy`), the verbosity of log lines
(:data:`~otel_usage._log_lines.VERBOSITY`) and whether the bridge of stdlib ``logging`` is installed. Each
stays where the hot path reads it (one attribute of a module-level object, bound at decoration time, so a
probe pays nothing for this object); :class:`RuntimeState` is the one place that sets them from settings
(:meth:`~RuntimeState.apply`, used by ``configure()``), and that saves and restores all of them at once
(:meth:`~RuntimeState.snapshot` / :meth:`~RuntimeState.restore`, used by ``capture_usage()``). A piece of
state added later is added here, and both follow.
"""

from __future__ import annotations

import dataclasses

from opentelemetry import trace

from otel_usage import _redact, _serialize
from otel_usage._config import CoreSettings
from otel_usage._levels import THRESHOLD
from otel_usage._log_lines import VERBOSITY, install_logging_bridge, logging_bridge_installed
from otel_usage._runtime import RUNTIME

__all__ = ["RuntimeSnapshot", "RuntimeState", "STATE"]


@dataclasses.dataclass(frozen=True)
class RuntimeSnapshot:
    """The process-wide state at one moment (see :meth:`RuntimeState.snapshot`)."""

    tracer_provider: trace.TracerProvider | None
    disabled: bool
    threshold: int
    policy: tuple[_serialize.SerializeLimits, _redact.Redactor]
    verbosity: int
    log_bridge: bool


class RuntimeState:
    """The process-wide state: the provider probes use, the disabled flag, and the policy of probes."""

    __slots__ = ()

    @property
    def tracer_provider(self) -> trace.TracerProvider | None:
        """The provider probes use; None means the global one. Takes effect after :meth:`changed`."""
        return RUNTIME.tracer_provider

    @tracer_provider.setter
    def tracer_provider(self, provider: trace.TracerProvider | None) -> None:
        RUNTIME.tracer_provider = provider

    @property
    def disabled(self) -> bool:
        """True when probes record nothing (``OTEL_SDK_DISABLED``). Takes effect after :meth:`changed`."""
        return RUNTIME.disabled

    @disabled.setter
    def disabled(self, disabled: bool) -> None:
        RUNTIME.disabled = disabled

    def changed(self) -> None:
        """Have every tracker resolve its tracer again (after the provider or the disabled flag changed)."""
        RUNTIME.changed()

    def apply(self, settings: CoreSettings) -> None:
        """Make ``settings`` the policy of probes: threshold, serialization limits and redaction, verbosity
        of log lines, logging bridge."""
        THRESHOLD.value = int(settings.level)
        _serialize.set_policy(
            _serialize.SerializeLimits(
                max_depth=settings.param_max_depth,
                max_length=settings.param_max_length,
                max_items=settings.param_max_items,
                max_size=settings.param_max_size,
            ),
            _redact.Redactor(settings.redact, defaults=settings.redact_defaults),
        )
        VERBOSITY.value = settings.log_verbosity
        install_logging_bridge(settings.log_bridge)

    def snapshot(self) -> RuntimeSnapshot:
        """All of the state now, for :meth:`restore`."""
        return RuntimeSnapshot(
            tracer_provider=RUNTIME.tracer_provider,
            disabled=RUNTIME.disabled,
            threshold=THRESHOLD.value,
            policy=_serialize.get_policy(),
            verbosity=VERBOSITY.value,
            log_bridge=logging_bridge_installed(),
        )

    def restore(self, snapshot: RuntimeSnapshot) -> None:
        """Put back all of the state of ``snapshot``; trackers resolve their tracer again."""
        RUNTIME.tracer_provider = snapshot.tracer_provider
        RUNTIME.disabled = snapshot.disabled
        THRESHOLD.value = snapshot.threshold
        _serialize.set_policy(*snapshot.policy)
        VERBOSITY.value = snapshot.verbosity
        install_logging_bridge(snapshot.log_bridge)
        RUNTIME.changed()


STATE = RuntimeState()
