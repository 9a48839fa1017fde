"""otel_usage: structured usage logs of what your application's users do, on OpenTelemetry."""

from otel_usage._levels import DEBUG, DEFAULT, INFO, NONE, Level, get_level, set_level
from otel_usage._stats import stats
from otel_usage.version import __version__

__all__ = [
    "DEBUG",
    "DEFAULT",
    "INFO",
    "NONE",
    "Level",
    "__version__",
    "get_level",
    "set_level",
    "stats",
]
