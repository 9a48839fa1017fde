"""Fixtures of the exporter tests: usage log records, and a real PostgreSQL server started by the test run.

The server comes from Debian's ``postgresql`` package (``.ci/run`` installs it when missing) through
:mod:`tests._postgres`. PostgreSQL tests are skipped only when its binaries cannot be found, with a loud
reason in the summary (``-ra``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource

from otel_usage import _counters
from otel_usage._schema import USAGE_LOG_EVENT
from tests._postgres import PostgresServer, running_server

_database_numbers = itertools.count(1)
BASE_START = dt.datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    """A usage log's ``start``: ISO-8601 UTC with a ``Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_log(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A deterministic usage log numbered ``i`` (its own trace id; starts ``i`` minutes after BASE_START)."""
    log: dict[str, Any] = {
        "user": f"user{i % 3}",
        "tenant": "acme",
        "request": {"method": "GET", "path": f"/cart/{i}", "status": 200, "headers": {"accept": ["a", "b"]}},
        "data": [
            {
                "function": "shop.cart.add_item",
                "tracker": "shop.cart",
                "depth": 0,
                "level": "DEFAULT",
                "start": 0.0,
                "duration": 0.0123,
                "params": {"item_id": i, "qty": 1, "tags": ["x", None, True, 1.5]},
                "class_name": "Cart",
                "exception": False,
                "discount": 0.1,
            },
            {
                "function": "shop.db.save",
                "tracker": "shop.db",
                "depth": 1,
                "level": "INFO",
                "start": 0.002,
                "duration": 0.004,
                "params": {"row": {"id": 7, "note": "été ☃"}},
                "exception": True,
                "error": {"type": "IntegrityError", "message": "duplicate"},
            },
        ],
        "trace_id": f"{i + 1:032x}",
        "span_id": f"{i + 1:016x}",
        "parent_span_id": None,
        "service": "shop",
        "start": iso(BASE_START + dt.timedelta(minutes=i)),
        "duration": 0.0123,
        "status": "ok",
        "schema": 1,
    }
    log.update(overrides)
    return log


def make_record(log: Any, event_name: str | None = USAGE_LOG_EVENT) -> ReadableLogRecord:
    """A log record as the logs SDK hands it to exporters."""
    trace_id = span_id = None
    if isinstance(log, dict) and isinstance(log.get("trace_id"), str) and isinstance(log.get("span_id"), str):
        trace_id, span_id = int(log["trace_id"], 16), int(log["span_id"], 16)
    return ReadableLogRecord(
        LogRecord(body=log, event_name=event_name, trace_id=trace_id, span_id=span_id),
        Resource.create({"service.name": "shop"}),
    )


@pytest.fixture
def clean_stats() -> Iterator[None]:
    """Counters start at zero."""
    _counters.reset()
    yield
    _counters.reset()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole test session."""
    with running_server() as server:
        yield server


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of the test's own, which it may stop and start again."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A SQLAlchemy URL of a database on the session's PostgreSQL server."""
    return postgres_server.create_database("otel_usage")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> str:
    """A URL of a new, empty database (one per test)."""
    return postgres_server.create_database(f"otel_usage_t{next(_database_numbers)}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh database: a real SQLite file, then a new database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'usage.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))
