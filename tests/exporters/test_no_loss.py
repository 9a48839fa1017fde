"""No usage log lost at default settings: bursts, many threads, a sink down then up, a full spool.

Every test counts: what the application produced, what each sink holds, what ``stats()`` says was lost.
Timing never decides a result; the pipelines use the defaults unless a test is about a limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider

from otel_usage import _counters, traced_usage
from otel_usage._config import CoreSettings
from otel_usage._exit import exit_summary
from otel_usage._pipeline import UsagePipeline, apply_settings
from otel_usage._runtime import RUNTIME
from otel_usage._sampling import LevelSampler
from otel_usage._schema import USAGE_LOG_EVENT, usage_log_of
from otel_usage.exporters._delivery import UsageBatchProcessor
from otel_usage.exporters._replay import replay
from otel_usage.exporters.file import FileUsageExporter
from otel_usage.exporters.memory import InMemoryUsageExporter
from otel_usage.exporters.sql import SqlUsageExporter

pytestmark = pytest.mark.usefixtures("clean_stats")

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE


@contextlib.contextmanager
def default_pipeline(*exporters: LogRecordExporter) -> Iterator[UsagePipeline]:
    """A private pipeline with every setting at its default, each exporter behind its UsageBatchProcessor."""
    core = CoreSettings.from_env()
    pipeline = UsagePipeline(
        TracerProvider(sampler=LevelSampler(), shutdown_on_exit=False),
        LoggerProvider(shutdown_on_exit=False),
        core,
        owns_providers=True,
    )
    for exporter in exporters:
        pipeline.add_exporter(exporter)
    saved = RUNTIME.tracer_provider
    RUNTIME.tracer_provider = pipeline.tracer_provider
    RUNTIME.changed()
    apply_settings(core)
    try:
        yield pipeline
    finally:
        RUNTIME.tracer_provider = saved
        RUNTIME.changed()
        pipeline.shutdown(60_000)


def file_numbers(path: Path) -> list[int]:
    with open(path, encoding="utf-8") as f:
        return sorted(json.loads(line)["data"][0]["params"]["i"] for line in f)


def sink_counts(tmp_path: Path) -> tuple[int, int, int]:
    """(lines in the JSONL file, rows in usage_logs, distinct trace ids in usage_logs)."""
    with open(tmp_path / "usage.jsonl", encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    with contextlib.closing(sqlite3.connect(tmp_path / "usage.db")) as db:
        rows, distinct = db.execute("SELECT count(*), count(DISTINCT trace_id) FROM usage_logs").fetchone()
    return lines, rows, distinct


@traced_usage(name="noloss.leaf")
def leaf(i: int, tag: str, ratio: float) -> int:
    return i


@traced_usage(name="noloss.root")
def root(i: int, tag: str, ratio: float) -> int:
    return i


@traced_usage(name="noloss.root6")
def root6(i: int, tag: str, ratio: float) -> int:
    for j in range(5):
        leaf(j, tag, ratio)
    return i


def test_a_burst_from_one_thread_reaches_file_and_sqlite_whole(tmp_path: Path) -> None:
    """30 000 root calls as fast as one thread makes them, default settings: every log in both sinks."""
    total = 30_000
    with default_pipeline(
        FileUsageExporter(tmp_path / "usage.jsonl"), SqlUsageExporter(f"sqlite:///{tmp_path / 'usage.db'}")
    ) as pipeline:
        for i in range(total):
            root(i, "burst", 0.5)
        assert pipeline.force_flush(120_000)
    assert sink_counts(tmp_path) == (total, total, total)
    assert file_numbers(tmp_path / "usage.jsonl") == list(range(total))
    stats = _counters.stats()
    assert stats["dropped"] == {}
    assert stats["logs_emitted"] == total
    assert stats["exported:file"] == total and stats["exported:sql"] >= total


def test_sixteen_threads_of_six_probe_traces_reach_both_sinks_whole(tmp_path: Path) -> None:
    """16 threads x 500 traces of 6 probes, default settings: count in == count out in every sink."""
    threads, per_thread = 16, 500

    def work(base: int) -> None:
        for i in range(per_thread):
            root6(base + i, "threads", 0.5)

    with default_pipeline(
        FileUsageExporter(tmp_path / "usage.jsonl"), SqlUsageExporter(f"sqlite:///{tmp_path / 'usage.db'}")
    ) as pipeline:
        workers = [threading.Thread(target=work, args=(n * per_thread,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert pipeline.force_flush(120_000)
    total = threads * per_thread
    assert sink_counts(tmp_path) == (total, total, total)
    assert file_numbers(tmp_path / "usage.jsonl") == list(range(total))
    with contextlib.closing(sqlite3.connect(tmp_path / "usage.db")) as db:
        assert db.execute("SELECT count(*) FROM usage_calls").fetchone()[0] == 6 * total
    assert _counters.stats()["dropped"] == {}


class SwitchExporter(LogRecordExporter):
    """Fails while ``down`` is set; keeps the number of every usage log it accepted, duplicates included."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.numbers: list[int] = []
        self.failures = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self.down.is_set():
            self.failures += 1
            return FAILURE
        for record in batch:
            log = usage_log_of(record)
            if log is not None:
                self.numbers.append(log["n"])
        return SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def emit_numbered(processor: UsageBatchProcessor, numbers: range) -> None:
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("tests.no_loss")
    for n in numbers:
        logger.emit(body={"n": n, "data": [{"function": "f", "depth": 0}]}, event_name=USAGE_LOG_EVENT)


def test_a_sink_down_then_up_gets_every_log_exactly_once(tmp_path: Path) -> None:
    """5000 logs sent while the sink is down go to the spool and arrive once each when it is back."""
    exporter = SwitchExporter()
    exporter.down.set()
    processor = UsageBatchProcessor(exporter, name="switch", max_retry_millis=50, schedule_delay_millis=10)
    try:
        emit_numbered(processor, range(5000))
        assert processor.force_flush(300) is False  # the sink is down: not delivered yet
        exporter.down.clear()
        emit_numbered(processor, range(5000, 6000))
        assert processor.force_flush(60_000)
    finally:
        processor.shutdown(10_000)
    assert exporter.failures > 0
    assert sorted(exporter.numbers) == list(range(6000))  # each once: no loss, no duplicate
    stats = _counters.stats()
    assert stats["spooled:switch"] >= 5000 - 512  # at most the batch in its retries when the sink came back
    assert stats["dropped"] == {}


def test_a_full_spool_drops_only_what_neither_memory_nor_disk_holds_and_counts_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sink down, spool of 20 KB: what the spool holds is delivered later, the rest is counted as
    spool_full; the warnings (rate limit off here) add up to the count in stats()."""
    monkeypatch.setattr(_counters, "WARNING_INTERVAL_SECONDS", 0.0)
    exporter = SwitchExporter()
    exporter.down.set()
    processor = UsageBatchProcessor(
        exporter, name="tiny", max_retry_millis=0, schedule_delay_millis=10, spool_dir=tmp_path, spool_max_bytes=20_000
    )
    total = 2000
    try:
        with caplog.at_level(logging.WARNING, logger="otel_usage"):
            emit_numbered(processor, range(total))
            assert processor.force_flush(300) is False
            exporter.down.clear()
            assert processor.force_flush(30_000)
    finally:
        processor.shutdown(10_000)
    stats = _counters.stats()
    lost = stats["dropped"]["spool_full:tiny"]
    assert set(stats["dropped"]) == {"spool_full:tiny"}
    assert 0 < stats["spooled:tiny"] < total
    assert len(exporter.numbers) == len(set(exporter.numbers)) == total - lost
    assert stats["spooled:tiny"] + lost == total
    warned = [r.getMessage() for r in caplog.records if "for spool_full:tiny" in r.getMessage()]
    assert sum(int(m.split()[2]) for m in warned) == lost
    assert warned[-1].endswith(f"; {lost} in all since start (see otel_usage.stats())")


def test_drop_warnings_state_real_counts_rate_limited_and_agree_with_stats(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first drop warns at once; drops held back by the rate limit are reported by flush_warnings()
    with their count; the totals in the warnings are stats()'s."""
    monkeypatch.setattr(_counters, "WARNING_INTERVAL_SECONDS", 0.2)
    with caplog.at_level(logging.WARNING, logger="otel_usage"):
        _counters.count_drop("queue_full:x", 1)
        _counters.count_drop("queue_full:x", 41)
        _counters.count_drop("queue_full:x", 58)
        assert len(caplog.records) == 1
        _counters.flush_warnings()  # within the interval: nothing yet
        assert len(caplog.records) == 1
        time.sleep(0.25)
        _counters.flush_warnings()
    first, second = (r.getMessage() for r in caplog.records)
    assert first.startswith("otel_usage lost 1 usage log item(s) for queue_full:x; 1 in all")
    assert second.startswith("otel_usage lost 99 usage log item(s) for queue_full:x; 100 in all")
    assert _counters.stats()["dropped"]["queue_full:x"] == 100
    assert exit_summary(_counters.stats(), [], 5000) == "otel_usage at exit: 100 lost (queue_full:x 100)"


def test_the_spool_of_an_earlier_run_is_drained_by_the_next_one(tmp_path: Path) -> None:
    """Logs a run could not deliver are delivered by the next run's processor for the same sink."""
    first = SwitchExporter()
    first.down.set()
    processor = UsageBatchProcessor(first, name="nextrun", max_retry_millis=0, schedule_delay_millis=10)
    emit_numbered(processor, range(300))
    processor.shutdown(2000)
    assert first.numbers == [] and _counters.stats()["spooled:nextrun"] == 300
    second = SwitchExporter()
    processor = UsageBatchProcessor(second, name="nextrun", schedule_delay_millis=10)
    try:
        emit_numbered(processor, range(300, 310))
        assert processor.force_flush(30_000)
    finally:
        processor.shutdown(5000)
    assert sorted(second.numbers) == list(range(310))


def test_spool_directories_are_per_sink_and_the_same_in_every_process(tmp_path: Path) -> None:
    """Two SQLite databases get two spool subdirectories; the same database gets the same one again."""
    a = UsageBatchProcessor(SqlUsageExporter(f"sqlite:///{tmp_path / 'a.db'}"))
    b = UsageBatchProcessor(SqlUsageExporter(f"sqlite:///{tmp_path / 'b.db'}"))
    a2 = UsageBatchProcessor(SqlUsageExporter(f"sqlite:///{tmp_path / 'a.db'}"))
    try:
        paths = [Path(p._spool.path) for p in (a, b, a2) if p._spool is not None]
    finally:
        for p in (a, b, a2):
            p.shutdown(1000)
    assert len(paths) == 3
    assert paths[0] == paths[2] != paths[1]
    assert paths[0].parent.name.startswith("sql-") and paths[0].name == "sql.jsonl"


def test_the_default_spool_is_in_the_per_user_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without OTEL_USAGE_SPOOL_DIR the spool is <user data dir>/otel-usage/spool/<sink>; ``none`` turns it off."""
    monkeypatch.delenv("OTEL_USAGE_SPOOL_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    processor = UsageBatchProcessor(InMemoryUsageExporter(), name="mem")
    processor.shutdown(1000)
    assert processor._spool is not None
    assert Path(processor._spool.path) == tmp_path / "data" / "otel-usage" / "spool" / "mem" / "mem.jsonl"
    monkeypatch.setenv("OTEL_USAGE_SPOOL_DIR", "none")
    off = UsageBatchProcessor(InMemoryUsageExporter(), name="mem")
    off.shutdown(1000)
    assert off._spool is None


def test_replay_of_the_spool_root_finds_every_sink(tmp_path: Path) -> None:
    """``replay(<spool root>)`` reads the spool of every sink's subdirectory."""
    for name in ("one", "two"):
        down = SwitchExporter()
        down.down.set()
        processor = UsageBatchProcessor(down, name=name, max_retry_millis=0, schedule_delay_millis=10)
        emit_numbered(processor, range(5))
        processor.shutdown(2000)
    target = InMemoryUsageExporter()
    assert replay(os.environ["OTEL_USAGE_SPOOL_DIR"], target) == 10
    assert sorted(log["n"] for log in target.get_logs()) == sorted([*range(5), *range(5)])


# --- the README's claims about bursts and overflow -------------------------------------------------------


def test_overflow_emitted_on_the_assembler_thread_goes_to_the_spool_at_once(tmp_path: Path) -> None:
    """On the pipeline's own thread a full queue spills to the spool a batch at a time, nothing dropped;
    on the application's thread the same overflow waits in memory for the worker (no disk I/O)."""
    from otel_usage._assembly_worker import ON_WORKER

    exporter = SwitchExporter()
    gate = threading.Event()
    original = exporter.export

    def stuck(batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        gate.wait(10)
        return original(batch)

    exporter.export = stuck  # type: ignore[method-assign]
    processor = UsageBatchProcessor(
        exporter, name="assembler", max_queue_size=10, max_export_batch_size=5, spool_dir=tmp_path / "spool"
    )
    spool_file = tmp_path / "spool" / "assembler.jsonl"
    try:
        emit_numbered(processor, range(10))  # the application's thread: the queue only
        emit_numbered(processor, range(10, 20))  # overflow in memory, still no disk I/O here
        assert not spool_file.exists()
        token = ON_WORKER.set(True)
        try:
            emit_numbered(processor, range(20, 40))  # the assembler's thread: batches of 5 go to disk now
        finally:
            ON_WORKER.reset(token)
        assert spool_file.exists()
        gate.set()
        assert processor.force_flush(30_000)
    finally:
        gate.set()
        processor.shutdown(10_000)
    assert sorted(exporter.numbers) == list(range(40))
    assert _counters.stats()["dropped"] == {}
    assert _counters.stats()["spooled:assembler"] >= 15


def test_a_burst_beyond_the_assembler_waits_for_it_and_beyond_the_limit_is_counted() -> None:
    """With the assembler held up, a thread ending a unit of work waits (bounded) for it once the backlog
    reaches a quarter of max_queued_spans; at the limit new units of work are counted as assembly_backlog."""
    from otel_usage.testing import capture_usage

    release = threading.Event()

    def hold(log: dict[str, object]) -> None:
        release.wait(30)  # a usage processor: runs on the assembler

    with capture_usage(max_queued_spans=16, processors=[hold]) as usage:
        started = time.monotonic()
        for i in range(40):
            root(i, "held", 0.5)
        elapsed = time.monotonic() - started
        stats = _counters.stats()
        release.set()
        usage.flush(30_000)
        logs = len(usage.exporter.get_logs())
    assert stats["backpressure_pauses"] > 0
    refused = stats["dropped"].get("assembly_backlog", 0)
    assert refused > 0
    assert logs + refused == 40
    assert elapsed < 40 * 0.05 + 5  # each wait is bounded (50 ms), the application goes on
