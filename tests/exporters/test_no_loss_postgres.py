"""A real PostgreSQL server stopped and restarted under a steady stream, with default delivery settings.

Counts only: every usage log sent while the database was down is stored once it is back, none twice.
"""

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

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("clean_stats")]


def stored(url: str) -> tuple[int, int]:
    """(log rows, distinct trace ids)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows, distinct = conn.execute(sa.text("SELECT count(*), count(DISTINCT trace_id) FROM usage_logs")).one()
            return int(rows), int(distinct)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("settings", "outage_seconds"),
    [
        pytest.param({}, 4.0, id="defaults"),  # the batch in flight rides out the outage on its retries
        pytest.param({"max_retry_millis": 500}, 3.0, id="retries-exhausted"),  # past its budget: the spool
    ],
)
def test_an_outage_with_default_delivery_loses_nothing_and_duplicates_nothing(
    own_server: PostgresServer, tmp_path: Path, settings: dict[str, int], outage_seconds: float
) -> None:
    """Logs keep coming while PostgreSQL is down; all of them are stored exactly once after it restarts."""
    url = own_server.create_database("outage")
    processor = UsageBatchProcessor(SqlUsageExporter(url), **settings)  # type: ignore[arg-type]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("otel_usage")
    sent = 0
    try:
        for _ in range(200):
            logger.emit(event_name=USAGE_LOG_EVENT, body=make_log(sent))
            sent += 1
        assert processor.force_flush(30_000)
        own_server.stop()
        down_until = time.monotonic() + outage_seconds
        while time.monotonic() < down_until:
            logger.emit(event_name=USAGE_LOG_EVENT, body=make_log(sent))
            sent += 1
            time.sleep(0.002)
        own_server.start()
        for _ in range(200):
            logger.emit(event_name=USAGE_LOG_EVENT, body=make_log(sent))
            sent += 1
        assert processor.force_flush(90_000)
    finally:
        processor.shutdown(30_000)
    assert stored(url) == (sent, sent)
    stats = _counters.stats()
    assert stats["sql_export_failures"] > 0, "the outage was not noticed"
    assert stats["dropped"] == {}
    if settings:
        assert stats.get("spooled:sql", 0) > 0, "the retry budget was exhausted, yet nothing went to the spool"
