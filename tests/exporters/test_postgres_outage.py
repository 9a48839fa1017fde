"""A real PostgreSQL server stopped mid-stream and restarted: every usage log arrives exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.sdk._logs import LoggerProvider

from otel_usage import _counters
from otel_usage._schema import USAGE_LOG_EVENT
from otel_usage.exporters._delivery import UsageBatchProcessor
from otel_usage.exporters.sql import SqlUsageExporter
from tests._postgres import PostgresServer
from tests.exporters.conftest import make_log

pytestmark = pytest.mark.postgres

TOTAL = 150
STOP_AT = 40
RESTART_AT = 110


def stored(url: str) -> tuple[int, int, int]:
    """(log rows, distinct trace ids, call rows) in the database."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            logs, distinct = conn.execute(sa.text("SELECT count(*), count(DISTINCT trace_id) FROM usage_logs")).one()
            calls = conn.execute(sa.text("SELECT count(*) FROM usage_calls")).scalar_one()
            return int(logs), int(distinct), int(calls)
    finally:
        engine.dispose()


def test_outage_loses_nothing_and_duplicates_nothing(
    own_server: PostgresServer, tmp_path: Path, clean_stats: None
) -> None:
    """Logs produced while the database is down are retried, spooled and re-sent once it is back."""
    url = own_server.create_database("outage")
    exporter = SqlUsageExporter(url)
    processor = UsageBatchProcessor(
        exporter,
        name="sql_outage",
        max_queue_size=1000,
        max_export_batch_size=10,
        schedule_delay_millis=20,
        max_retry_millis=300,
        spool_dir=tmp_path / "spool",
    )
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("otel_usage")
    try:
        for i in range(TOTAL):
            if i == STOP_AT:
                assert processor.force_flush(10_000)
                own_server.stop()
            if i == RESTART_AT:
                time.sleep(0.5)  # long enough for retries to give up and spill
                own_server.start()
            logger.emit(event_name=USAGE_LOG_EVENT, body=make_log(i))
            time.sleep(0.005)
        deadline = time.monotonic() + 60
        while stored(url)[0] < TOTAL and time.monotonic() < deadline:
            processor.force_flush(1000)
            time.sleep(0.1)
    finally:
        provider.shutdown()
    assert stored(url) == (TOTAL, TOTAL, 2 * TOTAL)
    stats = _counters.stats()
    assert stats["sql_export_failures"] > 0, "the outage was not noticed"
    assert stats.get("spooled:sql_outage", 0) > 0, "nothing went through the spool"
    assert stats["dropped_total"] == 0, stats["dropped"]
    reader = SqlUsageExporter(url)
    try:
        received = sorted(log["trace_id"] for log in reader.get_usage(limit=TOTAL))
    finally:
        reader.shutdown()
    assert received == sorted(make_log(i)["trace_id"] for i in range(TOTAL))
