"""The local spool of usage logs an exporter could not deliver, and the file lock it shares with file.py.

One spool file per exporter name, ``<spool_dir>/<name>.jsonl``: JSON Lines, one log record per line,
holding everything needed to rebuild a ``ReadableLogRecord`` for any exporter, the stock OTLP one
included (:func:`encode_record` / :func:`decode_record`)::

    {"v":1,"body":{...},"timestamp":..,"observed_timestamp":..,"trace_id":"32 hex","span_id":"16 hex",
     "trace_flags":1,"severity_number":9,"severity_text":"INFO","event_name":"otel_usage.log",
     "attributes":{...},"resource":{...},"resource_schema_url":"","scope":{"name":..,"version":..}}

Several processes (pre-fork workers) may spill into and drain the same spool at once:

- ``<name>.jsonl.lock`` (``flock``) is held for a moment around every append and every bookkeeping
  step. It also stores how far the file has been delivered: ``"<inode> <offset>"``. Appends are one
  ``write`` of whole lines under that lock, so a reader never sees half a line.
- ``<name>.jsonl.drain`` (``flock``, not waited for by the worker) makes one drainer at a time: it reads
  a chunk after the offset, exports it without holding the append lock, then moves the offset. A fully
  delivered file is deleted; a half-delivered one is compacted once its delivered prefix grows large.

Delivery from the spool is exactly once while processes live; a crash between a successful export and
the offset update re-sends that one chunk (at least once). The offset is always reset before its file
is replaced or deleted, so a crash can duplicate logs but never skip any.

``flock`` locks belong to an open file description, so separate ``open()`` calls exclude each other
across threads as well as processes; every lock is released with an explicit ``LOCK_UN``, so a
descriptor inherited by a forked child never keeps a lock alive. Without ``fcntl`` (Windows) the locks
only exclude threads of one process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Chunk", "Spool", "decode_record", "encode_record", "locked"]

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
SPOOL_VERSION = 1
#: A delivered prefix larger than this (and than half the file) is cut off the file.
COMPACT_BYTES = 1 << 20

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def locked(path: str, blocking: bool = True, mode: int = 0o666) -> Iterator[int | None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); yields its descriptor.

    With ``blocking=False`` yields None at once when another holder has it.
    """
    if fcntl is None:  # pragma: no cover - Windows: threads of this process only
        with _thread_locks_guard:
            lock = _thread_locks.setdefault(path, threading.Lock())
        if not lock.acquire(blocking):
            yield None
            return
        try:
            yield -1
        finally:
            lock.release()
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --- records <-> spool lines ---------------------------------------------------------------------


def _jsonable_attributes(attributes: Any) -> dict[str, Any] | None:
    if not attributes:
        return None
    return {str(k): list(v) if isinstance(v, tuple) else v for k, v in dict(attributes).items()}


def encode_record(record: ReadableLogRecord) -> bytes:
    """One spool line (UTF-8, without its newline) for ``record``; never raises on odd values (``repr``)."""
    lr = record.log_record
    scope = record.instrumentation_scope
    entry: dict[str, Any] = {
        "v": SPOOL_VERSION,
        "body": lr.body,
        "timestamp": lr.timestamp,
        "observed_timestamp": lr.observed_timestamp,
        "trace_id": f"{lr.trace_id:032x}" if lr.trace_id else None,
        "span_id": f"{lr.span_id:016x}" if lr.span_id else None,
        "trace_flags": int(lr.trace_flags) if lr.trace_flags is not None else None,
        "severity_number": lr.severity_number.value if lr.severity_number is not None else None,
        "severity_text": lr.severity_text,
        "event_name": lr.event_name,
        "attributes": _jsonable_attributes(lr.attributes),
        "resource": _jsonable_attributes(record.resource.attributes) if record.resource else None,
        "resource_schema_url": record.resource.schema_url if record.resource else "",
        "scope": None
        if scope is None
        else {
            "name": scope.name,
            "version": scope.version,
            "schema_url": scope.schema_url,
            "attributes": _jsonable_attributes(scope.attributes),
        },
    }
    try:
        return orjson.dumps(entry)  # 5-10x faster than json; refuses what JSON cannot say exactly
    except (TypeError, ValueError):  # non-string keys, integers beyond 64 bits, cycles: the lenient way
        return json.dumps(entry, separators=(",", ":"), default=repr).encode("utf-8", "backslashreplace")


def decode_record(line: str | bytes) -> ReadableLogRecord:
    """The log record a spool line holds.

    Raises:
        ValueError: the line is not a spool entry.
    """
    entry = orjson.loads(line)
    if not isinstance(entry, dict) or entry.get("v") != SPOOL_VERSION:
        raise ValueError("not a spool entry of version 1")
    context = Context()
    if entry.get("trace_id") and entry.get("span_id"):
        span_context = trace.SpanContext(
            int(entry["trace_id"], 16),
            int(entry["span_id"], 16),
            is_remote=False,
            trace_flags=trace.TraceFlags(entry.get("trace_flags") or 0),
        )
        context = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
    severity = entry.get("severity_number")
    log_record = LogRecord(
        timestamp=entry.get("timestamp"),
        observed_timestamp=entry.get("observed_timestamp"),
        context=context,
        severity_text=entry.get("severity_text"),
        severity_number=SeverityNumber(severity) if severity is not None else None,
        body=entry.get("body"),
        attributes=entry.get("attributes"),
        event_name=entry.get("event_name"),
    )
    return ReadableLogRecord(
        log_record=log_record,
        resource=_resource(entry.get("resource") or {}, entry.get("resource_schema_url") or None),
        instrumentation_scope=_scope(entry.get("scope")),
    )


_resources: dict[str, Resource] = {}
_scopes: dict[str, InstrumentationScope | None] = {}


def _resource(attributes: dict[str, Any], schema_url: str | None) -> Resource:
    """The same few resources come back on every line: build each once (a bounded cache)."""
    key = repr((attributes, schema_url))
    resource = _resources.get(key)
    if resource is None:
        if len(_resources) > 64:
            _resources.clear()
        resource = _resources[key] = Resource(attributes, schema_url)
    return resource


def _scope(scope: Any) -> InstrumentationScope | None:
    if not scope:
        return None
    key = repr(scope)
    if key not in _scopes:
        if len(_scopes) > 64:
            _scopes.clear()
        _scopes[key] = InstrumentationScope(
            scope["name"], scope.get("version"), scope.get("schema_url"), scope.get("attributes")
        )
    return _scopes[key]


# --- the spool file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Lines read from a spool: ``lines[i]`` is one entry; ``end`` is the offset just after them."""

    start: int
    end: int
    lines: list[bytes]


class Spool:
    """One exporter's spool file, safe to share between threads and processes."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock_path = path + ".lock"
        self._drain_lock_path = path + ".drain"

    @classmethod
    def create(cls, directory: str | os.PathLike[str], name: str, max_bytes: int) -> Spool:
        """The spool of exporter ``name`` in ``directory`` (created if missing).

        Raises:
            OSError: the directory cannot be created or written.
        """
        directory = os.path.abspath(os.fspath(directory))
        os.makedirs(directory, exist_ok=True)
        spool = cls(os.path.join(directory, name + SPOOL_SUFFIX), max_bytes)
        with locked(spool._lock_path, mode=0o600):
            pass
        return spool

    # offsets: "<inode> <offset>" in the lock file, read and written while it is held

    def _read_offset(self, lock_fd: int, size: int, inode: int) -> int:
        if lock_fd < 0:  # pragma: no cover - Windows
            return self._fallback_offset if self._fallback_inode == inode and self._fallback_offset <= size else 0
        raw = os.pread(lock_fd, 64, 0).split()
        try:
            stored_inode, offset = int(raw[0]), int(raw[1])
        except (IndexError, ValueError):
            return 0
        return offset if stored_inode == inode and 0 <= offset <= size else 0

    def _write_offset(self, lock_fd: int, inode: int, offset: int) -> None:
        if lock_fd < 0:  # pragma: no cover - Windows
            self._fallback_inode, self._fallback_offset = inode, offset
            return
        data = f"{inode} {offset}\n".encode()
        os.pwrite(lock_fd, data, 0)
        os.ftruncate(lock_fd, len(data))

    _fallback_inode = -1
    _fallback_offset = 0

    def _stat(self) -> tuple[int, int]:
        """(size, inode) of the spool file; (0, -1) when there is none."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 0, -1
        return st.st_size, st.st_ino

    def pending_bytes(self) -> int:
        """Bytes not yet delivered (cheap when the spool is empty)."""
        size, inode = self._stat()
        if size == 0:
            return 0
        with locked(self._lock_path, mode=0o600) as fd:
            assert fd is not None
            size, inode = self._stat()
            return size - self._read_offset(fd, size, inode)

    def append(self, lines: Sequence[str | bytes], fsync: bool = True) -> int:
        """Append entries (one line each, no newline); returns how many fit under ``max_bytes``.

        With ``fsync`` the lines are on the disk when it returns; without, in the operating system's
        cache (they survive the process being killed, not a power loss).

        Raises:
            OSError: the spool cannot be written (nothing of this call was kept).
        """
        if not lines:
            return 0
        with locked(self._lock_path, mode=0o600) as lock_fd:
            assert lock_fd is not None
            size, inode = self._stat()
            room = self.max_bytes - (size - self._read_offset(lock_fd, size, inode))
            parts: list[bytes] = []
            used = 0
            for line in lines:
                data = (line if isinstance(line, bytes) else line.encode("utf-8", "backslashreplace")) + b"\n"
                if used + len(data) > room:
                    break
                parts.append(data)
                used += len(data)
            if not parts:
                return 0
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                before = os.fstat(fd).st_size
                try:
                    write_all(fd, b"".join(parts))
                    if fsync:
                        os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, before)
                    raise
            finally:
                os.close(fd)
            return len(parts)

    @contextlib.contextmanager
    def draining(self, blocking: bool = False) -> Iterator[Drainer | None]:
        """Be the only drainer of this spool for a while; yields None when another one is."""
        if not os.path.exists(self.path) and not blocking:
            yield None
            return
        with locked(self._drain_lock_path, blocking=blocking, mode=0o600) as fd:
            yield None if fd is None else Drainer(self)


class Drainer:
    """Reads a spool oldest first and moves its delivered offset (see :meth:`Spool.draining`)."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool

    def read(self, max_count: int, start: int | None = None) -> Chunk | None:
        """Up to ``max_count`` entries after ``start`` (default: the delivered offset); None at the end."""
        spool = self._spool
        with locked(spool._lock_path, mode=0o600) as lock_fd:
            assert lock_fd is not None
            size, inode = spool._stat()
            if start is None:
                start = spool._read_offset(lock_fd, size, inode)
            if start >= size:
                return None
            lines: list[bytes] = []
            try:
                with open(spool.path, "rb") as f:
                    f.seek(start)
                    end = start
                    while len(lines) < max_count:
                        line = f.readline()
                        if not line.endswith(b"\n"):
                            break
                        end += len(line)
                        lines.append(line)
            except FileNotFoundError:
                return None
            return Chunk(start, end, lines) if lines else None

    def commit(self, chunk: Chunk) -> None:
        """Mark ``chunk`` delivered: move the offset; delete or compact the file when worthwhile."""
        spool = self._spool
        with locked(spool._lock_path, mode=0o600) as lock_fd:
            assert lock_fd is not None
            size, inode = spool._stat()
            if inode < 0:
                return
            if chunk.end >= size:
                spool_inode = inode
                spool._write_offset(lock_fd, -1, 0)  # reset first: a crash re-sends, never skips
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(spool.path).st_ino == spool_inode:
                        os.unlink(spool.path)
                return
            if chunk.end >= COMPACT_BYTES and chunk.end * 2 >= size:
                self._compact(lock_fd, chunk.end)
                return
            spool._write_offset(lock_fd, inode, chunk.end)

    def _compact(self, lock_fd: int, offset: int) -> None:
        spool = self._spool
        tmp = spool.path + ".tmp"
        spool._write_offset(lock_fd, -1, 0)
        with open(spool.path, "rb") as src, open(tmp, "wb") as dst:
            src.seek(offset)
            while block := src.read(1 << 16):
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, spool.path)


def spool_files(path: str | os.PathLike[str]) -> list[str]:
    """The spool files at ``path``: the file itself, or every ``*.jsonl`` in a directory and in its
    subdirectories one level down (the spool root holds one subdirectory per sink), sorted."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return [path]
    found: list[str] = []
    for entry in sorted(os.listdir(path)):
        if entry.startswith("."):
            continue
        full = os.path.join(path, entry)
        if entry.endswith(SPOOL_SUFFIX) and os.path.isfile(full):
            found.append(full)
        elif os.path.isdir(full):
            found.extend(
                os.path.join(full, n)
                for n in sorted(os.listdir(full))
                if n.endswith(SPOOL_SUFFIX) and not n.startswith(".") and os.path.isfile(os.path.join(full, n))
            )
    return found
