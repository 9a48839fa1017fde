"""The settings table: every setting of the package, defined once (explicit argument > variable > default).

Each constant is a :class:`~otel_usage._settings.Setting` (the mechanism: an argument name, a variable of
:mod:`otel_usage.environment_variables`, a default and a rule) that its reader resolves when something is
configured or built: :class:`CoreSettings` (the frozen settings of the probes, the span processor and the
sampler), the pipeline (exporters, exit timeout, debug), the delivery processor and its spool, the file,
SQL and OTLP exporters, and the Flask instrumentation. A bad explicit argument raises ValueError; a bad
variable is one warning and the default.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_SDK_DISABLED,
)

from otel_usage import environment_variables as ev
from otel_usage._levels import DEFAULT_THRESHOLD, Level, parse_level
from otel_usage._schema import RESERVED_KEYS
from otel_usage._settings import Boolean, Choice, Integer, Names, Setting, Text

__all__ = [
    "BAGGAGE_ALLOW",
    "CORE",
    "CoreSettings",
    "DEBUG",
    "DURABILITY",
    "DURABILITY_MODES",
    "EXIT_TIMEOUT_MILLIS",
    "EXPORTERS",
    "EXPORT_BATCH_SIZE",
    "EXPORT_DELAY_MILLIS",
    "EXPORT_MAX_QUEUE_BYTES",
    "EXPORT_MAX_QUEUE_SIZE",
    "EXPORT_MAX_RETRY_MILLIS",
    "FILE_BACKUP_COUNT",
    "FILE_FORMAT",
    "FILE_FSYNC",
    "FILE_MAX_BYTES",
    "FILE_PATH",
    "FLASK",
    "FSYNC_POLICIES",
    "GRACE_MILLIS",
    "LEVEL",
    "LOG_BRIDGE",
    "LOG_VERBOSITY",
    "MAX_LOG_AGE_MILLIS",
    "MAX_PENDING_LOGS",
    "MAX_QUEUED_SPANS",
    "MAX_RECORDS_PER_LOG",
    "OTLP_LOGS_PROTOCOL",
    "OTLP_PROTOCOL",
    "OTLP_PROTOCOLS",
    "PARAM_MAX_DEPTH",
    "PARAM_MAX_ITEMS",
    "PARAM_MAX_LENGTH",
    "PARAM_MAX_SIZE",
    "RAISE_INTERNAL_ERRORS",
    "RECORD_UNSAMPLED",
    "REDACT",
    "REDACT_DEFAULTS",
    "REPLAY_BATCH_SIZE",
    "SCHEDULE_DELAY_MILLIS",
    "SDK_DISABLED",
    "SETTINGS",
    "SPOOL_DIR",
    "SPOOL_MAX_BYTES",
    "SQL_BUSY_TIMEOUT_MILLIS",
    "SQL_COLUMNS",
    "SQL_TABLE_PREFIX",
    "SQL_URL",
]

logger = logging.getLogger(__name__)


def _reserved_message(name: str, source: str) -> str:
    return (
        f"{source}: {name!r} is a reserved key of usage logs and cannot be allowed in from baggage "
        f"(allowed: any other info key; reserved: {', '.join(sorted(RESERVED_KEYS))})"
    )


@dataclasses.dataclass(frozen=True)
class _BaggageAllow(Names):
    """Names that are not reserved keys: a reserved one is left out with a warning (variable) or raises."""

    def parse(self, raw: str) -> tuple[str, ...]:
        names = super().parse(raw)
        for name in names:
            if name in RESERVED_KEYS:
                logger.warning("Ignoring %s", _reserved_message(name, str(self.variable)))
        return tuple(name for name in names if name not in RESERVED_KEYS)

    def check(self, value: Any) -> tuple[str, ...]:
        names = super().check(value)
        for name in names:
            if name in RESERVED_KEYS:
                raise ValueError(_reserved_message(name, self.name))
        return names


# --- Core: levels, limits, context (the fields of CoreSettings) -------------------------------------

LEVEL: Setting[Level] = Setting("level", ev.OTEL_USAGE_LEVEL, DEFAULT_THRESHOLD, parser=parse_level)
MAX_PENDING_LOGS = Integer("max_pending_logs", ev.OTEL_USAGE_MAX_PENDING_LOGS, 4096, minimum=1)
MAX_QUEUED_SPANS = Integer("max_queued_spans", ev.OTEL_USAGE_MAX_QUEUED_SPANS, 65_536, minimum=1)
MAX_RECORDS_PER_LOG = Integer("max_records_per_log", ev.OTEL_USAGE_MAX_RECORDS_PER_LOG, 1000, minimum=1)
MAX_LOG_AGE_MILLIS = Integer("max_log_age_millis", ev.OTEL_USAGE_MAX_LOG_AGE_MILLIS, 600_000, minimum=1)
GRACE_MILLIS = Integer("grace_millis", ev.OTEL_USAGE_GRACE_MILLIS, 2000, minimum=0)
SCHEDULE_DELAY_MILLIS = Integer("schedule_delay_millis", ev.OTEL_USAGE_SCHEDULE_DELAY_MILLIS, 200, minimum=1)
BAGGAGE_ALLOW = _BaggageAllow("baggage_allow", ev.OTEL_USAGE_BAGGAGE_ALLOW, ())
REDACT = Names("redact", ev.OTEL_USAGE_REDACT, ())
REDACT_DEFAULTS = Boolean("redact_defaults", ev.OTEL_USAGE_REDACT_DEFAULTS, True)
PARAM_MAX_DEPTH = Integer("param_max_depth", ev.OTEL_USAGE_PARAM_MAX_DEPTH, 6, minimum=1)
# An explicit argument has always been allowed below the variable's minimum (argument_minimum).
PARAM_MAX_LENGTH = Integer("param_max_length", ev.OTEL_USAGE_PARAM_MAX_LENGTH, 1024, minimum=8, argument_minimum=1)
PARAM_MAX_ITEMS = Integer("param_max_items", ev.OTEL_USAGE_PARAM_MAX_ITEMS, 100, minimum=1)
PARAM_MAX_SIZE = Integer("param_max_size", ev.OTEL_USAGE_PARAM_MAX_SIZE, 8192, minimum=64, argument_minimum=1)
RECORD_UNSAMPLED = Boolean("record_unsampled", ev.OTEL_USAGE_RECORD_UNSAMPLED, True)
LOG_VERBOSITY = Integer("log_verbosity", ev.OTEL_USAGE_LOG_VERBOSITY, 30)
LOG_BRIDGE = Boolean("log_bridge", ev.OTEL_USAGE_LOG_BRIDGE, False)

#: The settings of :class:`CoreSettings`, by field.
CORE: dict[str, Setting[Any]] = {
    s.name: s
    for s in (
        LEVEL,
        MAX_PENDING_LOGS,
        MAX_QUEUED_SPANS,
        MAX_RECORDS_PER_LOG,
        MAX_LOG_AGE_MILLIS,
        GRACE_MILLIS,
        SCHEDULE_DELAY_MILLIS,
        BAGGAGE_ALLOW,
        REDACT,
        REDACT_DEFAULTS,
        PARAM_MAX_DEPTH,
        PARAM_MAX_LENGTH,
        PARAM_MAX_ITEMS,
        PARAM_MAX_SIZE,
        RECORD_UNSAMPLED,
        LOG_VERBOSITY,
        LOG_BRIDGE,
    )
}

# --- Pipeline -----------------------------------------------------------------------------------------

EXPORTERS = Names("exporters", ev.OTEL_USAGE_EXPORTERS, ("file",))
EXIT_TIMEOUT_MILLIS = Integer("exit_timeout_millis", ev.OTEL_USAGE_EXIT_TIMEOUT_MILLIS, 5000, minimum=0)
DEBUG = Boolean("debug", ev.OTEL_USAGE_DEBUG, False)
RAISE_INTERNAL_ERRORS = Boolean("raise_internal_errors", ev.OTEL_USAGE_RAISE_INTERNAL_ERRORS, False)
SDK_DISABLED = Boolean("sdk_disabled", OTEL_SDK_DISABLED, False)

# --- Exporters: delivery (queues, retries, spool) -------------------------------------------------------

EXPORT_MAX_QUEUE_SIZE = Integer("max_queue_size", ev.OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE, 65_536, minimum=1)
EXPORT_MAX_QUEUE_BYTES = Integer("max_queue_bytes", ev.OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES, 16 << 20, minimum=1)
EXPORT_BATCH_SIZE = Integer("max_export_batch_size", ev.OTEL_USAGE_EXPORT_BATCH_SIZE, 512, minimum=1)
REPLAY_BATCH_SIZE = Integer("max_export_batch_size", None, EXPORT_BATCH_SIZE.default, minimum=1)  # no variable
EXPORT_DELAY_MILLIS = Integer("schedule_delay_millis", ev.OTEL_USAGE_EXPORT_DELAY_MILLIS, 1000, minimum=1)
EXPORT_MAX_RETRY_MILLIS = Integer("max_retry_millis", ev.OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS, 30_000, minimum=0)
SPOOL_DIR = Text("spool_dir", ev.OTEL_USAGE_SPOOL_DIR, "")
SPOOL_MAX_BYTES = Integer("spool_max_bytes", ev.OTEL_USAGE_SPOOL_MAX_BYTES, 256 << 20, minimum=1)
DURABILITY_MODES = ("memory", "disk")
DURABILITY = Choice("durability", ev.OTEL_USAGE_DURABILITY, "memory", choices=DURABILITY_MODES)

# --- Exporters: file, SQL, OTLP -------------------------------------------------------------------------

FSYNC_POLICIES = ("never", "batch")


def _file_format(raw: str) -> str | None:
    """A line format name: None for ``json`` (the default), ``"logdefer"``."""
    key = raw.strip().lower()
    if key not in ("json", "logdefer"):
        raise ValueError(f"unknown file format {raw!r} (expected json or logdefer)")
    return None if key == "json" else key


FILE_PATH = Text("path", ev.OTEL_USAGE_FILE_PATH, "usage.jsonl")
FILE_MAX_BYTES = Integer("max_bytes", ev.OTEL_USAGE_FILE_MAX_BYTES, 0, minimum=0)
FILE_BACKUP_COUNT = Integer("backup_count", ev.OTEL_USAGE_FILE_BACKUP_COUNT, 5, minimum=0)
FILE_FSYNC = Choice("fsync", ev.OTEL_USAGE_FILE_FSYNC, "never", choices=FSYNC_POLICIES)
FILE_FORMAT: Setting[str | None] = Setting("formatter", ev.OTEL_USAGE_FILE_FORMAT, None, parser=_file_format)

SQL_URL = Text("url", ev.OTEL_USAGE_SQL_URL, "sqlite:///usage.db")
SQL_TABLE_PREFIX = Text("table_prefix", ev.OTEL_USAGE_SQL_TABLE_PREFIX, "usage_")
SQL_COLUMNS = Text("columns", ev.OTEL_USAGE_SQL_COLUMNS, "")
SQL_BUSY_TIMEOUT_MILLIS = Integer("busy_timeout_millis", ev.OTEL_USAGE_SQL_BUSY_TIMEOUT_MILLIS, 10_000, minimum=0)

#: Protocols of the stock Python OTLP log exporters.
OTLP_PROTOCOLS = ("http/protobuf", "grpc")


def _otlp_protocol(value: Any) -> str:
    protocol = str(value).strip().lower()
    if protocol not in OTLP_PROTOCOLS:
        raise ValueError(f"unsupported OTLP protocol {value!r}; expected one of {', '.join(OTLP_PROTOCOLS)}")
    return protocol


OTLP_PROTOCOL = Choice("protocol", OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf", choices=OTLP_PROTOCOLS)
OTLP_LOGS_PROTOCOL = Choice(
    "protocol",
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTLP_PROTOCOL.default,
    checker=_otlp_protocol,
    fallback=OTLP_PROTOCOL,  # unset: the generic variable
    choices=OTLP_PROTOCOLS,
)

# --- Flask (also app.config keys, with the variables' names: see instrumentors/_flask_settings.py) -------


def _flask_mode(raw: Any) -> str:
    mode = str(raw).strip().lower()
    if mode not in ("include", "exclude"):
        raise ValueError(f"expected 'include' or 'exclude', got {raw!r}")
    return mode


def _flask_count(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer >= 0, got {raw!r}")
    value = int(raw)
    if value < 0:
        raise ValueError(f"expected an integer >= 0, got {raw!r}")
    return value


def _flask_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _flask_path(raw: Any) -> str | None:
    text = str(raw).strip()
    return text or None


#: The Flask settings, by field of ``FlaskUsageSettings``; their parsers take any value (an argument, an
#: ``app.config`` value or the variable's text) and are the rule of all three.
FLASK: dict[str, Setting[Any]] = {
    s.name: s
    for s in (
        Setting("mode", ev.OTEL_USAGE_FLASK_MODE, "exclude", parser=_flask_mode),
        Setting("trusted_proxies", ev.OTEL_USAGE_FLASK_TRUSTED_PROXIES, 0, parser=_flask_count),
        Setting("visitor_cookie", ev.OTEL_USAGE_FLASK_VISITOR_COOKIE, False, parser=_flask_bool),
        Setting("track_static", ev.OTEL_USAGE_FLASK_TRACK_STATIC, False, parser=_flask_bool),
        Setting("geoip_database", ev.OTEL_USAGE_FLASK_GEOIP_DATABASE, None, parser=_flask_path),
    )
}

#: Every setting of the table.
SETTINGS: tuple[Setting[Any], ...] = (
    *CORE.values(),
    EXPORTERS,
    EXIT_TIMEOUT_MILLIS,
    DEBUG,
    RAISE_INTERNAL_ERRORS,
    SDK_DISABLED,
    EXPORT_MAX_QUEUE_SIZE,
    EXPORT_MAX_QUEUE_BYTES,
    EXPORT_BATCH_SIZE,
    REPLAY_BATCH_SIZE,
    EXPORT_DELAY_MILLIS,
    EXPORT_MAX_RETRY_MILLIS,
    SPOOL_DIR,
    SPOOL_MAX_BYTES,
    DURABILITY,
    FILE_PATH,
    FILE_MAX_BYTES,
    FILE_BACKUP_COUNT,
    FILE_FSYNC,
    FILE_FORMAT,
    SQL_URL,
    SQL_TABLE_PREFIX,
    SQL_COLUMNS,
    SQL_BUSY_TIMEOUT_MILLIS,
    OTLP_PROTOCOL,
    OTLP_LOGS_PROTOCOL,
    *FLASK.values(),
)


# --- CoreSettings ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CoreSettings:
    """Settings of the probes, the span processor and the sampler (one field per setting of :data:`CORE`)."""

    level: Level = LEVEL.default
    max_pending_logs: int = MAX_PENDING_LOGS.default
    max_queued_spans: int = MAX_QUEUED_SPANS.default
    max_records_per_log: int = MAX_RECORDS_PER_LOG.default
    max_log_age_millis: int = MAX_LOG_AGE_MILLIS.default
    grace_millis: int = GRACE_MILLIS.default
    schedule_delay_millis: int = SCHEDULE_DELAY_MILLIS.default
    baggage_allow: tuple[str, ...] = BAGGAGE_ALLOW.default
    redact: tuple[str, ...] = REDACT.default
    redact_defaults: bool = REDACT_DEFAULTS.default
    param_max_depth: int = PARAM_MAX_DEPTH.default
    param_max_length: int = PARAM_MAX_LENGTH.default
    param_max_items: int = PARAM_MAX_ITEMS.default
    param_max_size: int = PARAM_MAX_SIZE.default
    record_unsampled: bool = RECORD_UNSAMPLED.default
    log_verbosity: int = LOG_VERBOSITY.default
    log_bridge: bool = LOG_BRIDGE.default

    @classmethod
    def from_env(cls, **overrides: Any) -> CoreSettings:
        """Build from the environment; keyword arguments (not None) win and are validated strictly.

        Raises:
            ValueError: an explicit argument is invalid or unknown.
        """
        values = {name: setting.from_env() for name, setting in CORE.items()}
        for key, value in overrides.items():
            if key not in CORE:
                raise ValueError(f"unknown setting {key!r}")
            if value is not None:
                values[key] = CORE[key].check(value)
        return cls(**values)
