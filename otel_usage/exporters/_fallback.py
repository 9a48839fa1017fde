"""Keeping what a sink could not take: a sink's spool, and :class:`ExportFailureFallback` for exporters on their own.

:func:`open_spool` opens a sink's spool and :func:`spill` appends undelivered records to it (counted as
``spooled:<name>``, with a warning at most every 10 s per sink); the delivery processor
(:mod:`otel_usage.exporters._delivery`) uses both. :class:`ExportFailureFallback` is what the project's
exporters call with a batch they failed to write: it spills it unless a delivery processor or ``replay()``
runs the export (:data:`MANAGED`), for then they own the failure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextvars import ContextVar

from opentelemetry.sdk._logs import ReadableLogRecord

from otel_usage import _counters
from otel_usage import environment_variables as ev
from otel_usage._config import SPOOL_DIR, SPOOL_MAX_BYTES
from otel_usage._schema import is_usage_log_record
from otel_usage._warnings import RateLimitedLog
from otel_usage.exporters._sink import sink_key, spool_root
from otel_usage.exporters._spool import Spool, encode_record

__all__ = [
    "DEFAULT_SPOOL_MAX_BYTES",
    "ExportFailureFallback",
    "MANAGED",
    "delivery_managed",
    "open_spool",
    "spill",
]

logger = logging.getLogger(__name__)

DEFAULT_SPOOL_MAX_BYTES = SPOOL_MAX_BYTES.default

#: True while an exporter runs under a UsageBatchProcessor worker or replay(): they own its failures.
MANAGED: ContextVar[bool] = ContextVar("otel_usage_delivery_managed", default=False)


def delivery_managed() -> bool:
    """True while the calling code runs under a ``UsageBatchProcessor`` worker or ``replay()``."""
    return MANAGED.get()


def open_spool(
    spool_dir: str | os.PathLike[str] | bool | None, name: str, max_bytes: int, exporter: object | None = None
) -> Spool | None:
    """The spool of sink ``name``: in ``spool_dir``, else in the sink's subdirectory of :func:`spool_root`.

    None when the spool is off (``spool_dir`` False or empty, or :func:`spool_root` None), or when the default
    per-user directory cannot be used (with a warning).

    Raises:
        ValueError: a directory given by ``spool_dir`` or :envvar:`OTEL_USAGE_SPOOL_DIR` cannot be used.
    """
    if spool_dir is False:
        return None
    if spool_dir is not None and spool_dir is not True:
        if not os.fspath(spool_dir):
            return None
        directory, source = os.fspath(spool_dir), "spool_dir"
    else:
        root = spool_root()
        if root is None:
            return None
        directory = os.path.join(root, sink_key(name, exporter))
        source = ev.OTEL_USAGE_SPOOL_DIR if SPOOL_DIR.from_env() else ""
    try:
        return Spool.create(directory, name, max_bytes)
    except OSError as exc:
        if not source:  # the default per-user directory: run without a spool rather than not at all
            logger.warning(
                "otel_usage: no spool for %s (%s cannot be used: %s); set %s to a writable directory",
                name,
                directory,
                exc,
                ev.OTEL_USAGE_SPOOL_DIR,
            )
            return None
        raise ValueError(f"{source}={directory!r} cannot be used as a spool directory: {exc}") from exc


_warnings = RateLimitedLog(10.0)


def _warn(key: str, msg: str, *args: object) -> None:
    if _warnings.allow(key):
        logger.warning(msg, *args)


def spill(spool: Spool, name: str, records: Sequence[ReadableLogRecord], error: str) -> None:
    """Append ``records`` (not delivered because of ``error``) to ``spool``; what it cannot take is counted."""
    try:
        stored = spool.append([encode_record(r) for r in records])
    except OSError as exc:
        _counters.count_drop(f"spool_failed:{name}", len(records), detail=f"{spool.path}: {exc}")
        return
    if stored:
        _counters.count(f"spooled:{name}", stored)
        _warn(
            f"spooled:{name}",
            "otel_usage: %d usage log(s) for %s not delivered (%s); kept in %s (%d in all), re-sent when it recovers",
            stored,
            name,
            error,
            spool.path,
            _counters.counter(f"spooled:{name}"),
        )
    _counters.count_drop(f"spool_full:{name}", len(records) - stored, detail=spool.path)


class ExportFailureFallback:
    """What an exporter does with a batch it failed to write when no ``UsageBatchProcessor`` owns it.

    The SDK's ``BatchLogRecordProcessor`` (and ``SimpleLogRecordProcessor``) discard a failed batch
    without a trace. An exporter calls this object with such a batch: under a ``UsageBatchProcessor`` or
    ``replay()`` it does nothing (they retry, spill or count); otherwise the usage logs are spilled to
    the spool (``spool_dir``, else the sink's subdirectory of :func:`spool_root`; re-sent by
    :func:`~otel_usage.replay`) or, with the spool off, counted as ``export_failed:<name>``. Pass ``exporter`` to get
    the same per-sink subdirectory as a ``UsageBatchProcessor`` of that exporter (else ``<root>/<name>``).

    Raises:
        ValueError: the spool directory cannot be written.
    """

    def __init__(
        self,
        name: str,
        spool_dir: str | os.PathLike[str] | bool | None = None,
        spool_max_bytes: int | None = None,
        exporter: object | None = None,
    ) -> None:
        self.name = name
        self._spool = open_spool(spool_dir, name, SPOOL_MAX_BYTES.resolve(spool_max_bytes), exporter)

    def __call__(self, batch: Sequence[ReadableLogRecord], error: str) -> None:
        if MANAGED.get():
            return
        records = [r for r in batch if is_usage_log_record(r)]
        if not records:
            return
        if self._spool is None:
            _counters.count_drop(f"export_failed:{self.name}", len(records), detail=error)
        else:
            spill(self._spool, self.name, records, error)
