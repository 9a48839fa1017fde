"""Building and controlling the pipeline: probes -> spans -> usage logs -> exporters.

:func:`configure` builds (or extends) the global OpenTelemetry providers from environment variables
and arguments (explicit arguments win), and is idempotent: a second call updates settings and adds
new exporters or processors, never a second span processor. :func:`force_flush` and :func:`shutdown`
control it; it is flushed at interpreter exit before the OpenTelemetry providers shut down (see
:mod:`otel_usage._exit`). The sampler and the exporters that names and the environment select are
resolved in :mod:`otel_usage._resolve`.

With ``OTEL_SDK_DISABLED=true`` everything is a no-op: probes call the function and nothing else.

Reads: ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES`` and the ``OTEL_USAGE_*`` variables of :mod:`otel_usage.environment_variables`.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

from otel_usage._assembly import LogEmitter
from otel_usage._config import SDK_DISABLED, CoreSettings
from otel_usage._exit import register_exit_flush
from otel_usage._processor import UsageSpanProcessor
from otel_usage._resolve import build_exporter, exporters_from_env, resolve_sampler
from otel_usage._runtime_state import STATE
from otel_usage._sampling import adopt_sampler_argument
from otel_usage._usage_processors import UsageProcessor
from otel_usage.exporters.memory import InMemoryUsageExporter

__all__ = ["PendingPipeline", "UsagePipeline", "configure", "force_flush", "get_pipeline", "shutdown"]

logger = logging.getLogger("otel_usage")

_PROCESSOR_TAG = "_otel_usage_span_processor"

#: Set on the global tracer provider that ``capture_usage()`` installs when there was none: a later
#: :func:`configure` gives it the resource and sampler it would have given a provider of its own.
CAPTURE_INSTALLED_TAG = "_otel_usage_installed_for_capture"


def apply_settings(settings: CoreSettings) -> None:
    """Make ``settings`` the process-wide policy of probes (threshold, serialization, redaction, log lines)."""
    STATE.apply(settings)


def log_processor_for(exporter: LogRecordExporter) -> LogRecordProcessor:
    """The processor that delivers usage logs to ``exporter``: its own queue, batching and retries."""
    if isinstance(exporter, InMemoryUsageExporter):
        return SimpleLogRecordProcessor(exporter)
    try:
        from otel_usage.exporters._delivery import UsageBatchProcessor  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        return BatchLogRecordProcessor(exporter)
    processor: LogRecordProcessor = UsageBatchProcessor(exporter)
    return processor


class UsagePipeline:
    """The span processor, the usage-log emitter and the exporters' processors of one pipeline."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        logger_provider: LoggerProvider,
        settings: CoreSettings,
        processors: Sequence[UsageProcessor] = (),
        owns_providers: bool = False,
        pending: PendingPipeline | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.logger_provider = logger_provider
        self.settings = settings
        self.emitter = LogEmitter(logger_provider, processors)
        if pending is not None:
            self.span_processor = pending.bind(self.emitter)
        else:
            self.span_processor = UsageSpanProcessor(self.emitter, settings)
        self.exporters: list[LogRecordExporter] = []
        self.log_processors: list[LogRecordProcessor] = []
        self._owns_providers = owns_providers
        self._stopped = False
        self._lock = threading.Lock()
        if pending is None:  # else it is on the provider already: the configurator handed it to the SDK
            tracer_provider.add_span_processor(self.span_processor)
        setattr(tracer_provider, _PROCESSOR_TAG, self.span_processor)

    def add_exporter(self, exporter: LogRecordExporter, processor: LogRecordProcessor | None = None) -> None:
        """Send usage logs to ``exporter`` too (once per exporter object)."""
        with self._lock:
            if any(e is exporter for e in self.exporters):
                return
            proc = processor if processor is not None else log_processor_for(exporter)
            self.exporters.append(exporter)
            self.log_processors.append(proc)
        self.logger_provider.add_log_record_processor(proc)

    def add_processor(self, processor: UsageProcessor) -> None:
        """Append a usage processor to the chain (once per callable)."""
        if not callable(processor):
            raise ValueError(f"a usage processor must be callable, got {processor!r}")
        if all(p is not processor for p in self.emitter.processors):
            self.emitter.processors.append(processor)

    def update(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.span_processor.update_settings(settings)
        apply_settings(settings)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Emit every finished usage log and deliver it to every exporter, within the timeout."""
        ok = self.span_processor.force_flush(timeout_millis)
        for proc in list(self.log_processors):
            ok = bool(proc.force_flush(timeout_millis)) and ok
        return ok

    def shutdown(self, timeout_millis: int = 30000) -> list[str]:
        """Flush, then stop the span processor and the exporters (and the providers it created).

        The exporters are stopped in parallel, within one shared deadline of ``timeout_millis``: a slow or
        unreachable sink never delays another, and what it still holds is spooled or counted lost by its
        processor. Returns the names of the sinks that had not finished by the deadline (they go on in
        daemon threads, which do not keep the process alive).
        """
        if self._stopped:
            return []
        self._stopped = True
        deadline = time.monotonic() + max(0, timeout_millis) / 1000.0
        self.span_processor.shutdown()
        stoppers = []
        for exporter, proc in zip(list(self.exporters), list(self.log_processors), strict=True):
            # a little less than the time left, so that each processor has counted what it gives up by then
            left = max(0, int((deadline - time.monotonic()) * 900))
            name = sink_name(exporter, proc)
            thread = threading.Thread(
                target=_stop_processor, args=(proc, left), name=f"otel_usage-stop-{name}", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # no new thread at this point of the interpreter's exit: stop it here
                _stop_processor(proc, left)
                continue
            stoppers.append((name, thread))
        unfinished = []
        for name, thread in stoppers:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                unfinished.append(name)
        if self._owns_providers:
            self.tracer_provider.shutdown()
            self.logger_provider.shutdown()
        return unfinished


def sink_name(exporter: LogRecordExporter, processor: LogRecordProcessor | None = None) -> str:
    """The name a sink goes by in counters and messages (``file``, ``sql``, ``otlp``, ...)."""
    name = getattr(processor, "name", None)
    if isinstance(name, str) and name:
        return name
    from otel_usage.exporters._sink import default_name

    return default_name(exporter)


def _stop_processor(proc: LogRecordProcessor, timeout_millis: int) -> None:
    try:
        try:
            accepts_timeout = "timeout_millis" in inspect.signature(proc.shutdown).parameters
        except (TypeError, ValueError):
            accepts_timeout = False
        if accepts_timeout:
            proc.shutdown(timeout_millis=timeout_millis)  # type: ignore[call-arg]
        else:
            proc.force_flush(timeout_millis)
            proc.shutdown()
    except Exception:
        logger.exception("otel_usage: an exporter failed to shut down")


_lock = threading.RLock()
_pipeline: UsagePipeline | None = None


def get_pipeline() -> UsagePipeline | None:
    """The pipeline built by :func:`configure`, if any."""
    return _pipeline


def configure(
    *,
    exporters: Iterable[LogRecordExporter | str] | None = None,
    processors: Iterable[UsageProcessor] | None = None,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    sampler: Sampler | None = None,
    service_name: str | None = None,
    **settings: Any,
) -> UsagePipeline | None:
    """Build or extend the pipeline; explicit arguments win over ``OTEL_USAGE_*`` variables.

    Args:
        exporters: exporter objects or names (``file``, ``sql``, ``otlp``, ``console``); default from
            ``OTEL_USAGE_EXPORTERS`` (``file``). Only used the first time unless given again.
        processors: usage processors, appended to the chain.
        tracer_provider: an SDK provider to extend; default the global one (created when unset).
        logger_provider: an SDK logger provider to emit usage logs into; default the global one.
        sampler: sampler for a provider created here (wrapped in :class:`LevelSampler`).
        service_name: ``service.name`` for providers created here.
        **settings: any field of :class:`~otel_usage._config.CoreSettings` (``level``, limits, ...).

    Returns:
        The pipeline, or None when ``OTEL_SDK_DISABLED`` is true.

    Raises:
        ValueError: an invalid argument, or an unknown exporter name.
    """
    global _pipeline
    with _lock:
        adopt_sampler_argument()  # OTEL_TRACES_SAMPLER=usage_level: its argument is OTEL_USAGE_LEVEL's default
        core = CoreSettings.from_env(**settings)
        if SDK_DISABLED.from_env():
            STATE.disabled = True
            STATE.changed()
            return None
        apply_settings(core)
        pipeline = _pipeline
        if pipeline is None:
            resource = Resource.create({"service.name": service_name} if service_name else {})
            tp, owns_tp = _tracer_provider(tracer_provider, sampler, core, resource)
            lp, owns_lp = _logger_provider(logger_provider, resource)
            existing = getattr(tp, _PROCESSOR_TAG, None)
            if existing is not None:
                raise ValueError("this tracer provider already has an otel_usage pipeline")
            pipeline = UsagePipeline(tp, lp, core, owns_providers=owns_tp and owns_lp)
            _pipeline = pipeline
            if exporters is None:
                exporters = exporters_from_env()
            STATE.changed()
        else:
            pipeline.update(core)
        for item in exporters or ():
            for exporter in build_exporter(item) if isinstance(item, str) else [item]:
                pipeline.add_exporter(exporter)
        for processor in processors or ():
            pipeline.add_processor(processor)
        register_exit_flush(_detach_pipeline)
        return pipeline


def _tracer_provider(
    explicit: TracerProvider | None, sampler: Sampler | None, core: CoreSettings, resource: Resource
) -> tuple[TracerProvider, bool]:
    if explicit is not None:
        if not isinstance(explicit, TracerProvider):
            raise ValueError("tracer_provider must be an opentelemetry.sdk.trace.TracerProvider")
        if STATE.tracer_provider is None and trace.get_tracer_provider() is not explicit:
            STATE.tracer_provider = explicit
        return explicit, False
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if getattr(current, CAPTURE_INSTALLED_TAG, False):  # installed by capture_usage(): made what we would
            setattr(current, CAPTURE_INSTALLED_TAG, False)
            current._update_resource(resource)
            current.sampler = resolve_sampler(sampler, core)
        return current, False
    created = TracerProvider(sampler=resolve_sampler(sampler, core), resource=resource)
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(created)
    else:
        logger.warning("otel_usage: the global tracer provider is not the SDK's; probes use a private one")
        STATE.tracer_provider = created
    return created, True


def _logger_provider(explicit: LoggerProvider | None, resource: Resource) -> tuple[LoggerProvider, bool]:
    if explicit is not None:
        if not isinstance(explicit, LoggerProvider):
            raise ValueError("logger_provider must be an opentelemetry.sdk._logs.LoggerProvider")
        return explicit, False
    current = _logs.get_logger_provider()
    if isinstance(current, LoggerProvider):
        return current, False
    created = LoggerProvider(resource=resource)
    if type(current).__name__ == "ProxyLoggerProvider":
        _logs.set_logger_provider(created)
    return created, True


def _detach_pipeline() -> UsagePipeline | None:
    """Take the installed pipeline out: :func:`get_pipeline` is None from now on."""
    global _pipeline
    with _lock:
        pipeline = _pipeline
        _pipeline = None
    return pipeline


def force_flush(timeout_millis: int = 30000) -> bool:
    """Emit and deliver every finished usage log now. True when all of it got through in time."""
    pipeline = _pipeline
    return True if pipeline is None else pipeline.force_flush(timeout_millis)


def shutdown(timeout_millis: int = 30000) -> None:
    """Flush and stop the pipeline; probes keep working, recording nothing further."""
    pipeline = _detach_pipeline()
    if pipeline is not None:
        pipeline.shutdown(timeout_millis)


class PendingPipeline:
    """The span processor of a pipeline whose providers do not exist yet.

    The configurator hands :attr:`span_processor` to the SDK (``span_processors=[...]``), so it is on the
    tracer provider from the moment the provider exists; :meth:`complete` then builds the
    :class:`UsagePipeline` around it and makes it the one :func:`configure`, :func:`force_flush`,
    :func:`shutdown` and ``stats()`` act on.
    """

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self._emitter: LogEmitter | None = None
        self.span_processor = UsageSpanProcessor(self, settings)  # emits through __call__ and emit_many

    def __call__(self, root: Any) -> None:
        emitter = self._emitter
        if emitter is not None:
            emitter(root)
        else:  # only a unit of work that ended before complete(): nothing can send it anywhere
            from otel_usage import _counters

            _counters.count_drop("no_pipeline")

    def emit_many(self, roots: Any) -> None:
        emitter = self._emitter
        if emitter is not None:
            emitter.emit_many(roots)
        else:
            for root in roots:
                self(root)

    def bind(self, emitter: LogEmitter) -> UsageSpanProcessor:
        self._emitter = emitter
        return self.span_processor

    def complete(
        self,
        tracer_provider: TracerProvider,
        logger_provider: LoggerProvider,
        exporters: Iterable[LogRecordExporter],
    ) -> UsagePipeline:
        """Build the pipeline on the providers the SDK built, add the exporters, install it process-wide.

        Raises:
            ValueError: a pipeline is installed already.
        """
        pipeline = UsagePipeline(tracer_provider, logger_provider, self.settings, pending=self)
        for exporter in exporters:
            pipeline.add_exporter(exporter)
        install_pipeline(pipeline)
        return pipeline


def install_pipeline(pipeline: UsagePipeline) -> None:
    """Make ``pipeline`` the process-wide one (as :func:`configure` would) and flush it at exit.

    Its settings become the probes' policy. At exit it is flushed before the OpenTelemetry providers shut
    down (``atexit`` runs last-registered first and this is registered after they were built).

    Raises:
        ValueError: a pipeline is installed already.
    """
    global _pipeline
    with _lock:
        if _pipeline is not None:
            raise ValueError("an otel_usage pipeline is configured already")
        apply_settings(pipeline.settings)
        _pipeline = pipeline
        STATE.changed()
        register_exit_flush(_detach_pipeline)
