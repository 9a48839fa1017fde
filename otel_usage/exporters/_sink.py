"""A sink's name and where its spool lives: :func:`default_name`, :func:`spool_root`, :func:`sink_key`.

Shared by the delivery processor (:mod:`otel_usage.exporters._delivery`), the exporters' own fallback
(:mod:`otel_usage.exporters._fallback`), the exporters themselves and the pipeline's exit line, so that a
sink goes by the same name, and finds the same spool, whoever asks.
"""

from __future__ import annotations

import hashlib
import os
import re

import platformdirs

from otel_usage._config import SPOOL_DIR

__all__ = ["SPOOL_OFF", "default_name", "sink_key", "spool_root"]

#: Values of OTEL_USAGE_SPOOL_DIR that turn the spool off.
SPOOL_OFF = ("none", "off", "false", "0", "disabled")


def default_name(exporter: object) -> str:
    """The name an exporter gets when none is given: its class without the suffix, lower case.

    ``FileUsageExporter`` -> ``file``, ``SqlUsageExporter`` -> ``sql``, ``OTLPLogExporter`` -> ``otlp``; a
    ``UsageOnlyExporter`` is named after the exporter it filters for.
    """
    if type(exporter).__name__ == "UsageOnlyExporter":
        exporter = getattr(exporter, "exporter", exporter)
    name = type(exporter).__name__
    for suffix in ("UsageExporter", "LogRecordExporter", "LogExporter", "Exporter"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lower().lstrip("_.-")[:100] or "exporter"


def spool_root() -> str | None:
    """The directory under which every sink gets its spool, or None when the spool is turned off.

    :envvar:`OTEL_USAGE_SPOOL_DIR` when set (``none`` turns the spool off); otherwise the per-user data
    directory, ``platformdirs.user_data_dir("otel-usage")/spool`` (``~/.local/share/otel-usage/spool`` on
    Linux). Each sink has its own subdirectory there (:func:`sink_key`).
    """
    raw = SPOOL_DIR.from_env()
    if raw.lower() in SPOOL_OFF:
        return None
    return raw or os.path.join(platformdirs.user_data_dir("otel-usage", appauthor=False), "spool")


def _identity(exporter: object) -> str | None:
    """What tells one sink from another of the same kind: a URL, a path or an endpoint."""
    for candidate in (exporter, getattr(exporter, "exporter", None), getattr(exporter, "_exporter", None)):
        if candidate is None:
            continue
        for attr in ("url", "path", "endpoint", "_endpoint"):
            value = getattr(candidate, attr, None)
            if isinstance(value, str) and value:
                return f"{type(candidate).__name__}:{value}"
    return None


def sink_key(name: str, exporter: object | None = None) -> str:
    """The subdirectory of a sink's spool: ``<name>-<12 hex digits of its URL, path or endpoint>``.

    The same sink gets the same directory in every process and every run (so a restarted application,
    another worker process and ``otel-usage replay`` find it); two databases never share one.
    """
    identity = _identity(exporter) if exporter is not None else None
    if identity is None:
        return name
    return f"{name}-{hashlib.sha256(identity.encode('utf-8', 'backslashreplace')).hexdigest()[:12]}"
