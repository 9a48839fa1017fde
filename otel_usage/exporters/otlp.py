"""Usage logs to any OTLP backend through the stock OpenTelemetry OTLP log exporters.

Nothing here reimplements OTLP: :func:`otlp_usage_exporter` builds the stock exporter for the configured
protocol, so endpoint, headers, TLS, compression and timeout come only from the standard variables
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS`` ...).
The protocol is read from ``OTEL_EXPORTER_OTLP_LOGS_PROTOCOL``, then ``OTEL_EXPORTER_OTLP_PROTOCOL``:
``http/protobuf`` (the default, a plain dependency) or ``grpc`` (``pip install 'otel-usage[grpc]'``).

Each usage log travels as one OTLP log record: ``event_name`` ``"otel_usage.log"``, the usage log as the
body (an AnyValue map: nested lists and maps, strings, numbers, booleans and nulls), and the trace and
span ids of its local root, so a backend can correlate it with its trace. The stock exporter retries
transient failures (429, 502, 503, 504, honouring ``Retry-After``) within its timeout.

:class:`UsageOnlyExporter` wraps any exporter so that it receives usage logs only, and makes sure one
log with a value OTLP cannot encode (an integer beyond 64 bits) cannot make the encoder reject the
whole batch: such values are sent as strings and counted as ``otlp_values_converted``.

Example::

    provider.add_log_record_processor(UsageBatchProcessor(otlp_usage_exporter()))
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_usage import _counters
from otel_usage._config import OTLP_LOGS_PROTOCOL, OTLP_PROTOCOLS
from otel_usage._errors import never_raises
from otel_usage._schema import is_usage_log_record

__all__ = ["PROTOCOLS", "UsageOnlyExporter", "otlp_usage_exporter"]

logger = logging.getLogger(__name__)

#: Protocols of the stock Python OTLP log exporters.
PROTOCOLS = OTLP_PROTOCOLS
_GRPC_HINT = "pip install 'otel-usage[grpc]'"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def otlp_usage_exporter(protocol: str | None = None, *, usage_only: bool = True, **kwargs: Any) -> LogRecordExporter:
    """The stock OTLP log exporter for ``protocol``, wrapped so that it sends usage logs only.

    Args:
        protocol: ``"http/protobuf"`` or ``"grpc"``; default from ``OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`` /
            ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``http/protobuf``.
        usage_only: wrap in :class:`UsageOnlyExporter` (default); False returns the bare stock exporter.
        **kwargs: passed to the stock exporter (``endpoint``, ``headers``, ``timeout`` ...); normally empty,
            the standard ``OTEL_EXPORTER_OTLP_*`` variables configure it.

    Raises:
        ValueError: an unsupported ``protocol`` argument.
        ImportError: ``grpc`` chosen but the gRPC extra is not installed (with the ``pip install`` hint).
    """
    resolved = OTLP_LOGS_PROTOCOL.resolve(protocol)
    exporter: LogRecordExporter
    if resolved == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
        except ImportError as exc:
            raise ImportError(f"the OTLP gRPC exporter is not installed; install it with: {_GRPC_HINT}") from exc
        exporter = GrpcLogExporter(**kwargs)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

        exporter = HttpLogExporter(**kwargs)
    return UsageOnlyExporter(exporter) if usage_only else exporter


class UsageOnlyExporter(LogRecordExporter):
    """Passes only usage-log records on to ``exporter``; never raises.

    Args:
        exporter: any ``LogRecordExporter`` (the stock OTLP exporter, usually).
    """

    def __init__(self, exporter: LogRecordExporter) -> None:
        self.exporter = exporter

    @never_raises("UsageOnlyExporter.export", default=LogRecordExportResult.FAILURE)
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export the usage logs of ``batch``; SUCCESS at once when there are none."""
        usage = [_encodable(record) for record in batch if is_usage_log_record(record)]
        if not usage:
            return LogRecordExportResult.SUCCESS
        return self.exporter.export(usage)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return bool(self.exporter.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.exporter.shutdown()  # type: ignore[no-untyped-call]


def _encodable(record: ReadableLogRecord) -> ReadableLogRecord:
    """``record`` itself, or a copy whose body has values OTLP cannot encode turned into strings."""
    body = record.log_record.body
    converted = [0]
    safe = _safe(body, converted)
    if not converted[0]:
        return record
    _counters.count("otlp_values_converted", converted[0])
    log_record = record.log_record
    copy = type(log_record).__new__(type(log_record))
    copy.__dict__.update(log_record.__dict__)
    copy.body = safe
    return dataclasses.replace(record, log_record=copy)


def _safe(value: Any, converted: list[int]) -> Any:
    """``value`` unchanged when OTLP can encode it, else a copy with the offending leaves as strings."""
    if value is None or isinstance(value, (str, bool, float, bytes)):
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        converted[0] += 1
        return str(value)
    if isinstance(value, Mapping):
        before = converted[0]
        items = {k: _safe(v, converted) for k, v in value.items()}
        return value if converted[0] == before else items
    if isinstance(value, Sequence):
        before = converted[0]
        items_list = [_safe(v, converted) for v in value]
        return value if converted[0] == before else items_list
    converted[0] += 1
    return str(value)
