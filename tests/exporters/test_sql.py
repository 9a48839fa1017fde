"""SqlUsageExporter on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor

from otel_usage import _counters
from otel_usage import environment_variables as ev
from otel_usage._schema import USAGE_LOG_EVENT
from otel_usage.exporters import _sql_schema as sql_schema_module
from otel_usage.exporters import _sqlite as sql_module
from otel_usage.exporters.sql import SqlUsageExporter
from tests._postgres import free_port
from tests.exporters.conftest import BASE_START, iso, make_log, make_record

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE


def as_stored(log: dict[str, Any]) -> dict[str, Any]:
    """What get_usage returns for ``log``: the same dict with ``start`` as an aware UTC datetime."""
    expected = dict(log)
    text = log["start"].replace("Z", "+00:00")
    expected["start"] = dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)
    return expected


def rows(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run raw SQL against the database (outside the exporter)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), params)]
    finally:
        engine.dispose()


@pytest.fixture
def exporter_factory() -> Any:
    """Build exporters and shut them all down after the test."""
    made: list[SqlUsageExporter] = []

    def make(*args: Any, **kwargs: Any) -> SqlUsageExporter:
        exporter = SqlUsageExporter(*args, **kwargs)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


def test_round_trip_returns_the_original_log(db_url: str, exporter_factory: Any) -> None:
    """A stored log comes back equal to the original, except start which is an aware UTC datetime."""
    exporter = exporter_factory(db_url)
    log = make_log(1, events=[["checkout", 0.001, {"total": 12.5}]], truncated={"records": 3})
    assert exporter.export([make_record(log)]) == SUCCESS
    (stored,) = exporter.get_usage()
    assert stored == as_stored(log)
    assert stored["start"].tzinfo is not None and stored["start"].utcoffset() == dt.timedelta(0)


def test_large_batches_span_several_statements(db_url: str, exporter_factory: Any, clean_stats: None) -> None:
    """Batches larger than one multi-row statement land whole, in order, with each call row under its own
    log, and a retry that overlaps stored logs adds only the new ones."""
    _check_large_batches(db_url, exporter_factory(db_url))


def test_sqlite_bound_variable_limit_is_honoured(
    tmp_path: Any, exporter_factory: Any, monkeypatch: pytest.MonkeyPatch, clean_stats: None
) -> None:
    """With a SQLite that allows few bound variables per statement, statements are cut to fit (SQLite itself
    enforces the lowered limit: a statement over it would fail the export)."""
    limits: list[int] = []
    asked = sql_module._variable_limit

    def low_limit(driver: Any) -> int:
        setlimit = getattr(driver, "setlimit", None)  # Python 3.11+: lower the real limit
        if setlimit is not None:
            setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 40)
        limits.append(asked(driver) if setlimit is not None else 40)
        return limits[-1]

    monkeypatch.setattr(sql_module, "_variable_limit", low_limit)
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    _check_large_batches(url, exporter_factory(url))
    assert limits and set(limits) == {40}


def _check_large_batches(db_url: str, exporter: SqlUsageExporter) -> None:
    logs = [make_log(i) for i in range(450)]
    assert exporter.export([make_record(log) for log in logs[:300]]) == SUCCESS
    assert exporter.export([make_record(log) for log in logs[150:]]) == SUCCESS
    assert rows(db_url, "SELECT count(*), count(DISTINCT trace_id) FROM usage_logs") == [(450, 450)]
    assert _counters.stats()["sql_logs_duplicate"] == 150
    pairs = rows(
        db_url,
        "SELECT l.trace_id, c.position, c.function FROM usage_calls c JOIN usage_logs l ON l.id = c.log_id "
        "ORDER BY l.id, c.position",
    )
    assert pairs == [
        (log["trace_id"], position, log["data"][position]["function"]) for log in logs for position in (0, 1)
    ]
    stored = exporter.get_usage(limit=500)
    assert [log["trace_id"] for log in stored] == [log["trace_id"] for log in reversed(logs)]
    assert stored[0] == as_stored(logs[-1])


def test_sqlite_rows_are_what_sqlalchemy_core_writes(tmp_path: Any, exporter_factory: Any) -> None:
    """The SQLite write path stores, column for column, exactly what a Core insert of the same log stores."""
    logs = [make_log(1, events=[["checkout", 0.001, {"total": 12.5}]]), make_log(2, parent_span_id="00f067aa0ba902b7")]
    logs[1]["data"][0]["exception"] = None
    fast_url = f"sqlite:///{tmp_path / 'fast.db'}"
    assert exporter_factory(fast_url, columns="user=user_name").export([make_record(log) for log in logs]) == SUCCESS
    core_url = f"sqlite:///{tmp_path / 'core.db'}"
    exporter_factory(core_url, columns="user=user_name").get_usage()  # the same schema, empty
    tables = sql_schema_module.SqlTables("usage_", {"user": "user_name"})
    engine = sa.create_engine(core_url, json_serializer=sql_schema_module.dumps)
    with engine.begin() as conn:
        for log in logs:
            item = tables.prepare(log)
            log_id = conn.execute(tables.logs.insert().returning(tables.logs.c.id), tables.log_row(item)).scalar_one()
            conn.execute(tables.calls.insert(), item.call_rows(log_id))
    engine.dispose()
    fast, core = sqlite3.connect(tmp_path / "fast.db"), sqlite3.connect(tmp_path / "core.db")
    try:
        for table in ("usage_logs", "usage_calls"):
            columns = [row[1] for row in fast.execute(f"PRAGMA table_info({table})")]
            # values and their SQLite storage classes (text vs integer vs real), column for column
            query = "SELECT " + ", ".join(f"{c}, typeof({c})" for c in columns) + f" FROM {table} ORDER BY 1, 3"
            fast_rows, core_rows = fast.execute(query).fetchall(), core.execute(query).fetchall()
            assert fast_rows == core_rows and len(fast_rows) >= 2
    finally:
        fast.close()
        core.close()


def test_json_columns_round_trip_values_orjson_refuses(
    db_url: str, exporter_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ints beyond 64 bits and non-string keys are stored by the standard encoder where orjson refuses,
    and everything reads back the same with orjson absent."""
    big = make_log(1, counter=2**70, scores={1: "one", None: "none"})
    assert exporter_factory(db_url).export([make_record(big)]) == SUCCESS
    monkeypatch.setattr(sql_schema_module, "_orjson", None)
    plain = make_log(2, counter=2**70)
    exporter = exporter_factory(db_url)
    assert exporter.export([make_record(plain)]) == SUCCESS
    by_trace = {log["trace_id"]: log for log in exporter.get_usage()}
    assert by_trace[big["trace_id"]] == as_stored({**big, "scores": {"1": "one", "null": "none"}})
    assert by_trace[plain["trace_id"]] == as_stored(plain)


def test_other_log_records_are_ignored(db_url: str, exporter_factory: Any) -> None:
    """Records that are not usage logs (other event names, plain bodies) are not stored."""
    exporter = exporter_factory(db_url)
    batch = [make_record(make_log(1), event_name="other"), make_record("plain text", event_name=USAGE_LOG_EVENT)]
    assert exporter.export(batch) == SUCCESS
    assert exporter.get_usage() == []


def test_call_records_are_rows(db_url: str, exporter_factory: Any) -> None:
    """Each call record of data becomes a row of the calls table, in order, so statistics run in SQL."""
    exporter = exporter_factory(db_url)
    assert exporter.export([make_record(make_log(i)) for i in range(3)]) == SUCCESS
    per_function = rows(
        db_url,
        "SELECT function, count(*), sum(CASE WHEN exception THEN 1 ELSE 0 END) FROM usage_calls "
        "GROUP BY function ORDER BY function",
    )
    assert per_function == [("shop.cart.add_item", 3, 0), ("shop.db.save", 3, 3)]
    calls = rows(
        db_url, "SELECT position, tracker, depth, level, start, duration FROM usage_calls ORDER BY log_id, position"
    )
    assert calls[:2] == [(0, "shop.cart", 0, "DEFAULT", 0.0, 0.0123), (1, "shop.db", 1, "INFO", 0.002, 0.004)]


def test_schema_is_created_once_and_versioned(db_url: str, exporter_factory: Any) -> None:
    """Two exporters on one database share one schema, recorded with its version."""
    first, second = exporter_factory(db_url), exporter_factory(db_url)
    assert first.export([make_record(make_log(1))]) == SUCCESS
    assert second.export([make_record(make_log(2))]) == SUCCESS
    assert exporter_factory(db_url).get_usage(limit=10) != []
    assert rows(db_url, "SELECT component, version FROM usage_schema") == [("otel_usage", 1)]
    assert rows(db_url, "SELECT count(*) FROM usage_logs") == [(2,)]


def _race_worker(url: str, barrier: Any, worker: int) -> None:
    barrier.wait(timeout=60)
    exporter = SqlUsageExporter(url, columns="user=user_name,tenant")
    batch = [make_record(make_log(worker * 100 + i)) for i in range(25)]
    result = exporter.export(batch)
    exporter.shutdown()
    if result != LogRecordExportResult.SUCCESS:
        raise SystemExit(3)


def test_schema_creation_race(db_url: str) -> None:
    """Four processes creating the schema and inserting at once on a fresh database: no error, all rows."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_race_worker, args=(db_url, barrier, w)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    assert rows(db_url, "SELECT count(*), count(DISTINCT trace_id) FROM usage_logs") == [(100, 100)]
    assert rows(db_url, "SELECT count(*) FROM usage_calls") == [(200,)]
    assert rows(db_url, "SELECT component, version FROM usage_schema") == [("otel_usage", 1)]


def test_column_mapping(db_url: str, exporter_factory: Any) -> None:
    """Mapped info keys land in their columns: strings as is, other values as JSON text, missing as NULL."""
    exporter = exporter_factory(db_url, columns="user=user_name,tenant,request.path=path,cart")
    logs = [make_log(1, user="alice"), make_log(2, user=42, tenant=None, cart={"n": 2, "a": [1]})]
    assert exporter.export([make_record(log) for log in logs]) == SUCCESS
    stored = rows(db_url, "SELECT user_name, tenant, path, cart FROM usage_logs ORDER BY start")
    assert stored == [("alice", "acme", "/cart/1", None), ("42", None, "/cart/2", '{"a":[1],"n":2}')]
    assert exporter.columns == {"user": "user_name", "tenant": "tenant", "request.path": "path", "cart": "cart"}


def test_column_mapping_from_environment(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, exporter_factory: Any) -> None:
    """With no arguments the URL, prefix and column mapping come from OTEL_USAGE_SQL_* variables."""
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv(ev.OTEL_USAGE_SQL_URL, url)
    monkeypatch.setenv(ev.OTEL_USAGE_SQL_COLUMNS, "user=user_name, tenant")
    monkeypatch.setenv(ev.OTEL_USAGE_SQL_TABLE_PREFIX, "app_")
    exporter = exporter_factory()
    assert exporter.export([make_record(make_log(1, user="bob"))]) == SUCCESS
    assert rows(url, "SELECT user_name, tenant FROM app_logs") == [("bob", "acme")]


def test_default_url_is_usage_db_in_working_directory(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, exporter_factory: Any
) -> None:
    """Constructible with no arguments at all: sqlite:///usage.db in the working directory."""
    monkeypatch.chdir(tmp_path)
    for name in (ev.OTEL_USAGE_SQL_URL, ev.OTEL_USAGE_SQL_COLUMNS, ev.OTEL_USAGE_SQL_TABLE_PREFIX):
        monkeypatch.delenv(name, raising=False)
    exporter = exporter_factory()
    assert exporter.url == "sqlite:///usage.db"
    assert exporter.export([make_record(make_log(1))]) == SUCCESS
    assert (tmp_path / "usage.db").exists()


def test_new_promoted_column_is_added_to_an_existing_table(db_url: str, exporter_factory: Any) -> None:
    """Promoting another info key later adds its column instead of failing every insert."""
    assert exporter_factory(db_url, columns="user").export([make_record(make_log(1))]) == SUCCESS
    later = exporter_factory(db_url, columns="user,tenant")
    assert later.export([make_record(make_log(2, tenant="globex"))]) == SUCCESS
    assert rows(db_url, "SELECT tenant FROM usage_logs ORDER BY start") == [(None,), ("globex",)]
    assert [log["trace_id"] for log in later.get_usage(tenant="globex")] == [make_log(2)["trace_id"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": "user=user name"}, "invalid column name"),
        ({"columns": "user=1abc"}, "invalid column name"),
        ({"columns": "user=x;DROP TABLE usage_logs"}, "invalid column name"),
        ({"columns": 'user=a"b'}, "invalid column name"),
        ({"columns": "user=" + "a" * 64}, "invalid column name"),
        ({"columns": "user=start"}, "clashes with a built-in column"),
        ({"columns": "user=ID"}, "clashes with a built-in column"),
        ({"columns": "user=a,tenant=a"}, "used twice"),
        ({"columns": "data=payload"}, "not an info key"),
        ({"columns": "user="}, "expected 'key=column'"),
        ({"columns": {"user": "bad-name"}}, "invalid column name"),
        ({"table_prefix": "bad-prefix"}, "invalid table prefix"),
        ({"table_prefix": "x" * 60}, "too long"),
        ({"busy_timeout_millis": -1}, "busy_timeout_millis"),
    ],
)
def test_invalid_identifiers_are_rejected(tmp_path: Any, kwargs: dict[str, Any], message: str) -> None:
    """Names from configuration must be plain SQL identifiers: a clear ValueError otherwise."""
    with pytest.raises(ValueError, match=message):
        SqlUsageExporter(f"sqlite:///{tmp_path / 'x.db'}", **kwargs)


@pytest.mark.parametrize(
    ("name", "value"),
    [(ev.OTEL_USAGE_SQL_COLUMNS, "user=user-name"), (ev.OTEL_USAGE_SQL_TABLE_PREFIX, "usage logs")],
)
def test_invalid_identifiers_from_environment_are_errors(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """A bad name in the environment is an error naming the variable (falling back would change the schema)."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        SqlUsageExporter(f"sqlite:///{tmp_path / 'x.db'}")


def test_values_are_bound_never_spliced(db_url: str, exporter_factory: Any) -> None:
    """Strings that look like SQL are stored verbatim and harm nothing."""
    evil = "x'; DROP TABLE usage_logs; --"
    exporter = exporter_factory(db_url, columns="user")
    log = make_log(1, user=evil, service=evil, status='"); DELETE FROM usage_calls; --')
    log["data"][0]["function"] = evil
    log["data"][0]["params"] = {evil: evil}
    assert exporter.export([make_record(log)]) == SUCCESS
    assert exporter.export([make_record(make_log(2))]) == SUCCESS
    (stored,) = exporter.get_usage(user=evil)
    assert stored == as_stored(log)
    assert rows(db_url, "SELECT count(*) FROM usage_calls") == [(4,)]
    assert rows(db_url, "SELECT function FROM usage_calls WHERE position = 0 ORDER BY log_id") == [
        (evil,),
        ("shop.cart.add_item",),
    ]


def test_poisoned_log_is_isolated_and_counted(db_url: str, exporter_factory: Any, clean_stats: None) -> None:
    """A log the database rejects is dropped whole (no log row without its calls) and counted; the rest land."""
    exporter = exporter_factory(db_url)
    poisoned = make_log(2)
    poisoned["data"][1]["depth"] = 2**70  # out of range for an INTEGER column on both dialects
    good = [make_log(1), make_log(3)]
    assert exporter.export([make_record(good[0]), make_record(poisoned), make_record(good[1])]) == SUCCESS
    assert sorted(log["trace_id"] for log in exporter.get_usage()) == [good[0]["trace_id"], good[1]["trace_id"]]
    assert rows(db_url, "SELECT count(*) FROM usage_logs WHERE trace_id = :t", t=poisoned["trace_id"]) == [(0,)]
    assert rows(db_url, "SELECT count(*) FROM usage_calls") == [(4,)]
    assert _counters.stats()["dropped"] == {"sql_rejected_log": 1}
    # the same batch again (a retry) changes nothing and is not rejected twice over the stored logs
    assert exporter.export([make_record(good[0]), make_record(good[1])]) == SUCCESS
    assert rows(db_url, "SELECT count(*) FROM usage_logs") == [(2,)]


@pytest.mark.postgres
def test_nul_character_rejected_by_postgres_is_isolated(
    fresh_postgres_url: str, exporter_factory: Any, clean_stats: None
) -> None:
    """PostgreSQL refuses NUL characters in text and JSONB: only that log is lost, and counted."""
    exporter = exporter_factory(fresh_postgres_url)
    bad = make_log(2, user="nul\x00here")
    assert exporter.export([make_record(make_log(1)), make_record(bad), make_record(make_log(3))]) == SUCCESS
    assert len(exporter.get_usage()) == 2
    assert _counters.stats()["dropped"] == {"sql_rejected_log": 1}


@pytest.mark.parametrize(
    "bad",
    [
        {"trace_id": None},
        {"span_id": 5},
        {"start": "yesterday"},
        {"start": None},
    ],
)
def test_malformed_log_is_counted_and_skipped(
    tmp_path: Any, exporter_factory: Any, clean_stats: None, bad: dict[str, Any]
) -> None:
    """A usage log without ids or a readable start is counted as sql_invalid_log; the batch still lands."""
    exporter = exporter_factory(f"sqlite:///{tmp_path / 'x.db'}")
    assert exporter.export([make_record(make_log(1)), make_record(make_log(2, **bad))]) == SUCCESS
    assert [log["trace_id"] for log in exporter.get_usage()] == [make_log(1)["trace_id"]]
    assert _counters.stats()["dropped"] == {"sql_invalid_log": 1}


def test_duplicate_delivery_is_ignored(db_url: str, exporter_factory: Any, clean_stats: None) -> None:
    """Re-delivering logs (a retry after an ambiguous commit) never duplicates logs or call records."""
    exporter = exporter_factory(db_url)
    batch = [make_record(make_log(i)) for i in range(5)]
    assert exporter.export(batch) == SUCCESS
    assert exporter.export([*batch[2:], make_record(make_log(5)), make_record(make_log(5))]) == SUCCESS
    assert rows(db_url, "SELECT count(*), count(DISTINCT trace_id) FROM usage_logs") == [(6, 6)]
    assert rows(db_url, "SELECT count(*) FROM usage_calls") == [(12,)]
    assert exporter_factory(db_url).export(batch) == SUCCESS  # another exporter (process) too
    assert rows(db_url, "SELECT count(*) FROM usage_logs") == [(6,)]
    assert _counters.stats()["dropped_total"] == 0


def test_locked_database_is_a_transient_failure(tmp_path: Any, exporter_factory: Any) -> None:
    """When SQLite stays locked past the busy timeout, export returns FAILURE, writes nothing, never raises."""
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    exporter = exporter_factory(url, busy_timeout_millis=50)
    assert exporter.export([make_record(make_log(1))]) == SUCCESS
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert exporter.export([make_record(make_log(2)), make_record(make_log(3))]) == FAILURE
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rows(url, "SELECT count(*) FROM usage_logs") == [(1,)]
    assert exporter.export([make_record(make_log(2)), make_record(make_log(3))]) == SUCCESS
    assert len(exporter.get_usage()) == 3


def test_unreachable_postgres_is_a_transient_failure(exporter_factory: Any) -> None:
    """A PostgreSQL server that does not answer gives FAILURE (to retry), not an exception."""
    exporter = exporter_factory(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    assert exporter.export([make_record(make_log(1))]) == FAILURE


def test_dropped_table_is_recreated_on_retry(tmp_path: Any, exporter_factory: Any) -> None:
    """A missing table is a transient failure; the next attempt checks the schema again and succeeds."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    exporter = exporter_factory(url)
    assert exporter.export([make_record(make_log(1))]) == SUCCESS
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE usage_calls"))
        conn.execute(sa.text("DROP TABLE usage_logs"))
    engine.dispose()
    assert exporter.export([make_record(make_log(2))]) == FAILURE
    assert exporter.export([make_record(make_log(2))]) == SUCCESS
    assert [log["trace_id"] for log in exporter.get_usage()] == [make_log(2)["trace_id"]]


@pytest.fixture
def ten_logs(db_url: str, exporter_factory: Any) -> SqlUsageExporter:
    """An exporter holding ten logs, one a minute from BASE_START, users user0..user2, services a/b."""
    exporter = exporter_factory(db_url, columns="user=user_name,tenant")
    logs = [make_log(i, service="a" if i % 2 else "b", status="error" if i == 7 else "ok") for i in range(10)]
    assert exporter.export([make_record(log) for log in reversed(logs)]) == SUCCESS
    return exporter


def _numbers(logs: list[dict[str, Any]]) -> list[int]:
    return [int(log["trace_id"], 16) - 1 for log in logs]


def test_get_usage_newest_first_with_pages(ten_logs: SqlUsageExporter) -> None:
    """Logs come newest first; limit and page cut the list into pages."""
    assert _numbers(ten_logs.get_usage()) == list(range(9, -1, -1))
    assert _numbers(ten_logs.get_usage(limit=3)) == [9, 8, 7]
    assert _numbers(ten_logs.get_usage(limit=3, page=2)) == [6, 5, 4]
    assert _numbers(ten_logs.get_usage(limit=3, page=4)) == [0]
    assert ten_logs.get_usage(limit=3, page=5) == []


def test_get_usage_time_window(ten_logs: SqlUsageExporter) -> None:
    """start is inclusive, end exclusive; naive datetimes are UTC; other time zones are converted."""
    at = [BASE_START + dt.timedelta(minutes=i) for i in range(10)]
    assert _numbers(ten_logs.get_usage(start=at[3], end=at[6])) == [5, 4, 3]
    assert _numbers(ten_logs.get_usage(start=at[8].replace(tzinfo=None))) == [9, 8]
    assert _numbers(ten_logs.get_usage(end=at[2].replace(tzinfo=None))) == [1, 0]
    paris = dt.timezone(dt.timedelta(hours=1))
    assert _numbers(ten_logs.get_usage(start=at[4].astimezone(paris), end=at[5].astimezone(paris))) == [4]
    (log,) = ten_logs.get_usage(start=at[4], limit=1, page=6)
    assert log["start"] == at[4] and iso(log["start"]) == make_log(4)["start"]


def test_get_usage_filters(ten_logs: SqlUsageExporter) -> None:
    """Filters on top-level fields and promoted info keys (by key or column name), None and lists."""
    assert _numbers(ten_logs.get_usage(service="a")) == [9, 7, 5, 3, 1]
    assert _numbers(ten_logs.get_usage(status="error")) == [7]
    assert _numbers(ten_logs.get_usage(user="user1")) == [7, 4, 1]
    assert _numbers(ten_logs.get_usage(user_name="user1", service="a")) == [7, 1]
    assert _numbers(ten_logs.get_usage(user=["user0", "user2"], limit=3)) == [9, 8, 6]
    assert _numbers(ten_logs.get_usage(trace_id=make_log(3)["trace_id"])) == [3]
    assert ten_logs.get_usage(tenant=None) == []
    assert _numbers(ten_logs.get_usage(parent_span_id=None, limit=1)) == [9]


@pytest.mark.parametrize(
    "kwargs", [{"nope": 1}, {"data": []}, {"limit": 0}, {"page": 0}, {"limit": True}, {"page": "2"}]
)
def test_get_usage_rejects_bad_arguments(ten_logs: SqlUsageExporter, kwargs: dict[str, Any]) -> None:
    """An unknown filter or a bad page is a ValueError, not an empty result."""
    with pytest.raises(ValueError):
        ten_logs.get_usage(**kwargs)


def test_get_usage_on_a_new_database_is_empty(db_url: str, exporter_factory: Any) -> None:
    """Reading before anything was written creates the schema and returns nothing."""
    assert exporter_factory(db_url).get_usage() == []


@pytest.mark.postgres
def test_postgres_uses_jsonb_and_timestamptz(fresh_postgres_url: str, exporter_factory: Any) -> None:
    """On PostgreSQL the JSON columns are JSONB and start is a timezone-aware timestamp."""
    exporter_factory(fresh_postgres_url).get_usage()
    types = dict(
        rows(
            fresh_postgres_url,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('usage_logs', 'usage_calls')",
        )
    )
    for column in ("usage_logs.info", "usage_logs.data", "usage_logs.extra", "usage_calls.params"):
        assert types[column] == "jsonb"
    assert types["usage_logs.start"] == "timestamp with time zone"


@pytest.mark.postgres
def test_postgres_statistics_run_in_the_database(fresh_postgres_url: str, exporter_factory: Any) -> None:
    """Per-user statistics are plain SQL over the promoted column, JSONB fields queryable too."""
    exporter = exporter_factory(fresh_postgres_url, columns="user=user_name")
    assert exporter.export([make_record(make_log(i)) for i in range(6)]) == SUCCESS
    per_user = rows(
        fresh_postgres_url,
        "SELECT user_name, count(*), max(info->'request'->>'path') FROM usage_logs GROUP BY user_name ORDER BY 1",
    )
    assert per_user == [("user0", 2, "/cart/3"), ("user1", 2, "/cart/4"), ("user2", 2, "/cart/5")]


def test_sqlite_uses_wal_mode(tmp_path: Any, exporter_factory: Any) -> None:
    """The SQLite database is switched to WAL, so readers never block the writer."""
    path = tmp_path / "wal.db"
    exporter_factory(f"sqlite:///{path}").get_usage()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_postgresql_url_means_psycopg(exporter_factory: Any) -> None:
    """postgresql:// URLs use psycopg 3; the password is hidden in url."""
    exporter = exporter_factory("postgresql://app:secret@db.invalid/usage")
    assert exporter.url == "postgresql+psycopg://app:***@db.invalid/usage"


def test_missing_driver_gives_the_install_hint() -> None:
    """A PostgreSQL driver that is not installed is a clear error with the pip hint."""
    with pytest.raises(ImportError, match=r"pip install 'otel-usage\[postgres\]'"):
        SqlUsageExporter("postgresql+pg8000://app@db.invalid/usage")


def test_unsupported_database_is_rejected() -> None:
    """Only SQLite and PostgreSQL are supported (insert-or-ignore is dialect-specific)."""
    with pytest.raises(ValueError, match="SQLite and PostgreSQL"):
        SqlUsageExporter("mysql://app@db.invalid/usage")


def test_malformed_url_is_a_value_error() -> None:
    """A URL SQLAlchemy cannot parse is a ValueError at construction."""
    with pytest.raises(ValueError, match="invalid database URL"):
        SqlUsageExporter("not a url")


def test_shutdown_refuses_further_exports(tmp_path: Any) -> None:
    """After shutdown the engine is gone and export returns FAILURE; reading still works."""
    exporter = SqlUsageExporter(f"sqlite:///{tmp_path / 'x.db'}")
    assert exporter.export([make_record(make_log(1))]) == SUCCESS
    exporter.shutdown()
    assert exporter.export([make_record(make_log(2))]) == FAILURE
    assert len(exporter.get_usage()) == 1
    exporter.shutdown()
    assert exporter.force_flush() is True


def _export_in_child(exporter: SqlUsageExporter) -> None:
    result = exporter.export([make_record(make_log(50 + os.getpid() % 2))])
    raise SystemExit(0 if result == LogRecordExportResult.SUCCESS else 3)


def test_forked_child_uses_its_own_connections(db_url: str, exporter_factory: Any) -> None:
    """A pre-fork worker writes through fresh connections; the parent's keep working."""
    exporter = exporter_factory(db_url)
    assert exporter.export([make_record(make_log(1))]) == SUCCESS
    proc = multiprocessing.get_context("fork").Process(target=_export_in_child, args=(exporter,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    assert exporter.export([make_record(make_log(2))]) == SUCCESS
    assert len(exporter.get_usage()) == 3


def test_through_a_logger_provider(tmp_path: Any) -> None:
    """Wired into a real LoggerProvider, logs emitted as usage-log events are stored, others not."""
    exporter = SqlUsageExporter(f"sqlite:///{tmp_path / 'x.db'}")
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("otel_usage")
    logger.emit(event_name=USAGE_LOG_EVENT, body=make_log(1))
    logger.emit(body="not a usage log")
    provider.shutdown()
    reader = SqlUsageExporter(f"sqlite:///{tmp_path / 'x.db'}")
    assert reader.get_usage() == [as_stored(make_log(1))]
    reader.shutdown()


def test_in_memory_database_is_shared_between_threads(exporter_factory: Any) -> None:
    """sqlite:// keeps one database for the exporter, whichever thread exports or reads."""
    import threading

    exporter = exporter_factory("sqlite://")
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(exporter.export([make_record(make_log(i))])))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [SUCCESS] * 4
    assert _numbers(exporter.get_usage()) == [3, 2, 1, 0]


def test_failure_under_the_sdk_processor_is_spilled_for_replay(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, exporter_factory: Any, clean_stats: None
) -> None:
    """Under the SDK's own processor (which discards failed batches) a failed batch goes to the spool."""
    from otel_usage.exporters._replay import replay

    spool = tmp_path / "spool"
    monkeypatch.setenv("OTEL_USAGE_SPOOL_DIR", str(spool))
    down = exporter_factory(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(down))
    logger = provider.get_logger("otel_usage")
    for i in range(3):
        logger.emit(event_name=USAGE_LOG_EVENT, body=make_log(i))
    logger.emit(body="not a usage log")
    provider.shutdown()
    assert _counters.stats()["dropped_total"] == 0
    target = exporter_factory(f"sqlite:///{tmp_path / 'x.db'}")
    assert replay(spool, target) == 3
    assert sorted(_numbers(target.get_usage())) == [0, 1, 2]
