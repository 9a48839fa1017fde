"""UsageBatchProcessor and replay(): bounded queues, isolation, retries, spool, flush, shutdown, fork."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from otel_usage import environment_variables as ev
from otel_usage import stats
from otel_usage._schema import USAGE_LOG_EVENT, usage_log_of
from otel_usage.exporters._delivery import UsageBatchProcessor
from otel_usage.exporters._replay import replay
from otel_usage.exporters.memory import InMemoryUsageExporter

pytestmark = pytest.mark.usefixtures("clean_stats")

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.002)


def log(i: int) -> dict[str, Any]:
    return {"n": i, "user": f"user{i % 3}", "data": [{"function": "f", "depth": 0}], "service": "shop"}


def numbers(logs: Sequence[dict[str, Any]]) -> list[int]:
    return [entry["n"] for entry in logs]


class RecordingExporter(LogRecordExporter):
    """Succeeds or fails as told; keeps the usage logs of successful exports and every attempt's time.

    ``fail_times`` failures first (returning FAILURE, or raising when ``raises``), then it follows ``up``.
    ``gate`` (when given) holds every export until it is set.
    """

    def __init__(
        self,
        fail_times: int = 0,
        raises: bool = False,
        up: bool = True,
        retry_after_ms: float | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.fail_times = fail_times
        self.raises = raises
        self.up = up
        self.retry_after_ms = retry_after_ms
        self.gate = gate
        self.entered = threading.Event()
        self.attempts: list[float] = []
        self.logs: list[dict[str, Any]] = []
        self.suppressed: list[bool] = []
        self.shutdowns = 0
        self._lock = threading.Lock()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        with self._lock:
            self.attempts.append(time.monotonic())
            self.suppressed.append(get_value(_SUPPRESS_INSTRUMENTATION_KEY) is True)
            failing = self.fail_times > 0 or not self.up
            if self.fail_times > 0:
                self.fail_times -= 1
            if not failing:
                self.logs.extend(u for u in map(usage_log_of, batch) if u is not None)
                return SUCCESS
        if self.raises:
            raise ConnectionError("sink unreachable")
        return FAILURE

    def retry_after_millis(self) -> float | None:
        return self.retry_after_ms

    def shutdown(self) -> None:
        self.shutdowns += 1

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Pipeline:
    """A real LoggerProvider with UsageBatchProcessors; shuts everything down at the end of the test."""

    def __init__(self) -> None:
        self.provider = LoggerProvider(shutdown_on_exit=False)
        self.logger = self.provider.get_logger("tests.delivery")
        self.processors: list[UsageBatchProcessor] = []
        self.gates: list[threading.Event] = []

    def add(self, exporter: LogRecordExporter, **kwargs: Any) -> UsageBatchProcessor:
        kwargs.setdefault("schedule_delay_millis", 5)
        processor = UsageBatchProcessor(exporter, **kwargs)
        self.provider.add_log_record_processor(processor)
        self.processors.append(processor)
        gate = getattr(exporter, "gate", None)
        if gate is not None:
            self.gates.append(gate)
        return processor

    def emit(self, start: int, stop: int | None = None, **kwargs: Any) -> None:
        for i in range(start, start + 1 if stop is None else stop):
            self.logger.emit(body=log(i), event_name=USAGE_LOG_EVENT, **kwargs)

    def close(self) -> None:
        for gate in self.gates:
            gate.set()
        for processor in self.processors:
            processor.shutdown(timeout_millis=1000)


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    p = Pipeline()
    try:
        yield p
    finally:
        p.close()


def pending(spool_dir: Path, name: str) -> list[int]:
    """The numbers of the logs still waiting in a spool (read through replay(delete=False))."""
    path = spool_dir / f"{name}.jsonl"
    if not path.exists():
        return []
    reader = InMemoryUsageExporter()
    replay(path, reader, delete=False)
    return numbers(reader.get_logs())


# --- the application's side ---------------------------------------------------------------------------


def test_other_log_records_never_reach_the_exporter(pipeline: Pipeline) -> None:
    """Only usage logs are queued; other log records are ignored."""
    exporter = RecordingExporter()
    processor = pipeline.add(exporter)
    pipeline.logger.emit(body=log(0))
    pipeline.logger.emit(body="text", event_name=USAGE_LOG_EVENT)
    pipeline.emit(1)
    assert processor.force_flush(5000)
    assert numbers(exporter.logs) == [1]


def test_without_a_spool_a_full_queue_refuses_the_newest_and_counts_it(pipeline: Pipeline) -> None:
    """Spool off, worker stuck: logs beyond max_queue_size are dropped, counted and visible in stats()."""
    exporter = RecordingExporter(gate=threading.Event())
    processor = pipeline.add(exporter, name="stuck", max_queue_size=4, max_export_batch_size=1, spool_dir=False)
    pipeline.emit(0)
    wait_until(exporter.entered.is_set, what="worker inside export")
    pipeline.emit(1, 8)
    current = stats()
    assert current["dropped"]["queue_full:stuck"] == 3
    assert current["export_queue_stuck"] == 4
    assert exporter.gate is not None
    exporter.gate.set()
    assert processor.force_flush(5000)
    assert numbers(exporter.logs) == [0, 1, 2, 3, 4]
    assert stats()["exported:stuck"] == 5


def test_full_queue_with_a_spool_spills_on_the_worker_and_loses_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    """With a spool the overflow waits for the worker (no disk I/O on the emitting thread), is spooled,
    then delivered once the exporter is free: nothing dropped, nothing twice."""
    exporter = RecordingExporter(gate=threading.Event())
    processor = pipeline.add(
        exporter, name="overflow", max_queue_size=4, max_export_batch_size=1, spool_dir=tmp_path / "spool"
    )
    pipeline.emit(0)
    wait_until(exporter.entered.is_set, what="worker inside export")
    pipeline.emit(1, 8)
    assert not (tmp_path / "spool" / "overflow.jsonl").exists()
    assert stats()["dropped_total"] == 0
    assert exporter.gate is not None
    exporter.gate.set()
    wait_until(lambda: len(exporter.logs) == 8, what="all 8 logs delivered")
    processor.shutdown()
    assert sorted(numbers(exporter.logs)) == list(range(8))
    assert stats()["spooled:overflow"] == 3
    assert stats()["dropped_total"] == 0


@pytest.mark.parametrize("bad", ["stuck", "raising", "failing"])
def test_a_broken_exporter_does_not_hold_back_another(pipeline: Pipeline, bad: str) -> None:
    """Each exporter has its own queue and worker: a stuck or failing one never delays or loses the others'."""
    broken = {
        "stuck": RecordingExporter(gate=threading.Event()),
        "raising": RecordingExporter(up=False, raises=True),
        "failing": RecordingExporter(up=False),
    }[bad]
    pipeline.add(broken, name="broken", max_retry_millis=60_000)
    good = InMemoryUsageExporter()
    good_processor = pipeline.add(good, name="good")
    pipeline.emit(0, 50)
    assert good_processor.force_flush(5000)
    assert numbers(good.get_logs()) == list(range(50))
    assert broken.logs == []


def test_each_exporter_gets_its_own_copy(pipeline: Pipeline) -> None:
    """An exporter that modifies what it receives (copy_body=True) cannot change another exporter's logs."""

    class Mutating(InMemoryUsageExporter):
        def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
            for record in batch:
                body = record.log_record.body
                assert isinstance(body, dict)
                body["user"] = "changed"
                body["data"].clear()
            return super().export(batch)

    mutating, other = Mutating(), InMemoryUsageExporter()
    first = pipeline.add(mutating, name="mutating", copy_body=True)
    second = pipeline.add(other, name="other")
    pipeline.emit(0, 3)
    assert first.force_flush(5000) and second.force_flush(5000)
    assert other.get_logs() == [log(i) for i in range(3)]
    assert all(entry["user"] == "changed" for entry in mutating.get_logs())


def test_exports_run_with_instrumentation_suppressed(pipeline: Pipeline) -> None:
    """The exporter's own SQL/HTTP calls cannot become telemetry: instrumentation is suppressed in the worker."""
    exporter = RecordingExporter()
    processor = pipeline.add(exporter)
    pipeline.emit(0)
    assert processor.force_flush(5000)
    assert exporter.suppressed == [True]


# --- retries, spool, replay -----------------------------------------------------------------------------


@pytest.mark.parametrize("raises", [False, True], ids=["returns-failure", "raises"])
def test_transient_failures_are_retried_then_delivered_once(pipeline: Pipeline, raises: bool) -> None:
    """An exporter that fails 3 times then works gets the batch exactly once, after 3 counted retries."""
    exporter = RecordingExporter(fail_times=3, raises=raises)
    processor = pipeline.add(exporter, name="flaky", max_retry_millis=20_000)
    pipeline.emit(0, 5)
    assert processor.force_flush(10_000)
    assert numbers(exporter.logs) == list(range(5))
    assert len(exporter.attempts) == 4
    assert stats()["retried:flaky"] == 3
    assert stats()["dropped_total"] == 0


def test_retry_after_from_the_exporter_is_honoured(pipeline: Pipeline) -> None:
    """A delay the sink asks for (retry_after_millis) replaces the much shorter backoff."""
    exporter = RecordingExporter(fail_times=1, retry_after_ms=400)
    processor = pipeline.add(exporter, name="throttled", max_retry_millis=20_000)
    pipeline.emit(0)
    assert processor.force_flush(10_000)
    first, second = exporter.attempts
    assert second - first >= 0.4
    assert numbers(exporter.logs) == [0]


def test_retry_after_beyond_the_budget_spools_and_waits_before_the_next_try(pipeline: Pipeline, tmp_path: Path) -> None:
    """A retry-after longer than the retry budget spools the batch at once; nothing is sent before it ends."""
    exporter = RecordingExporter(fail_times=1, retry_after_ms=500)
    processor = pipeline.add(exporter, name="later", max_retry_millis=100, spool_dir=tmp_path)
    pipeline.emit(0)
    assert processor.force_flush(200) is False  # spooled, and not re-sent before the delay is over
    assert stats()["spooled:later"] == 1
    wait_until(lambda: len(exporter.logs) == 1, what="spooled log re-sent")
    first, second = exporter.attempts
    assert second - first >= 0.5
    processor.shutdown()
    assert numbers(exporter.logs) == [0]


@pytest.mark.parametrize("recovery", ["later-export", "timer"])
def test_exhausted_retries_spill_then_resend_exactly_once_when_the_sink_recovers(
    pipeline: Pipeline, tmp_path: Path, recovery: str
) -> None:
    """Undeliverable logs go to the spool and are re-sent automatically, exactly once, when the sink
    works again: after a later successful export, or by the worker's timer probe with no new logs."""
    exporter = RecordingExporter(up=False)
    processor = pipeline.add(exporter, name="outage", max_retry_millis=50, spool_dir=tmp_path, max_export_batch_size=2)
    pipeline.emit(0, 5)
    assert processor.force_flush(5000) is False
    assert pending(tmp_path, "outage") == [0, 1, 2, 3, 4]
    exporter.up = True
    expected = list(range(5))
    if recovery == "later-export":
        pipeline.emit(5)
        expected.append(5)
    wait_until(lambda: len(exporter.logs) >= len(expected), what="spooled logs re-sent")
    processor.shutdown()
    assert sorted(numbers(exporter.logs)) == expected
    assert pending(tmp_path, "outage") == []
    assert stats()["exported:outage"] == len(expected)
    assert stats()["dropped_total"] == 0


def test_without_a_spool_undeliverable_logs_are_counted(pipeline: Pipeline) -> None:
    """With no spool, a batch that fails past its retry budget is dropped and counted as export_failed."""
    exporter = RecordingExporter(up=False)
    processor = pipeline.add(exporter, name="nospool", max_retry_millis=30, spool_dir=False)
    pipeline.emit(0, 3)
    assert processor.force_flush(5000) is False
    assert stats()["dropped"]["export_failed:nospool"] == 3


def test_spool_size_is_bounded_and_the_excess_counted(pipeline: Pipeline, tmp_path: Path) -> None:
    """Beyond spool_max_bytes logs are dropped and counted as spool_full; the rest stays spooled."""
    exporter = RecordingExporter(up=False)
    processor = pipeline.add(exporter, name="small", max_retry_millis=0, spool_dir=tmp_path, spool_max_bytes=2500)
    pipeline.emit(0, 20)
    processor.force_flush(5000)
    current = stats()
    kept = len(pending(tmp_path, "small"))
    assert 0 < kept < 20
    assert current["spooled:small"] == kept
    assert current["dropped"]["spool_full:small"] == 20 - kept
    assert (tmp_path / "small.jsonl").stat().st_size <= 2500


def _emit_correlated(pipeline: Pipeline, start: int, stop: int) -> None:
    for i in range(start, stop):
        span_context = trace.SpanContext(0xABC0 + i, 0xDEF0 + i, is_remote=False, trace_flags=trace.TraceFlags(1))
        context = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
        pipeline.emit(
            i,
            context=context,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes={"k": "v", "seq": i},
        )


@pytest.mark.parametrize("delete", [True, False])
def test_replay_rebuilds_complete_records_for_any_exporter(tmp_path: Path, delete: bool) -> None:
    """replay() re-sends spooled logs as full log records (ids, severity, timestamps, resource) that the
    stock OTLP encoder accepts; delete=True empties the spool, delete=False leaves it as it was."""
    pipeline = Pipeline()
    pipeline.provider = LoggerProvider(resource=Resource({"service.name": "shop"}), shutdown_on_exit=False)
    pipeline.logger = pipeline.provider.get_logger("tests.delivery", "1.2")
    pipeline.add(RecordingExporter(up=False), name="dead", max_retry_millis=0, spool_dir=tmp_path)
    _emit_correlated(pipeline, 0, 3)
    pipeline.close()

    target = InMemoryLogRecordExporter()
    assert replay(tmp_path, target, delete=delete) == 3
    records = target.get_finished_logs()
    assert [r.log_record.body for r in records] == [log(i) for i in range(3)]
    for i, record in enumerate(records):
        lr = record.log_record
        assert (lr.trace_id, lr.span_id, int(lr.trace_flags)) == (0xABC0 + i, 0xDEF0 + i, 1)
        assert (lr.severity_number, lr.severity_text, lr.event_name) == (SeverityNumber.INFO, "INFO", USAGE_LOG_EVENT)
        assert dict(lr.attributes or {}) == {"k": "v", "seq": i}
        assert lr.observed_timestamp and lr.observed_timestamp > 0
        assert record.resource.attributes["service.name"] == "shop"
        assert record.instrumentation_scope is not None
        assert (record.instrumentation_scope.name, record.instrumentation_scope.version) == ("tests.delivery", "1.2")
    request = encode_logs(records)
    otlp = request.resource_logs[0].scope_logs[0].log_records
    assert [r.trace_id.hex() for r in otlp] == [f"{0xABC0 + i:032x}" for i in range(3)]
    assert [r.event_name for r in otlp] == [USAGE_LOG_EVENT] * 3
    assert pending(tmp_path, "dead") == ([] if delete else [0, 1, 2])
    assert replay(tmp_path, InMemoryUsageExporter()) == (0 if delete else 3)


def test_replay_keeps_what_the_exporter_refuses(tmp_path: Path) -> None:
    """replay() stops at a failed batch and keeps it and everything after it in the spool."""
    pipeline = Pipeline()
    pipeline.add(RecordingExporter(up=False), name="keep", max_retry_millis=0, spool_dir=tmp_path)
    pipeline.emit(0, 6)
    pipeline.close()
    flaky = RecordingExporter(fail_times=0)
    flaky_calls = {"n": 0}
    real_export = flaky.export

    def second_call_fails(batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        flaky_calls["n"] += 1
        return FAILURE if flaky_calls["n"] == 2 else real_export(batch)

    flaky.export = second_call_fails  # type: ignore[method-assign]
    assert replay(tmp_path / "keep.jsonl", flaky, max_export_batch_size=2) == 2
    assert pending(tmp_path, "keep") == [2, 3, 4, 5]
    assert replay(tmp_path, RecordingExporter(up=False)) == 0
    assert replay(tmp_path, flaky) == 4
    assert numbers(flaky.logs) == [0, 1, 2, 3, 4, 5]


def test_replay_leaves_files_that_are_not_spools(tmp_path: Path) -> None:
    """Pointed at a directory of ordinary JSON Lines, replay() sends and deletes nothing."""
    (tmp_path / "usage.jsonl").write_text('{"user":"alice"}\n')
    assert replay(tmp_path, InMemoryUsageExporter()) == 0
    assert (tmp_path / "usage.jsonl").read_text() == '{"user":"alice"}\n'
    with pytest.raises(FileNotFoundError):
        replay(tmp_path / "missing", InMemoryUsageExporter())


class _FlagSink(LogRecordExporter):
    """Fails while the flag file exists; otherwise appends the bodies to a file of its own process."""

    def __init__(self, flag: str, out: str) -> None:
        self.flag, self.out = flag, out

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if os.path.exists(self.flag):
            return FAILURE
        with open(self.out, "a") as f:
            f.write("".join(json.dumps(r.log_record.body) + "\n" for r in batch))
        return SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _flapping_producer(spool_dir: str, out_dir: str, flag: str, worker: int, n: int, start: Any) -> None:
    """Child process: n logs through a UsageBatchProcessor sharing one spool with the other children."""
    sink = _FlagSink(flag, os.path.join(out_dir, f"{worker}.jsonl"))
    provider = LoggerProvider(shutdown_on_exit=False)
    processor = UsageBatchProcessor(
        sink,
        name="shared",
        spool_dir=spool_dir,
        max_retry_millis=20,
        schedule_delay_millis=5,
        max_export_batch_size=16,
    )
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("producer")
    start.wait(30)
    for i in range(n):
        logger.emit(body={"w": worker, "i": i}, event_name=USAGE_LOG_EVENT)
        if i % 25 == 0:
            time.sleep(0.003)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        os.path.exists(flag) or os.path.exists(os.path.join(spool_dir, "shared.jsonl"))
    ):
        time.sleep(0.01)
    processor.shutdown(timeout_millis=10_000)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_processes_sharing_a_spool_through_a_flapping_sink_deliver_every_log_exactly_once(tmp_path: Path) -> None:
    """4 processes spill into and drain one spool while the sink keeps failing and recovering: every
    log ends up delivered exactly once (what is still spooled at the end is replayed)."""
    import multiprocessing

    spool_dir, out_dir, flag = tmp_path / "spool", tmp_path / "out", tmp_path / "down"
    out_dir.mkdir()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    n = 400
    procs = [
        ctx.Process(target=_flapping_producer, args=(str(spool_dir), str(out_dir), str(flag), w, n, start))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    start.set()
    for cycle in range(30):
        if cycle % 2 == 0:
            flag.touch()
        else:
            flag.unlink()
        time.sleep(0.05)
    flag.unlink(missing_ok=True)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    leftover = InMemoryUsageExporter()
    if spool_dir.exists():
        replay(spool_dir, leftover)
    delivered = [json.loads(line) for f in out_dir.iterdir() for line in f.read_text().splitlines()]
    delivered += leftover.get_logs()
    seen: dict[tuple[int, int], int] = {}
    for body in delivered:
        key = (body["w"], body["i"])
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 4 * n
    assert set(seen.values()) == {1}


# --- flush and shutdown ----------------------------------------------------------------------------------


def test_force_flush_honours_its_timeout_with_a_stuck_exporter(pipeline: Pipeline) -> None:
    """force_flush returns False after its timeout while the exporter hangs, then True once it is free."""
    exporter = RecordingExporter(gate=threading.Event())
    processor = pipeline.add(exporter)
    pipeline.emit(0)
    wait_until(exporter.entered.is_set, what="worker inside export")
    started = time.monotonic()
    assert processor.force_flush(timeout_millis=200) is False
    assert 0.2 <= time.monotonic() - started < 3.0
    assert exporter.gate is not None
    exporter.gate.set()
    assert processor.force_flush(timeout_millis=5000) is True
    assert numbers(exporter.logs) == [0]


def test_shutdown_delivers_the_queue_and_is_idempotent(pipeline: Pipeline) -> None:
    """shutdown exports what is queued, shuts the exporter down once, and later logs are counted."""
    exporter = RecordingExporter()
    processor = pipeline.add(exporter, name="closing", schedule_delay_millis=60_000)
    pipeline.emit(0, 3)
    processor.shutdown()
    processor.shutdown()
    assert numbers(exporter.logs) == [0, 1, 2]
    assert exporter.shutdowns == 1
    pipeline.emit(3)
    assert stats()["dropped"]["after_shutdown:closing"] == 1
    assert processor.force_flush(100) is True


@pytest.mark.parametrize("spool", [False, True])
def test_shutdown_honours_its_timeout_and_spools_or_counts_what_is_left(
    pipeline: Pipeline, tmp_path: Path, spool: bool
) -> None:
    """With the exporter hanging, shutdown returns after its timeout; the queued logs go to the spool (or,
    spool off, are counted as shutdown_timeout) and the one inside the hung export is counted."""
    exporter = RecordingExporter(gate=threading.Event())
    processor = pipeline.add(
        exporter, name="hung", max_export_batch_size=1, spool_dir=tmp_path / "spool" if spool else False
    )
    pipeline.emit(0)
    wait_until(exporter.entered.is_set, what="worker inside export")
    pipeline.emit(1, 3)
    started = time.monotonic()
    processor.shutdown(timeout_millis=200)
    assert time.monotonic() - started < 3.0
    if spool:
        assert sorted(pending(tmp_path / "spool", "hung")) == [1, 2]
        assert stats()["spooled:hung"] == 2
        assert stats()["dropped"] == {"shutdown_timeout:hung": 1}
    else:
        assert stats()["dropped"]["shutdown_timeout:hung"] == 3


def test_shutdown_works_from_an_atexit_handler(tmp_path: Path) -> None:
    """Logs still queued at exit are written when shutdown runs as an atexit handler."""
    out = tmp_path / "usage.jsonl"
    script = textwrap.dedent(
        f"""
        import atexit
        from opentelemetry.sdk._logs import LoggerProvider
        from otel_usage.exporters._delivery import UsageBatchProcessor
        from otel_usage.exporters.file import FileUsageExporter

        provider = LoggerProvider(shutdown_on_exit=False)
        processor = UsageBatchProcessor(FileUsageExporter({str(out)!r}), schedule_delay_millis=600000)
        provider.add_log_record_processor(processor)
        atexit.register(processor.shutdown)
        logger = provider.get_logger("exit")
        for i in range(3):
            logger.emit(body={{"n": i}}, event_name="otel_usage.log")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=Path(__file__).parents[2])
    assert [json.loads(line)["n"] for line in out.read_text().splitlines()] == [0, 1, 2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork only")
def test_forked_child_starts_its_own_worker_and_never_resends_the_parents_queue(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """After fork the child drops the parent's queued logs and delivers its own through a new worker;
    the parent still delivers its own logs exactly once."""
    parent_pid = os.getpid()
    gate = threading.Event()

    class PerProcessFile(RecordingExporter):
        def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
            self.entered.set()
            if os.getpid() == parent_pid:
                gate.wait()
            with open(tmp_path / f"out-{os.getpid()}.jsonl", "a") as f:
                for record in batch:
                    f.write(json.dumps(record.log_record.body) + "\n")
            return SUCCESS

    exporter = PerProcessFile()
    processor = pipeline.add(exporter, max_export_batch_size=1)
    pipeline.emit(0)
    wait_until(exporter.entered.is_set, what="parent worker inside export")
    pipeline.emit(1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (Python >= 3.12)
        pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            pipeline.emit(100)
            code = 0 if processor.force_flush(10_000) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child_lines = (tmp_path / f"out-{pid}.jsonl").read_text().splitlines()
    assert [json.loads(line)["n"] for line in child_lines] == [100]
    gate.set()
    assert processor.force_flush(5000)
    parent_lines = (tmp_path / f"out-{parent_pid}.jsonl").read_text().splitlines()
    assert [json.loads(line)["n"] for line in parent_lines] == [0, 1, 2]


# --- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_queue_size": 0},
        {"max_queue_size": "10"},
        {"max_export_batch_size": 0},
        {"max_queue_size": 10, "max_export_batch_size": 11},
        {"schedule_delay_millis": 0},
        {"max_retry_millis": -1},
        {"max_retry_millis": True},
        {"spool_max_bytes": 0},
        {"name": "no/slashes"},
        {"name": ""},
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any]) -> None:
    """An invalid explicit argument is a ValueError at construction."""
    with pytest.raises(ValueError):
        UsageBatchProcessor(InMemoryUsageExporter(), **kwargs)


@pytest.mark.parametrize("from_env", [False, True], ids=["argument", "env"])
def test_unwritable_spool_dir_is_an_error_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_env: bool
) -> None:
    """A spool directory that cannot be created is a ValueError (falling back would lose logs)."""
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "spool"
    if from_env:
        monkeypatch.setenv(ev.OTEL_USAGE_SPOOL_DIR, str(bad))
    with pytest.raises(ValueError, match="spool"):
        UsageBatchProcessor(InMemoryUsageExporter(), spool_dir=None if from_env else bad)


def test_environment_configures_the_processor(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_USAGE_EXPORT_* and OTEL_USAGE_SPOOL_* apply when arguments are None; a bad value warns."""
    monkeypatch.setenv(ev.OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE, "2")
    monkeypatch.setenv(ev.OTEL_USAGE_EXPORT_BATCH_SIZE, "many")
    monkeypatch.setenv(ev.OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS, "0")
    monkeypatch.setenv(ev.OTEL_USAGE_SPOOL_DIR, str(tmp_path / "spool"))
    exporter = RecordingExporter(up=False, gate=threading.Event())
    processor = UsageBatchProcessor(exporter, name="env", schedule_delay_millis=5)
    pipeline.provider.add_log_record_processor(processor)
    pipeline.processors.append(processor)
    assert ev.OTEL_USAGE_EXPORT_BATCH_SIZE in caplog.text
    pipeline.emit(0)
    wait_until(exporter.entered.is_set, what="worker inside export")
    pipeline.emit(1, 3)
    assert stats()["export_queue_env"] == 2
    pipeline.emit(3)  # overflow: kept for the spool, not dropped
    assert exporter.gate is not None
    exporter.gate.set()
    processor.shutdown()
    assert sorted(pending(tmp_path / "spool" / "env", "env")) == [0, 1, 2, 3]  # a subdirectory per sink
    assert stats()["dropped_total"] == 0
    assert "retried:env" not in stats()  # max_retry_millis=0: a single attempt per batch


def test_default_names_come_from_the_exporter_class() -> None:
    """Counters and spool files are named after the exporter class unless a name is given."""
    assert UsageBatchProcessor(InMemoryUsageExporter()).name == "inmemory"
    assert UsageBatchProcessor(InMemoryLogRecordExporter()).name == "inmemory"
    assert UsageBatchProcessor(InMemoryUsageExporter(), name="audit-db").name == "audit-db"


def test_replay_command_sends_a_spool_to_a_configured_exporter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``otel-usage replay SPOOL --to NAME`` builds the exporter from the usual variables: a sink that fails
    keeps the spool and exits 1; --keep sends without removing; a plain run empties the spool."""
    from otel_usage.cli import main

    spool = tmp_path / "spool"
    pipeline = Pipeline()
    pipeline.add(RecordingExporter(up=False), name="dead", max_retry_millis=0, spool_dir=spool)
    for i in range(5):  # complete usage logs (ids, start), as the SQL exporter stores them
        body = {**log(i), "trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "start": "2026-11-21T10:00:00Z"}
        pipeline.logger.emit(body=body, event_name=USAGE_LOG_EVENT)
    pipeline.close()
    assert pending(spool, "dead") == [0, 1, 2, 3, 4]

    monkeypatch.setenv(ev.OTEL_USAGE_SQL_URL, f"sqlite:///{tmp_path / 'no-such-dir' / 'usage.db'}")
    assert main(["replay", str(spool), "--to", "sql"]) == 1
    assert "still spooled" in capsys.readouterr().out
    assert pending(spool, "dead") == [0, 1, 2, 3, 4]

    target = tmp_path / "replayed.jsonl"
    monkeypatch.setenv(ev.OTEL_USAGE_FILE_PATH, str(target))
    assert main(["replay", str(spool), "--to", "file", "--keep"]) == 0
    assert pending(spool, "dead") == [0, 1, 2, 3, 4]
    assert main(["replay", str(spool / "dead.jsonl"), "--to", "file", "--batch-size", "2"]) == 0
    assert "replayed 5 usage log(s) to file" in capsys.readouterr().out
    assert pending(spool, "dead") == []
    replayed = [json.loads(line) for line in target.read_text().splitlines()]
    assert numbers(replayed) == [0, 1, 2, 3, 4] * 2

    assert main(["replay", str(tmp_path / "nowhere"), "--to", "file"]) == 1
    assert main(["replay", str(spool), "--to", "nonsense"]) == 2
