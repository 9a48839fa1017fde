"""``get_usage`` and the other reads: the same logs in the same shape from every store, and bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from otel_usage.query import JsonlStore, QueryError, SqlStore, StoreError, get_usage, open_store
from tests.reading.conftest import make_logs, write_jsonl


def _normal(log: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in log.items() if k != "start"} | {"start": log["start"].isoformat()}


def test_pages_are_the_same_from_every_store(store_url: str, logs: list[dict[str, Any]]) -> None:
    """Newest first, paged, with filters: every store returns the same logs, start as an aware datetime."""
    newest = [log for _, log in sorted(enumerate(logs), key=lambda item: (item[1]["start"], item[0]), reverse=True)]
    first = get_usage(store_url, limit=25)
    second = get_usage(store_url, limit=25, page=2)
    assert [log["trace_id"] for log in first + second] == [log["trace_id"] for log in newest[:50]]
    assert all(isinstance(log["start"], dt.datetime) and log["start"].tzinfo is not None for log in first)
    original = {log["trace_id"]: log for log in logs}
    sample = first[0]
    assert {k: v for k, v in sample.items() if k != "start"} == {
        k: v for k, v in original[sample["trace_id"]].items() if k != "start"
    }
    alice = get_usage(store_url, limit=1000, request__username="alice", endpoint=["notes.show", "api.list"])
    expected = {
        log["trace_id"]
        for log in logs
        if log["request"]["username"] == "alice" and log["request"]["endpoint"] in ("notes.show", "api.list")
    }
    assert {log["trace_id"] for log in alice} == expected and expected
    anonymous = get_usage(store_url, limit=1000, endpoint=None)
    assert {log["trace_id"] for log in anonymous} == {x["trace_id"] for x in logs if x["request"]["endpoint"] is None}


def test_time_range_and_other_filters(store_url: str, logs: list[dict[str, Any]]) -> None:
    """start/end (ISO strings) and filters on status, service, http_status, function and trace_id."""
    with open_store(store_url) as store:
        window = store.get_usage(start="2026-10-24T00:00:00Z", end="2026-10-24T12:00", limit=1000)
        expected = [x for x in logs if "2026-10-24T00:00:00" <= x["start"] < "2026-10-24T12:00:00"]
        assert len(window) == len(expected) > 0
        assert store.count(status="error", service="api") == sum(
            x["status"] == "error" and x["service"] == "api" for x in logs
        )
        assert store.count(http_status=404) == sum(x["request"]["status"] == 404 for x in logs)
        get_note = "notes_app.services.get_note"
        assert store.count(function=get_note) == sum(any(c["function"] == get_note for c in x["data"]) for x in logs)
        assert store.count(function=None) == sum(not x["data"] for x in logs)
        assert store.count(browser="Firefox", os="Linux") == sum(
            x["request"]["user_agent"]["browser"] == "Firefox" for x in logs
        )
        trace = store.get_trace(logs[5]["trace_id"])
        assert [log["span_id"] for log in trace] == [logs[5]["span_id"]]
        assert store.get_trace("f" * 32) == []
        streamed = [log["trace_id"] for log in store.iter_usage(tenant="acme")]
        assert sorted(streamed) == sorted(x["trace_id"] for x in logs if x["tenant"] == "acme")
        if not store_url.endswith(".jsonl"):  # SQL: oldest first; a file: the order written
            starts = [x["start"] for x in store.iter_usage(tenant="acme")]
            assert starts == sorted(starts)


def test_sql_exporter_get_usage_still_works(sqlite_store: str, logs: list[dict[str, Any]]) -> None:
    """The exporter's own get_usage reads the same database."""
    from otel_usage.exporters.sql import SqlUsageExporter

    exporter = SqlUsageExporter(sqlite_store)
    try:
        assert len(exporter.get_usage(limit=1000)) == len(logs)
    finally:
        exporter.shutdown()


def _digest(folder: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(folder))
        if not name.endswith(("-wal", "-shm"))
    }


def test_reading_never_changes_the_store(tmp_path: Path) -> None:
    """Every read leaves the SQLite file and the JSONL files byte for byte as they were."""
    from tests.reading.conftest import write_sql

    logs = make_logs(40)
    write_sql(f"sqlite:///{tmp_path / 'usage.db'}", logs)
    write_jsonl(tmp_path / "usage.jsonl", logs, max_bytes=5000)
    before = _digest(tmp_path)
    for name in ("usage.db", str(tmp_path / "usage.jsonl")):
        with open_store(tmp_path / name if name == "usage.db" else name) as store:
            store.get_usage(limit=5)
            store.stats(by="endpoint", per="hour", tz="Europe/Paris")
            store.count(function="notes_app.render")
            list(store.iter_usage())
    assert _digest(tmp_path) == before


def test_corrupt_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    """A cut line, a non-JSON line and a log without a start are skipped, counted and located."""
    logs = make_logs(10)
    path = tmp_path / "usage.jsonl"
    write_jsonl(path, logs)
    with path.open("a") as handle:
        handle.write('{"trace_id": "ab", "start": "never"}\nnot json at all\n\n[1, 2]\n{"trace_id": "cd", "sta')
    store = JsonlStore(path)
    assert store.count() == 10
    assert store.skipped == 4
    assert store.skipped_at[0] == f"{path}:11"
    result = store.stats(by="endpoint")
    assert result.skipped == 4 and sum(row.hits for row in result.rows) == 10


def test_unreadable_stores_are_store_errors(tmp_path: Path) -> None:
    """Missing files, a file that is not a database, a database without usage tables, bad URLs."""
    with pytest.raises(StoreError, match="no such file"):
        open_store(tmp_path / "missing.jsonl")
    with pytest.raises(StoreError, match="no such file"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()  # never created by a read
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot read"):
        open_store(tmp_path / "junk.db")
    import sqlite3

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="no usage tables"):
        SqlStore(f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(QueryError, match="not 'mysql'"):
        open_store("mysql://u@h/db")
    with pytest.raises(StoreError, match="is a directory"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="cannot read"):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_bad_pages_and_filters(sqlite_store: str) -> None:
    """limit/page below 1 and malformed field names are QueryErrors."""
    with open_store(sqlite_store) as store:
        for arguments in ({"limit": 0}, {"page": 0}, {"limit": True}):
            with pytest.raises(QueryError, match="must be an integer >= 1"):
                store.get_usage(**arguments)
        with pytest.raises(QueryError, match="invalid field"):
            store.get_usage(**{"info.bad key": 1})
        with pytest.raises(QueryError, match="empty list"):
            store.get_usage(endpoint=[])


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sql_connections_are_read_only(kind: str, request: pytest.FixtureRequest) -> None:
    """The store's own connections refuse writes (SQLite opened mode=ro, PostgreSQL READ ONLY)."""
    from sqlalchemy import exc, text

    store = SqlStore(request.getfixturevalue(f"{kind}_store"))
    try:
        with store._engine.connect() as conn, pytest.raises(exc.DBAPIError, match=r"(?i)read.only|readonly"):
            conn.execute(text("CREATE TABLE intruder (x integer)"))
    finally:
        store.close()
