"""Routing: send only the usage logs that match a predicate to an exporter.

    from otel_usage.exporters.routing import RoutedUsageExporter, has_event

    video = RoutedUsageExporter(FileUsageExporter("video-events.jsonl"), has_event(r"video\\..*"))
    otel_usage.configure(exporters=[video, FileUsageExporter()])

Each exporter keeps its own queue, so routes never hold each other back. A predicate that raises is
logged and counted (``route_predicate_errors``) and the log is not routed there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_usage import _counters
from otel_usage._schema import usage_log_of

__all__ = ["RoutedUsageExporter", "has_event"]

logger = logging.getLogger(__name__)

Predicate = Callable[[dict[str, Any]], bool]


class RoutedUsageExporter(LogRecordExporter):
    """Passes to ``exporter`` only the usage logs for which ``predicate(log)`` is true."""

    def __init__(self, exporter: LogRecordExporter, predicate: Predicate) -> None:
        if not callable(predicate):
            raise ValueError("predicate must be callable")
        self.exporter = exporter
        self.predicate = predicate

    def _wanted(self, record: ReadableLogRecord) -> bool:
        log = usage_log_of(record)
        if log is None:
            return False
        try:
            return bool(self.predicate(log))
        except Exception:
            _counters.count("route_predicate_errors")
            logger.exception("otel_usage: a routing predicate failed; the log is not routed there")
            return False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        chosen = [record for record in batch if self._wanted(record)]
        if not chosen:
            return LogRecordExportResult.SUCCESS
        return self.exporter.export(chosen)

    def shutdown(self) -> None:
        self.exporter.shutdown()  # type: ignore[no-untyped-call,unused-ignore]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        # Delivery hints of the wrapped exporter (for example a server-given retry delay).
        return getattr(self.exporter, name)


def has_event(*patterns: str) -> Predicate:
    """A predicate: the log has an event whose whole name matches one of the regular expressions."""
    if not patterns:
        raise ValueError("give at least one event-name pattern")
    regex = re.compile("|".join(f"(?:{p})" for p in patterns))

    def predicate(log: dict[str, Any]) -> bool:
        return any(regex.fullmatch(str(e.get("name", ""))) for e in log.get("events") or ())

    return predicate
