"""Re-sending a spool explicitly: :func:`replay`, to any exporter."""

from __future__ import annotations

import logging
import os

from opentelemetry.sdk._logs.export import LogRecordExporter

from otel_usage._config import REPLAY_BATCH_SIZE
from otel_usage._suppress import suppressed
from otel_usage.exporters._batches import decode_chunk, export_once
from otel_usage.exporters._fallback import DEFAULT_SPOOL_MAX_BYTES
from otel_usage.exporters._fallback import MANAGED as _managed
from otel_usage.exporters._spool import Spool, spool_files

__all__ = ["replay"]

logger = logging.getLogger("otel_usage.exporters._delivery")  # the delivery processor's logger


def _looks_like_spool(path: str) -> bool:
    """An empty or missing file, or one whose first line is a spool entry."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except FileNotFoundError:
        return True
    return not first or first.startswith(b'{"v":')


def replay(
    spool_dir_or_file: str | os.PathLike[str],
    exporter: LogRecordExporter,
    *,
    delete: bool = True,
    max_export_batch_size: int = REPLAY_BATCH_SIZE.default,
) -> int:
    """Re-send a spool (a spool file, or every ``*.jsonl`` spool in a directory) to ``exporter``.

    Oldest first, in batches, one attempt each; the first failure stops that file and keeps the rest of
    it. Waits for an automatic drain of the same spool by a running processor to finish its chunk.

    Args:
        spool_dir_or_file: a spool directory or one of its files.
        exporter: any ``LogRecordExporter``, the SDK's OTLP one included.
        delete: remove what was delivered from the spool; with False the spool is left as it is (and a
            later drain or replay sends the same logs again).
        max_export_batch_size: logs per export call.

    Returns:
        How many usage logs were delivered.

    Raises:
        FileNotFoundError: ``spool_dir_or_file`` does not exist.
        ValueError: ``max_export_batch_size`` is not a positive integer.
    """
    if not os.path.exists(spool_dir_or_file):
        raise FileNotFoundError(f"no spool at {os.fspath(spool_dir_or_file)!r}")
    batch_size = REPLAY_BATCH_SIZE.resolve(max_export_batch_size)
    delivered = 0
    with suppressed():
        managed = _managed.set(True)
        try:
            for path in spool_files(spool_dir_or_file):
                if not _looks_like_spool(path):
                    logger.warning("replay: %s is not a spool file; left as it is", path)
                    continue
                reason = f"spool_corrupt:{os.path.basename(path)[: -len('.jsonl')] or 'spool'}"
                with Spool(path, DEFAULT_SPOOL_MAX_BYTES).draining(blocking=True) as drainer:
                    assert drainer is not None
                    start: int | None = None
                    while (chunk := drainer.read(batch_size, start)) is not None:
                        records = decode_chunk(chunk.lines, reason)
                        if records:
                            ok, error = export_once(exporter, records)
                            if not ok:
                                logger.warning("replay of %s stopped: %s", path, error)
                                break
                            delivered += len(records)
                        if delete:
                            drainer.commit(chunk)
                        else:
                            start = chunk.end
        finally:
            _managed.reset(managed)
    return delivered
