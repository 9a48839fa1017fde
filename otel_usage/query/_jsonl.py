"""Reading a JSON Lines store: the file the :class:`FileUsageExporter` writes and its rotated files.

Every read is one streaming pass over ``usage.jsonl.N`` (oldest) ... ``usage.jsonl.1``, ``usage.jsonl``; memory
does not grow with the number of logs (except 8 bytes per duration for exact percentiles). A line that is
not a usage log (corrupt JSON, a cut line, no readable ``start``) is skipped and counted in
:attr:`JsonlStore.skipped`, with its place in :attr:`JsonlStore.skipped_at`.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson

from otel_usage._schema import UsageLog
from otel_usage.query._fields import Field, QueryError, StoreError
from otel_usage.query._results import Aggregator, StatsRow
from otel_usage.query._store import Progress, Query, UsageStore, check_page

__all__ = ["JsonlStore", "parse_start"]

_MAX_SKIPPED_PLACES = 20


def parse_start(value: Any) -> dt.datetime | None:
    """A usage log's ``start`` as an aware UTC datetime; None when unreadable."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


class JsonlStore(UsageStore):
    """Usage logs in a JSON Lines file and its rotated files (read only).

    Args:
        path: the file (``usage.jsonl``); rotated files ``usage.jsonl.1`` .. ``.N`` beside it are read too.
        progress: called with (bytes read, bytes in all files) while scanning.

    Raises:
        StoreError: neither the file nor a rotated file exists, or it cannot be read.
    """

    def __init__(self, path: str | os.PathLike[str], progress: Progress | None = None) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.url = self.path
        self.progress = progress
        self._skipped = 0
        self.skipped_at: list[str] = []
        if os.path.isdir(self.path):
            raise StoreError(f"{self.path} is a directory, not a JSON Lines file of usage logs")
        if not self.files():
            raise StoreError(f"no usage logs at {self.path}: no such file")
        for name in self.files():
            if not os.access(name, os.R_OK):
                raise StoreError(f"cannot read {name}: permission denied")

    @property
    def skipped(self) -> int:
        return self._skipped

    def files(self) -> list[str]:
        """The files of the store, oldest first."""
        folder, base = os.path.split(self.path)
        pattern = re.compile(re.escape(base) + r"\.(\d+)\Z")
        try:
            names = os.listdir(folder or ".")
        except OSError:
            return []
        rotated = sorted(
            ((int(m.group(1)), os.path.join(folder, n)) for n in names if (m := pattern.match(n))), reverse=True
        )
        files = [name for _, name in rotated]
        if os.path.isfile(self.path):
            files.append(self.path)
        return files

    # --- scanning --------------------------------------------------------------------------------------

    def _skip(self, where: str) -> None:
        self._skipped += 1
        if len(self.skipped_at) < _MAX_SKIPPED_PLACES:
            self.skipped_at.append(where)

    def _decode(self, line: bytes, where: str) -> tuple[UsageLog, dt.datetime] | None:
        try:
            log = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._skip(where)
            return None
        start = parse_start(log.get("start")) if isinstance(log, dict) else None
        if start is None or not isinstance(log.get("trace_id"), str):
            self._skip(where)
            return None
        log["start"] = start
        return log, start

    def _scan(self, query: Query) -> Iterator[tuple[UsageLog, dt.datetime]]:
        """Matching logs with their start, in file order (oldest file first)."""
        files = self.files()
        total = 0
        for name in files:
            try:
                total += os.path.getsize(name)
            except OSError:
                pass
        done = 0
        for name in files:
            try:
                handle = open(name, "rb")  # noqa: SIM115 - closed below; a file may vanish by rotation
            except FileNotFoundError:
                continue  # rotated away since listed
            except OSError as exc:
                raise StoreError(f"cannot read {name}: {exc.strerror or exc}") from exc
            with handle:
                for number, line in enumerate(handle, 1):
                    done += len(line)
                    if self.progress is not None and number % 4096 == 0:
                        self.progress(done, total)
                    if not line.strip():
                        continue
                    decoded = self._decode(line, f"{name}:{number}")
                    if decoded is None:
                        continue
                    log, start = decoded
                    if query.in_range(start) and query.matches(log):
                        yield log, start
        if self.progress is not None:
            self.progress(total, total)

    # --- UsageStore ------------------------------------------------------------------------------------

    def get_usage(
        self, start: Any = None, end: Any = None, limit: int = 500, page: int = 1, **filters: Any
    ) -> list[UsageLog]:
        check_page(limit, page)
        query = Query(start, end, filters)
        keep = limit * page
        newest: list[tuple[dt.datetime, int, UsageLog]] = []
        for seq, (log, moment) in enumerate(self._scan(query)):
            item = (moment, seq, log)
            if len(newest) < keep:
                heapq.heappush(newest, item)
            elif item[:2] > newest[0][:2]:
                heapq.heapreplace(newest, item)
        ordered = sorted(newest, key=lambda item: (item[0], item[1]), reverse=True)
        return [log for _, _, log in ordered[(page - 1) * limit : page * limit]]

    def iter_usage(self, start: Any = None, end: Any = None, **filters: Any) -> Iterator[UsageLog]:
        query = Query(start, end, filters)
        for log, _ in self._scan(query):
            yield log

    def count(self, start: Any = None, end: Any = None, **filters: Any) -> int:
        query = Query(start, end, filters)
        return sum(1 for _ in self._scan(query))

    def _stats_rows(
        self, fields: list[Field], per: str | None, query: Query, names: list[str], top: int | None
    ) -> tuple[list[StatsRow], int]:
        aggregator = Aggregator(fields, per, query.tz)
        before = self._skipped
        for log, moment in self._scan(query):
            aggregator.add(log, moment)
        return aggregator.rows(names, top), self._skipped - before

    def get_trace(self, trace_id: str) -> list[UsageLog]:
        if not isinstance(trace_id, str) or not trace_id:
            raise QueryError(f"bad trace id {trace_id!r}")
        found = [
            (moment, seq, log) for seq, (log, moment) in enumerate(self._scan(Query(filters={"trace_id": trace_id})))
        ]
        return [log for _, _, log in sorted(found, key=lambda item: (item[0], item[1]))]

    def follow(self, poll_seconds: float = 1.0, **filters: Any) -> Iterator[UsageLog | None]:
        query = Query(filters=filters)
        handle = self._open_current()
        if handle is not None:
            handle.seek(0, os.SEEK_END)
        pending = b""
        counter = itertools.count(1)
        try:
            while True:
                found = False
                if handle is None:
                    handle = self._open_current()
                if handle is not None:
                    chunk = handle.read()
                    if chunk:
                        pending += chunk
                        *lines, pending = pending.split(b"\n")
                        for line in lines:
                            if not line.strip():
                                continue
                            decoded = self._decode(line, f"{self.path}:+{next(counter)}")
                            if decoded is not None and query.matches(decoded[0]):
                                found = True
                                yield decoded[0]
                    elif self._rotated(handle):
                        # everything of the old file is read: on to the files rotated after it, then the new one
                        newer = self._newer_than(handle)
                        handle.close()
                        handle, pending = self._open_current(), b""
                        for name in newer:
                            for log in self._whole(name):
                                if query.matches(log):
                                    found = True
                                    yield log
                        continue
                if not found:
                    yield None
                    time.sleep(poll_seconds)
        finally:
            if handle is not None:
                handle.close()

    def _open_current(self) -> Any:
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror or exc}") from exc

    def _newer_than(self, handle: Any) -> list[str]:
        """The rotated files written after the one ``handle`` reads (oldest first), the current file excluded."""
        own = os.fstat(handle.fileno())
        rotated = [name for name in self.files() if name != self.path]
        for i, name in enumerate(rotated):
            try:
                st = os.stat(name)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
                return rotated[i + 1 :]
        return []

    def _whole(self, name: str) -> Iterator[UsageLog]:
        try:
            with open(name, "rb") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        decoded = self._decode(line, f"{name}:{number}")
                        if decoded is not None:
                            yield decoded[0]
        except FileNotFoundError:
            return

    def _rotated(self, handle: Any) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        own = os.fstat(handle.fileno())
        return (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino)
