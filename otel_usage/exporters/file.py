"""``FileUsageExporter``: usage logs as JSON Lines in a file, safe for several processes, with rotation.

One usage log per line: UTF-8, ``ensure_ascii=False``, compact separators; other log records are
ignored. Put it behind :class:`~otel_usage.exporters.UsageBatchProcessor`, or select it with
``OTEL_LOGS_EXPORTER=usage_file`` (then it is built with no arguments and reads)::

    OTEL_USAGE_FILE_PATH          the file (default usage.jsonl in the working directory)
    OTEL_USAGE_FILE_MAX_BYTES     rotate before a batch would make it larger; 0 never (default 0)
    OTEL_USAGE_FILE_BACKUP_COUNT  rotated files kept: usage.jsonl.1 (newest) .. .N (default 5)
    OTEL_USAGE_FILE_FSYNC         never | batch (default never)

Several processes (pre-fork workers) may append to the same file, rotation included, without ever
interleaving or cutting lines, and without any file beside it. Each batch becomes one buffer written by
one ``write`` loop on an ``O_APPEND`` descriptor while the process holds an exclusive ``flock`` on that
very file. Once the lock is held the path is checked again: if it names another file now (another process
rotated it while this one waited), the lock is released, the new file opened and locked instead.
Everything that depends on the file is done under that lock: checking the size, rotating (then the new
file is locked and its size checked again), writing, fsync. So at any moment one writer, in one process,
appends whole lines to the current file. If a write fails half way the file is cut back to its previous
size, so the next batch starts on a line boundary. Lines reach the operating system at every batch (no
buffering in the process); ``fsync=batch`` also forces them to the disk.

A body that JSON cannot encode (an object, a NaN, a cycle) still produces a line: the unencodable parts
become strings (``repr``), and the log is counted as ``unserializable:file``. Another line format can be
plugged in with ``formatter`` (a function from the usage log dict to one line, without its newline).

An unwritable path (directory missing and not creatable, no permission, a directory) is a ``ValueError``
at construction. A write that fails later returns ``FAILURE``: a ``UsageBatchProcessor`` retries it; under
the SDK's own processors the batch is spilled to ``OTEL_USAGE_SPOOL_DIR`` or counted as
``export_failed:file`` (:class:`~otel_usage.exporters._fallback.ExportFailureFallback`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_usage import _counters
from otel_usage import environment_variables as ev
from otel_usage._config import FILE_BACKUP_COUNT, FILE_FORMAT, FILE_FSYNC, FILE_MAX_BYTES, FILE_PATH
from otel_usage._errors import internal_error
from otel_usage._schema import UsageLog, usage_log_of
from otel_usage.exporters._fallback import ExportFailureFallback
from otel_usage.exporters._sink import default_name
from otel_usage.exporters._spool import write_all

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the threads of this process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileUsageExporter", "json_line"]

logger = logging.getLogger(__name__)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_MAX_DEPTH = 100


def json_line(log: UsageLog) -> str:
    """The default line format: compact JSON, non-ASCII kept (raises on values JSON cannot encode)."""
    return _ENCODER.encode(log)


def _jsonable(value: Any, depth: int = 0, active: frozenset[int] = frozenset()) -> Any:
    """``value`` with everything JSON cannot encode turned into a string."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth >= _MAX_DEPTH or id(value) in active:
        return "<cycle>" if id(value) in active else "<too deep>"
    if isinstance(value, Mapping):
        inner = active | {id(value)}
        return {
            k if isinstance(k, str) else str(_jsonable(k, depth + 1, inner)): _jsonable(v, depth + 1, inner)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        inner = active | {id(value)}
        return [_jsonable(v, depth + 1, inner) for v in value]
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails still gives a line
        return f"<unrepresentable {type(value).__name__}>"


def _named_format(key: str | None) -> Callable[[UsageLog], str] | None:
    """The formatter of a format name of :data:`~otel_usage._config.FILE_FORMAT` (None: json, the default)."""
    if key is None:
        return None
    from otel_usage.exporters._logdefer import format_logdefer  # the only other one

    return format_logdefer


class FileUsageExporter(LogRecordExporter):
    """Appends usage logs to a JSON Lines file (see the module documentation).

    Args:
        path: the file (``OTEL_USAGE_FILE_PATH``, default ``usage.jsonl``); its directory is created.
        max_bytes: rotation size, 0 for never (``OTEL_USAGE_FILE_MAX_BYTES``, 0).
        backup_count: rotated files kept, at least 1 when rotating (``OTEL_USAGE_FILE_BACKUP_COUNT``, 5).
        fsync: ``"never"`` or ``"batch"`` (``OTEL_USAGE_FILE_FSYNC``, never).
        formatter: turns a usage log into one line without its newline, or a format name: ``"json"``
            (default, :func:`json_line`) or ``"logdefer"`` (LogDefer's message, for LogDefer tooling)
            (``OTEL_USAGE_FILE_FORMAT``).

    Raises:
        ValueError: an invalid argument, or a path that cannot be written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int | None = None,
        backup_count: int | None = None,
        fsync: str | None = None,
        formatter: Callable[[UsageLog], str] | str | None = None,
    ) -> None:
        source = "path"
        if path is None:
            path, source = FILE_PATH.from_env(), ev.OTEL_USAGE_FILE_PATH
        self.path = os.path.abspath(os.fspath(path))
        self._max_bytes = FILE_MAX_BYTES.resolve(max_bytes)
        self._backup_count = FILE_BACKUP_COUNT.resolve(backup_count)
        if self._max_bytes and self._backup_count < 1:
            raise ValueError(
                "backup_count must be at least 1 when max_bytes is set (rotating without a backup would "
                "discard logs); use max_bytes=0 to never rotate"
            )
        self._fsync = FILE_FSYNC.resolve(fsync) == "batch"
        if formatter is None or isinstance(formatter, str):
            formatter = _named_format(FILE_FORMAT.resolve(formatter))
        if formatter is not None and not callable(formatter):
            raise ValueError(f"formatter must be callable, got {formatter!r}")
        self._formatter = formatter or json_line
        self._custom_format = formatter is not None
        self._name = default_name(self)
        self._thread_lock = threading.Lock()
        self._fd = -1
        self._ident: tuple[int, int] | None = None
        self._closed = False
        self._open_or_fail(source)
        self._fallback = ExportFailureFallback(self._name, exporter=self)

    def _open_or_fail(self, source: str) -> None:
        where = f"{source}={self.path!r}"
        if os.path.isdir(self.path):
            raise ValueError(f"{where} is a directory, not a file usage logs can be written to")
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with self._thread_lock:
                self._reopen()
        except OSError as exc:
            raise ValueError(f"{where} cannot be written: {exc}") from exc
        if not os.access(self.path, os.W_OK):
            raise ValueError(f"{where} cannot be written: no write permission")

    # --- LogRecordExporter -----------------------------------------------------------------------------

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Append the batch's usage logs, one line each, in one write; FAILURE if the file cannot take it."""
        if self._closed:
            self._fallback(batch, "the file exporter is shut down")
            return LogRecordExportResult.FAILURE
        try:
            lines = []
            for record in batch:
                log = usage_log_of(record)
                if log is not None:
                    lines.append(self._format(log))
            if not lines:
                return LogRecordExportResult.SUCCESS
            lines.append("")
            self._write("\n".join(lines).encode("utf-8", "backslashreplace"))
        except OSError as exc:
            self._fallback(batch, f"{self.path}: {exc}")
            logger.debug("writing usage logs to %s failed", self.path, exc_info=True)
            return LogRecordExportResult.FAILURE
        except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
            internal_error(exc, "FileUsageExporter.export")
            self._fallback(batch, f"{type(exc).__name__}: {exc}")
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered in the process: every batch is written when exported."""
        return True

    def shutdown(self) -> None:
        """Close the file (later exports fail). Safe to call twice."""
        if self._closed:
            return
        with self._thread_lock:
            self._closed = True
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            self._fd = -1

    # --- formatting ------------------------------------------------------------------------------------

    def _format(self, log: UsageLog) -> str:
        try:
            line = self._formatter(log)
        except Exception:  # noqa: BLE001 - counted; the log is written in a form that can be encoded
            line = self._format_unencodable(log)
        if self._custom_format and "\n" in line:
            line = line.replace("\n", "\\n")
        return line

    def _format_unencodable(self, log: UsageLog) -> str:
        _counters.count(f"unserializable:{self._name}")
        cleaned = _jsonable(log)
        if self._custom_format:
            with contextlib.suppress(Exception):
                return self._formatter(cleaned)
        return json_line(cleaned)

    # --- the file --------------------------------------------------------------------------------------

    def _reopen(self) -> None:
        """(Re)open the path for appending (the previous descriptor, if any, is closed)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        st = os.fstat(fd)
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)

    def _path_ident(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def _lock_current(self) -> int:
        """Take the flock of the file the path names now; its descriptor. Called with the thread lock."""
        while True:
            if self._fd < 0 or self._path_ident() != self._ident:
                self._reopen()
            fd = self._fd
            _flock(fd, True)
            if self._path_ident() == self._ident:  # still the current file: only this holder can move it now
                return fd
            _flock(fd, False)  # rotated away while this process waited: lock the new one

    def _rotate(self) -> None:
        """usage.jsonl.(N-1) -> .N (replacing the oldest), ..., usage.jsonl -> .1; called with the lock held.

        The old file stays open (and locked) until the caller releases it; the caller then locks whatever
        the path names next (a new file, maybe created by another process meanwhile) and checks its size
        again. Only the backups before the first missing one move, so the cost grows with the backups that
        exist.
        """
        last = 1
        while last < self._backup_count and os.path.exists(f"{self.path}.{last}"):
            last += 1
        for i in range(last - 1, 0, -1):
            os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")

    def _write(self, data: bytes) -> None:
        with self._thread_lock:
            if self._closed:
                raise OSError("the file exporter is shut down")
            while True:
                fd = self._lock_current()
                try:
                    size = os.fstat(fd).st_size
                    if self._max_bytes and size and size + len(data) > self._max_bytes:
                        self._rotate()
                        continue  # the finally releases the old file; then lock the new one
                    try:
                        write_all(fd, data)
                        if self._fsync:
                            os.fsync(fd)
                    except OSError:
                        with contextlib.suppress(OSError):
                            os.ftruncate(fd, size)  # no half line for the next batch to follow
                        raise
                    return
                finally:
                    with contextlib.suppress(OSError):
                        _flock(fd, False)


def _flock(fd: int, lock: bool) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX if lock else fcntl.LOCK_UN)
