"""The ``otel_usage`` configurator: OpenTelemetry's stock SDK set-up plus the usage pipeline.

Loaded by ``opentelemetry-instrument`` from the ``opentelemetry_configurator`` entry point ``otel_usage``
(chosen with ``OTEL_PYTHON_CONFIGURATOR=otel_usage``, which the ``otel_usage`` distro sets by default). It
builds the tracer, meter and logger providers exactly as the SDK's own configurator does, from the same
``OTEL_*`` variables, and adds:

- the sampler: whatever ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` name (stock names, entry
  points, ``usage_level``), wrapped in :class:`~otel_usage.LevelSampler`;
- the usage span processor, handed to the SDK with ``span_processors=[...]``;
- the usage logs pipeline: the exporters of ``OTEL_USAGE_EXPORTERS`` (default ``file``), each behind its
  own processor, on the SDK's logger provider; it is the pipeline ``otel_usage.stats()``,
  ``force_flush()`` and ``shutdown()`` act on, and a later ``otel_usage.configure()`` extends it.

With ``OTEL_CONFIG_FILE`` the SDK ignores configurator arguments: the providers come from the file and
the usage processor is added to them afterwards (levels still gate probes; the file's sampler is kept).
With ``OTEL_SDK_DISABLED=true`` the stock set-up runs and probes record nothing.

The ``opentelemetry_post_instrument`` hook :func:`ensure_pipeline` covers the case where another
configurator (opentelemetry-distro's, when it is found first) built the providers: it adds the usage
pipeline to them, with a warning saying what to set to get the full set-up.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_usage import _exit, _pipeline, _resolve
from otel_usage._config import SDK_DISABLED, CoreSettings
from otel_usage._sampling import adopt_sampler_argument

__all__ = ["UsageConfigurator", "ensure_pipeline"]

logger = logging.getLogger(__name__)

#: The entry-point name of this configurator and of the distro.
NAME = "otel_usage"

_state = {"configurator_ran": False}


class UsageConfigurator(_OTelSDKConfigurator):  # type: ignore[misc,unused-ignore]
    """The SDK's configurator, plus the usage sampler, span processor and logs pipeline."""

    def _configure(self, **kwargs: Any) -> None:
        """Never raises: a configuration error is one line (its traceback with ``OTEL_USAGE_DEBUG=true``)."""
        try:
            self._configure_all(**kwargs)
        except Exception as exc:  # the application runs on; the stock loader would print the traceback twice
            logger.error(
                "otel_usage: OpenTelemetry could not be configured, so neither telemetry nor usage logs are "
                "recorded in this process: %s%s",
                exc,
                "" if _exit.debug_tracebacks() else " (OTEL_USAGE_DEBUG=true shows the traceback)",
                exc_info=_exit.debug_tracebacks(),
            )

    def _configure_all(self, **kwargs: Any) -> None:
        _state["configurator_ran"] = True
        _warn_if_other_distro()
        _leave_out_unknown_exporters()
        if SDK_DISABLED.from_env():
            self._stock(**kwargs)
            _pipeline.configure()
            return
        if os.environ.get("OTEL_CONFIG_FILE", "").strip():
            self._stock(**kwargs)
            logger.info("otel_usage: OTEL_CONFIG_FILE is set; adding the usage pipeline to the providers it built")
            _pipeline.configure()
            return
        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            logger.warning("otel_usage: a tracer provider was set before the configurator ran; extending it instead")
            self._stock(**kwargs)
            _pipeline.configure()
            return
        adopt_sampler_argument()  # OTEL_TRACES_SAMPLER=usage_level: its argument is OTEL_USAGE_LEVEL's default
        settings = CoreSettings.from_env()
        sampler = _resolve.resolve_sampler(kwargs.get("sampler"), settings)
        exporters = _resolve.exporters_from_env(strict=False)  # a sink that cannot start: one warning
        _warn_if_delivered_twice(exporters)
        pending = _pipeline.PendingPipeline(settings)
        processors = [*(kwargs.get("span_processors") or ()), pending.span_processor]
        self._stock(**{**kwargs, "sampler": sampler, "span_processors": processors})
        tracer_provider = trace.get_tracer_provider()
        logger_provider = _logs.get_logger_provider()
        if not isinstance(tracer_provider, TracerProvider) or not isinstance(logger_provider, LoggerProvider):
            logger.warning("otel_usage: the SDK did not build the providers; usage logs use private ones")
            _pipeline.configure(exporters=exporters)
            return
        pipeline = pending.complete(tracer_provider, logger_provider, exporters)
        logger.debug("otel_usage: usage pipeline configured (%s)", pipeline.settings)

    def _stock(self, **kwargs: Any) -> None:
        """The SDK's own set-up (``_OTelSDKConfigurator._configure``)."""
        super()._configure(**kwargs)  # type: ignore[no-untyped-call,unused-ignore]


#: The stock exporter variables, the entry-point group each name is looked up in, and its default.
_STOCK_EXPORTERS = (
    ("OTEL_TRACES_EXPORTER", "opentelemetry_traces_exporter"),
    ("OTEL_METRICS_EXPORTER", "opentelemetry_metrics_exporter"),
    ("OTEL_LOGS_EXPORTER", "opentelemetry_logs_exporter"),
)


def _leave_out_unknown_exporters() -> None:
    """An ``OTEL_*_EXPORTER`` name no installed package provides: one line with the valid names, left out.

    The SDK would raise on it and configure nothing at all; leaving it out lets the other exporters and the
    usage pipeline run. The variable is rewritten without the name, so the SDK sees only what exists.
    """
    from opentelemetry.util._importlib_metadata import entry_points

    for variable, group in _STOCK_EXPORTERS:
        raw = os.environ.get(variable)
        if raw is None:
            continue
        names = [name.strip() for name in raw.split(",") if name.strip()]
        known = {ep.name for ep in entry_points(group=group)}
        if any(name.startswith("otlp_proto_") for name in known):
            known.add("otlp")  # resolved by OTEL_EXPORTER_OTLP_PROTOCOL
        if [name.lower() for name in names] == ["none"]:
            continue
        unknown = [name for name in names if name not in known]
        if not unknown:
            continue
        logger.error(
            "otel_usage: %s=%r names no installed exporter: %s (installed: %s); left out, the others run",
            variable,
            raw,
            ", ".join(repr(name) for name in unknown),
            ", ".join([*sorted(known), "none"]),
        )
        os.environ[variable] = ",".join(name for name in names if name in known) or "none"


def _warn_if_other_distro() -> None:
    from otel_usage import _distro

    if _distro.ran() or os.environ.get("OTEL_PYTHON_DISTRO"):
        return
    from opentelemetry.util._importlib_metadata import entry_points

    if all(ep.name == NAME for ep in entry_points(group="opentelemetry_distro")):
        return
    logger.warning(
        "otel_usage: another distro set OpenTelemetry's defaults (with opentelemetry-distro: traces, metrics and "
        "logs over OTLP to localhost). Set OTEL_PYTHON_DISTRO=otel_usage to use otel_usage's defaults."
    )


def _warn_if_delivered_twice(exporters: list[Any]) -> None:
    """``OTEL_LOGS_EXPORTER=usage_file`` next to the usage pipeline's own file exporter writes each log twice."""
    stock = {name.strip().lower() for name in os.environ.get("OTEL_LOGS_EXPORTER", "").split(",")}
    ours = {type(exporter).__name__ for exporter in exporters}
    for entry_point, exporter_class in (("usage_file", "FileUsageExporter"), ("usage_sql", "SqlUsageExporter")):
        if entry_point in stock and exporter_class in ours:
            logger.warning(
                "otel_usage: OTEL_LOGS_EXPORTER=%s and OTEL_USAGE_EXPORTERS both deliver usage logs to %s: each "
                "log is written twice. Under otel_usage's configurator, name usage exporters in "
                "OTEL_USAGE_EXPORTERS only.",
                entry_point,
                exporter_class,
            )


def ensure_pipeline() -> None:
    """``opentelemetry_post_instrument`` hook: give usage logs a pipeline if another configurator ran.

    Does nothing when the ``otel_usage`` configurator ran (it built the pipeline), when a pipeline exists
    (the application called :func:`otel_usage.configure`), or with ``OTEL_SDK_DISABLED=true``.
    """
    try:
        if _state["configurator_ran"] or _pipeline.get_pipeline() is not None or SDK_DISABLED.from_env():
            return
        chosen = os.environ.get("OTEL_PYTHON_CONFIGURATOR", "").strip()
        report = logger.info if chosen else logger.warning
        report(
            "otel_usage: the %s configurator built the OpenTelemetry providers, not otel_usage's; usage logs are "
            "recorded by adding otel_usage's pipeline to them, but its level sampler is not installed (spans of "
            "other instrumentations inside a probe below the threshold are kept). For the full set-up set "
            "OTEL_PYTHON_CONFIGURATOR=otel_usage and OTEL_PYTHON_DISTRO=otel_usage.",
            repr(chosen) if chosen else "first-found",
        )
        _pipeline.configure()
    except Exception:
        logger.exception("otel_usage: could not add the usage pipeline; no usage log will be recorded")
