"""Where usage logs go: the exporters, their delivery processor and the spool's replay.

    from otel_usage.exporters import FileUsageExporter, SqlUsageExporter, UsageBatchProcessor

Every name is imported on first use, so ``import otel_usage`` does not pay for SQLAlchemy or the OTLP
exporter packages unless they are used.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from otel_usage.exporters._delivery import UsageBatchProcessor
    from otel_usage.exporters._fallback import ExportFailureFallback
    from otel_usage.exporters._replay import replay
    from otel_usage.exporters.console import ConsoleUsageExporter
    from otel_usage.exporters.file import FileUsageExporter, json_line
    from otel_usage.exporters.memory import InMemoryUsageExporter
    from otel_usage.exporters.otlp import UsageOnlyExporter, otlp_usage_exporter
    from otel_usage.exporters.routing import RoutedUsageExporter, has_event
    from otel_usage.exporters.sql import SqlUsageExporter

__all__ = [
    "ConsoleUsageExporter",
    "ExportFailureFallback",
    "FileUsageExporter",
    "InMemoryUsageExporter",
    "RoutedUsageExporter",
    "SqlUsageExporter",
    "UsageBatchProcessor",
    "UsageOnlyExporter",
    "has_event",
    "json_line",
    "otlp_usage_exporter",
    "replay",
]

#: Public name -> the module that defines it.
_SOURCES = {
    "ConsoleUsageExporter": "console",
    "ExportFailureFallback": "_fallback",
    "FileUsageExporter": "file",
    "InMemoryUsageExporter": "memory",
    "RoutedUsageExporter": "routing",
    "SqlUsageExporter": "sql",
    "UsageBatchProcessor": "_delivery",
    "UsageOnlyExporter": "otlp",
    "has_event": "routing",
    "json_line": "file",
    "otlp_usage_exporter": "otlp",
    "replay": "_replay",
}


def __getattr__(name: str) -> _typing.Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
