"""Transactions: named events, LogDefer log lines and timers inside a usage log; LogDefer output."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import threading
import time
import uuid

import pytest

import otel_usage
from otel_usage import add_info, allow_events, block_events, event, log, timer, traced_usage, transaction
from otel_usage import usage_context as ctx
from otel_usage.exporters._logdefer import format_logdefer, to_logdefer
from otel_usage.exporters.memory import InMemoryUsageExporter
from otel_usage.exporters.routing import RoutedUsageExporter, has_event
from otel_usage.testing import capture_usage


def test_event_in_unit_of_work_with_offset_data_and_context():
    """An event lands in events with its offset, a data snapshot ({} for none, as in edX) and the info then."""
    payload = {"position": 12}

    @traced_usage
    def watch():
        add_info("user", "ann")
        with ctx(course="cs101"):
            event("video.play", payload)
        payload["position"] = 99
        event("", None)

    with capture_usage() as usage:
        watch()
    (log_,) = usage.logs
    first, second = log_["events"]
    assert first["name"] == "video.play"
    assert first["data"] == {"position": 12}
    assert first["context"] == {"user": "ann", "course": "cs101"}
    assert 0 <= first["time"] <= second["time"] <= log_["duration"]
    assert second["name"] == "unknown" and second["data"] == {}
    assert second["context"] == {"user": "ann"}


def test_event_is_a_span_event_too():
    """Events are added to the current span so trace backends see them."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    @traced_usage
    def f():
        event("cart.add", {"sku": "A1"})

    with capture_usage() as usage:
        spans = InMemorySpanExporter()
        usage.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        f()
    (span,) = spans.get_finished_spans()
    (span_event,) = span.events
    assert span_event.name == "cart.add"
    assert json.loads(span_event.attributes["otel_usage.event.data"]) == {"sku": "A1"}


def test_event_outside_unit_of_work_becomes_its_own_log():
    """An event emitted from a background job outside any unit of work is its own one-event log."""
    with capture_usage() as usage, ctx(job="cleanup"):
        event("job.done", {"removed": 3})
    (log_,) = usage.logs
    assert [e["name"] for e in log_["events"]] == ["job.done"]
    assert log_["events"][0]["context"] == {"job": "cleanup"}
    assert log_["data"][0]["tracker"] == "otel_usage.event"
    assert log_["job"] == "cleanup"


def test_event_data_that_cannot_be_copied_never_raises():
    """Hostile event data is represented, never raised into the caller."""

    class Hostile:
        def __repr__(self):
            raise RuntimeError("nope")

    @traced_usage
    def f():
        event("x", Hostile())
        return "ok"

    with capture_usage() as usage:
        assert f() == "ok"
    assert usage.logs[0]["events"][0]["data"].startswith("<unrepresentable")


def test_event_context_isolated_across_threads_and_tasks():
    """edX context precedence and isolation: each thread/task sees only its own context."""

    @traced_usage
    def handle(user):
        with ctx(user=user):
            time.sleep(0.005)
            event("page.view")

    @traced_usage
    async def ahandle(user):
        with ctx(user=user):
            await asyncio.sleep(0.005)
            event("page.view")

    async def tasks():
        await asyncio.gather(*(ahandle(f"t{i}") for i in range(3)))

    with capture_usage() as usage:
        threads = [threading.Thread(target=handle, args=(f"u{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        asyncio.run(tasks())
    logs = usage.logs
    assert sorted(log_["events"][0]["context"]["user"] for log_ in logs) == ["t0", "t1", "t2", "u0", "u1", "u2"]
    for log_ in logs:
        assert log_["events"][0]["context"]["user"] == log_["user"]


def test_event_processors_drop_and_transform():
    """Allow/block processors filter events by anchored regex; event-only logs left empty are dropped."""

    def redact_position(log_):
        for e in log_.get("events", []):
            if isinstance(e["data"], dict):
                e["data"].pop("position", None)

    @traced_usage
    def f():
        event("video.play", {"position": 1, "id": 7})
        event("video", None)
        event("problem.check", None)

    with capture_usage(processors=[allow_events(r"video\..*"), redact_position]) as usage:
        f()
        event("problem.check")
        event("video.stop", {"position": 2})
    logs = usage.logs
    assert [[e["name"] for e in log_["events"]] for log_ in logs] == [["video.play"], ["video.stop"]]
    assert logs[0]["events"][0]["data"] == {"id": 7}

    with capture_usage(processors=[block_events("video[.].*")]) as usage:
        f()
    assert [e["name"] for e in usage.logs[0]["events"]] == ["video", "problem.check"]


def test_routing_events_of_a_namespace_to_their_own_exporter():
    """A routed exporter receives only the logs whose events match."""
    with capture_usage() as usage:
        video = InMemoryUsageExporter()
        usage.pipeline.add_exporter(RoutedUsageExporter(video, has_event(r"video\..*")))
        event("video.play")
        event("forum.post")
        usage.flush()
    assert len(usage.logs) == 2
    assert [log_["events"][0]["name"] for log_ in video.get_logs()] == ["video.play"]


def test_logdefer_levels_and_custom_level_with_data():
    """LogDefer's documented examples: default levels, verbosity 30, a custom level with data."""
    marker = uuid.UUID("d37eb4fc-1c0c-41fa-beb0-9f96c9b9836e")

    @traced_usage
    def f():
        log.error("error message")
        log.warn("warning message")
        log.info("info message")
        log.debug("debug message")
        log.add(level=25, message="custom message", data=marker)

    with capture_usage() as usage:
        f()
    lines = usage.logs[0]["logs"]
    assert [line[1:] for line in lines] == [
        [10, "error message"],
        [20, "warning message"],
        [30, "info message"],
        [25, "custom message", "d37eb4fc-1c0c-41fa-beb0-9f96c9b9836e"],
    ]
    offsets = [line[0] for line in lines]
    assert offsets == sorted(offsets) and offsets[0] >= 0


def test_verbosity_and_lazy_messages():
    """A callable message is evaluated only when the line passes verbosity."""
    calls = []

    def expensive():
        calls.append(1)
        return "computed"

    @traced_usage
    def f():
        log.debug(expensive)
        log.info(expensive)

    with capture_usage() as usage:
        f()
    assert calls == [1]
    assert [line[2] for line in usage.logs[0]["logs"]] == ["computed"]

    with capture_usage(log_verbosity=40) as usage:
        f()
    assert len(usage.logs[0]["logs"]) == 2 and len(calls) == 3


def test_stdlib_logging_bridge_off_by_default_and_on_when_asked():
    """stdlib logging inside a unit of work becomes log lines only when the bridge is on."""
    app_logger = logging.getLogger("shop.app")

    @traced_usage
    def f():
        app_logger.warning("low stock %s", 3)
        app_logger.debug("not recorded at verbosity 30")

    with capture_usage() as usage:
        f()
    assert "logs" not in usage.logs[0]
    with capture_usage(log_bridge=True) as usage:
        f()
    assert [line[1:] for line in usage.logs[0]["logs"]] == [[20, "low stock 3", {"logger": "shop.app"}]]
    assert all(not isinstance(h, otel_usage.UsageLogHandler) for h in logging.getLogger().handlers)


def test_nested_overlapping_and_duplicate_timers_in_order():
    """Timers nest, overlap and repeat; they are listed by start with correct bounds."""

    @traced_usage
    def f():
        with timer("outer"):
            with timer("inner"):
                time.sleep(0.002)
            with timer("inner"):
                pass
        a = timer("overlap-a").__enter__()
        b = timer("overlap-b").__enter__()
        a.__exit__(None, None, None)
        b.__exit__(None, None, None)

    with capture_usage() as usage:
        f()
    timers = usage.logs[0]["timers"]
    assert [t[0] for t in timers] == ["outer", "inner", "inner", "overlap-a", "overlap-b"]
    outer, inner1, inner2 = timers[:3]
    assert outer[1] <= inner1[1] <= inner1[2] <= inner2[1] <= inner2[2] <= outer[2]
    assert inner1[2] - inner1[1] >= 0.002
    assert all(len(t) == 3 for t in timers)


def test_timer_as_decorator_times_each_call():
    """As a decorator, every call gets its own timer."""

    @timer("step")
    def step():
        return 1

    @traced_usage
    def f():
        return step() + step()

    with capture_usage() as usage:
        assert f() == 2
    assert [t[0] for t in usage.logs[0]["timers"]] == ["step", "step"]


def test_open_timer_closed_at_log_end_and_flagged():
    """A timer still open when the log is assembled ends at the log's end, flagged unfinished."""

    @traced_usage
    def f():
        timer("left-open").__enter__()

    with capture_usage() as usage:
        f()
    (log_,) = usage.logs
    name, start, end, flag = log_["timers"][0]
    assert name == "left-open" and flag == {"unfinished": True}
    assert start <= end <= log_["duration"]


def test_transaction_without_probes():
    """transaction() opens a unit of work explicitly; tx.data become info; errors are flagged."""
    with capture_usage() as usage:
        with transaction("nightly-import") as tx:
            tx.data["rows"] = 120
            tx.data["password"] = "x"
            log.info("started")
            with timer("load"):
                pass
        with pytest.raises(KeyError), transaction("broken"):
            raise KeyError("missing")
    ok, failed = usage.logs
    assert ok["rows"] == 120 and ok["password"] == "[REDACTED]"
    assert ok["data"][0]["function"] == "nightly-import"
    assert ok["data"][0]["tracker"] == "otel_usage.transaction"
    assert [t[0] for t in ok["timers"]] == ["load"]
    assert failed["status"] == "error" and failed["error"]["type"] == "KeyError"


def test_transaction_inside_a_unit_of_work_is_its_own_log():
    """A transaction opened inside a probe is a separate log in a new trace."""

    @traced_usage
    def outer():
        with transaction("inner-job"):
            event("job.step")

    with capture_usage() as usage:
        outer()
    logs = usage.logs
    assert len(logs) == 2
    assert logs[0]["trace_id"] != logs[1]["trace_id"]


def test_lines_and_timers_outside_a_unit_of_work_are_counted_not_raised():
    """Outside a unit of work, log lines and timers are dropped and counted."""
    otel_usage._counters.reset()
    log.error("nowhere")
    with timer("nowhere"):
        pass
    dropped = otel_usage.stats()["dropped"]
    assert dropped["log_line_outside_unit_of_work"] == 1
    assert dropped["timer_outside_unit_of_work"] == 1


def test_logdefer_formatter_matches_the_documented_shape():
    """The LogDefer formatter gives start (epoch), end (duration), logs, timers and data."""

    @traced_usage
    def f():
        add_info("username", "JoeUser")
        log.error("error message")
        log.add(25, "custom message", {"k": 1})
        log.add(26, "custom scalar", 5)
        with timer("timerName"):
            pass

    with capture_usage() as usage:
        f()
    (log_,) = usage.logs
    message = to_logdefer(log_)
    assert set(message) == {"start", "end", "logs", "timers", "data"}
    expected_start = datetime.datetime.fromisoformat(log_["start"].replace("Z", "+00:00")).timestamp()
    assert message["start"] == pytest.approx(expected_start)
    assert message["end"] == log_["duration"]
    assert [line[1:] for line in message["logs"]] == [
        [10, "error message"],
        [25, "custom message", {"k": 1}],
        [26, "custom scalar", {"log_specific_data": 5}],
    ]
    assert [t[0] for t in message["timers"]] == ["timerName"] and len(message["timers"][0]) == 3
    assert message["data"]["username"] == "JoeUser"
    assert message["data"]["usage"]["trace_id"] == log_["trace_id"]
    assert isinstance(message["start"], float) and isinstance(message["end"], float)
    assert json.loads(format_logdefer(log_)) == json.loads(json.dumps(message))


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_file_exporter_writes_logdefer_lines(tmp_path, monkeypatch, how):
    """OTEL_USAGE_FILE_FORMAT=logdefer (or formatter="logdefer") writes LogDefer messages."""
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    from otel_usage.exporters.file import FileUsageExporter

    path = tmp_path / "ld.jsonl"
    if how == "environment":
        monkeypatch.setenv("OTEL_USAGE_FILE_FORMAT", "LogDefer")
        exporter = FileUsageExporter(path)
    else:
        exporter = FileUsageExporter(path, formatter="logdefer")

    @traced_usage
    def f():
        log.info("hello")

    with capture_usage() as usage:
        usage.pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))
        f()
        usage.flush()
    (line,) = path.read_text().splitlines()
    message = json.loads(line)
    assert set(message) == {"start", "end", "logs", "data"}
    assert message["logs"][0][1:] == [30, "hello"]


def test_unknown_file_format_is_an_error(tmp_path):
    """An unknown format name is a clear error at configuration time."""
    from otel_usage.exporters.file import FileUsageExporter

    with pytest.raises(ValueError, match="logdefer"):
        FileUsageExporter(tmp_path / "x.jsonl", formatter="xml")
