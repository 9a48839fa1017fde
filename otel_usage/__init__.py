"""otel_usage: structured usage logs of what your application's users do, on OpenTelemetry.

import otel_usage
from otel_usage import traced_usage, add_info

otel_usage.configure()            # from OTEL_USAGE_* variables; explicit arguments win

@traced_usage(level=otel_usage.INFO)
def add_item(cart, item_id, qty=1): ...
"""

from otel_usage._context import add_data, add_info, get_info, usage_context
from otel_usage._counters import stats
from otel_usage._events import event
from otel_usage._levels import DEBUG, DEFAULT, INFO, NONE, Level, get_level, set_level
from otel_usage._log_lines import UsageLogHandler, log
from otel_usage._pipeline import UsagePipeline, configure, force_flush, get_pipeline, shutdown
from otel_usage._probe import traced_usage
from otel_usage._processor import UsageSpanProcessor
from otel_usage._represent import register_representation
from otel_usage._sampling import LevelSampler
from otel_usage._schema import SCHEMA_VERSION, USAGE_LOG_EVENT
from otel_usage._timers import timer
from otel_usage._tracker import Tracker, get_tracker
from otel_usage._transaction import transaction
from otel_usage._usage_processors import (
    DropUsageLog,
    UsageProcessor,
    allow_events,
    allow_functions,
    block_events,
    block_functions,
)
from otel_usage.exporters._replay import replay
from otel_usage.version import __version__

__all__ = [
    "DEBUG",
    "DEFAULT",
    "DropUsageLog",
    "INFO",
    "Level",
    "LevelSampler",
    "NONE",
    "SCHEMA_VERSION",
    "Tracker",
    "USAGE_LOG_EVENT",
    "UsageLogHandler",
    "UsagePipeline",
    "UsageProcessor",
    "UsageSpanProcessor",
    "__version__",
    "add_data",
    "add_info",
    "allow_events",
    "allow_functions",
    "block_events",
    "block_functions",
    "configure",
    "event",
    "force_flush",
    "get_info",
    "get_level",
    "get_pipeline",
    "get_tracker",
    "log",
    "register_representation",
    "replay",
    "set_level",
    "shutdown",
    "stats",
    "timer",
    "traced_usage",
    "transaction",
    "usage_context",
]
