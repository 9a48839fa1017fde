"""What the predecessors document, checked claim by claim against otel_usage.

edX event-tracking (``emit``), LogDefer (``finalize_log``'s shape, levels, timers, ``data``) and
python_tracker (``{info..., data: [...]}``, ``add_info``, ``add_data(depth=)``). Where otel_usage differs
on purpose, the test pins what it does instead (and the README says why). The context semantics of
events (edX ``resolve_context``) are in ``tests/test_event_context.py``.
"""

from __future__ import annotations

import datetime
import threading
import time
import uuid

import pytest

import otel_usage
from otel_usage import add_data, add_info, event, log, traced_usage, transaction
from otel_usage.exporters._logdefer import to_logdefer
from otel_usage.testing import capture_usage


def start_epoch(usage_log):
    return datetime.datetime.fromisoformat(usage_log["start"].replace("Z", "+00:00")).timestamp()


# --- edX event-tracking ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, ""])
def test_edx_emit_without_a_name_is_unknown_and_without_data_is_an_empty_dict(name):
    """edX: ``'name': name or 'unknown'`` and ``'data': data or {}``."""

    @traced_usage
    def f():
        event(name)

    with capture_usage() as usage:
        f()
    (e,) = usage.logs[0]["events"]
    assert e["name"] == "unknown" and e["data"] == {}


def test_edx_event_time_is_the_utc_moment_of_emission():
    """edX stamps each event with the UTC time of the call; here: the log's start + the event's offset."""
    marks = {}

    @traced_usage
    def f():
        time.sleep(0.01)
        marks["before"] = time.time()
        event("tick")
        marks["after"] = time.time()

    with capture_usage() as usage:
        f()
    (log_,) = usage.logs
    at = start_epoch(log_) + log_["events"][0]["time"]
    assert marks["before"] - 1e-3 <= at <= marks["after"] + 1e-3
    assert log_["events"][0]["time"] >= 0.01


# --- LogDefer --------------------------------------------------------------------------------------


def test_logdefer_data_example():
    """LogDefer's DATA example: ``log.data(dict(...))`` gives ``start`` (epoch), ``end`` (duration), ``data``."""
    with capture_usage() as usage, transaction("request"):
        log.data(dict(username="JoeUser", ipAddress="127.0.0.1"))
    (log_,) = usage.logs
    message = to_logdefer(log_)
    # no logs, no timers: LogDefer leaves empty ones out
    assert set(message) == {"start", "end", "data"}
    assert message["start"] == pytest.approx(start_epoch(log_))
    assert message["end"] == log_["duration"] and 0 <= message["end"] < 5
    assert {k: message["data"][k] for k in ("username", "ipAddress")} == {
        "username": "JoeUser",
        "ipAddress": "127.0.0.1",
    }
    # what LogDefer has no place for travels under data.usage, so nothing is lost
    assert message["data"]["usage"]["trace_id"] == log_["trace_id"]


def test_logdefer_timer_example():
    """LogDefer's TIMER example: ``with log.timer(name):`` gives ``[name, start_offset, end_offset]``."""
    with capture_usage() as usage, transaction("job"), log.timer("timerName"):
        time.sleep(0.01)
    message = to_logdefer(usage.logs[0])
    ((name, start, end),) = message["timers"]
    assert name == "timerName"
    assert 0 <= start <= end <= message["end"]
    assert end - start >= 0.01


def test_logdefer_timers_may_run_concurrently_unlike_logdefer():
    """LogDefer: "you cannot have two timers running concurrently"; here overlapping timers are both kept."""
    with capture_usage() as usage, transaction("job"):
        a = log.timer("a").__enter__()
        with log.timer("b"):
            pass
        a.__exit__(None, None, None)
    message = to_logdefer(usage.logs[0])
    (a_name, a_start, a_end), (b_name, b_start, b_end) = message["timers"]
    assert (a_name, b_name) == ("a", "b")
    assert a_start <= b_start <= b_end <= a_end


LOG_LINES = [[10, "error message"], [20, "warning message"], [30, "info message"], [40, "debug message"]]


@pytest.mark.parametrize(("verbosity", "expected"), [(None, LOG_LINES[:3]), (40, LOG_LINES)])
def test_logdefer_log_lines_example_and_default_levels(verbosity, expected):
    """LogDefer's default levels error 10, warn 20, info 30, debug 40, in call order with offsets.

    Python LogDefer records every level; otel_usage records up to its verbosity (default 30, info): with
    ``OTEL_USAGE_LOG_VERBOSITY=40`` the documented example comes out line for line.
    """
    settings = {} if verbosity is None else {"log_verbosity": verbosity}
    with capture_usage(**settings) as usage, transaction("request"):
        log.error("error message")
        log.warn("warning message")
        log.info("info message")
        log.debug("debug message")
    message = to_logdefer(usage.logs[0])
    assert [line[1:] for line in message["logs"]] == expected
    offsets = [line[0] for line in message["logs"]]
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] <= message["end"]


def test_logdefer_custom_level_with_data_example():
    """LogDefer's ``add_message(level=25, message=..., data=uuid)``: data becomes ``{"log_specific_data": ...}``."""
    marker = uuid.UUID("d37eb4fc-1c0c-41fa-beb0-9f96c9b9836e")
    otel_usage._counters.reset()
    with capture_usage() as usage, transaction("request"):
        log.add_message(level=25, message="custom message", data=marker)
        log.add_message(level="35", message="level given as a string, as LogDefer's default '30' is")
        log.add_message(level="loud", message="not a level: dropped and counted")
    (log_,) = usage.logs
    # the usage log keeps the data as it is (serialized); the LogDefer format wraps what is not a dict
    assert [line[1:] for line in log_["logs"]] == [[25, "custom message", str(marker)]]
    assert [line[1:] for line in to_logdefer(log_)["logs"]] == [
        [25, "custom message", {"log_specific_data": "d37eb4fc-1c0c-41fa-beb0-9f96c9b9836e"}]
    ]
    assert otel_usage.stats()["dropped"]["log_line_bad_level"] == 1


def test_logdefer_level_given_as_a_string_is_recorded_when_it_passes_verbosity():
    """A numeric string level (LogDefer's own default is the string '30') counts as that number."""
    with capture_usage(log_verbosity=40) as usage, transaction("request"):
        log.add_message(level="35", message="string level")
    assert [line[1:] for line in usage.logs[0]["logs"]] == [[35, "string level"]]


def test_logdefer_data_with_a_reserved_key_is_refused_like_add_info():
    """``log.data`` is ``add_info`` per key: a reserved top-level key is a clear ValueError."""
    with capture_usage(), transaction("request"), pytest.raises(ValueError, match="reserved"):
        log.data({"start": 1})


# --- python_tracker --------------------------------------------------------------------------------


def test_python_tracker_log_structure_info_at_top_data_one_record_per_call():
    """``{'info_key': value, 'data': [{...}, {...}]}``: one log for the whole call hierarchy, info at the top."""

    @traced_usage
    def leaf():
        add_info("app_version", "1.2")
        add_data("rows", 3)

    @traced_usage
    def middle():
        leaf()
        add_data("cached", False)

    @traced_usage
    def root():
        add_info("user", "maria")
        middle()

    with capture_usage() as usage:
        root()
    (log_,) = usage.logs
    # info set anywhere in the hierarchy is shared by the whole log, in no record
    assert log_["user"] == "maria" and log_["app_version"] == "1.2"
    assert all("user" not in r and "app_version" not in r for r in log_["data"])
    # data is particular to each call
    assert [r["function"].rsplit(".", 1)[-1] for r in log_["data"]] == ["root", "middle", "leaf"]
    assert [r["depth"] for r in log_["data"]] == [0, 1, 2]
    assert log_["data"][2]["rows"] == 3 and "rows" not in log_["data"][1]
    assert log_["data"][1]["cached"] is False and "cached" not in log_["data"][2]


def test_python_tracker_add_data_depth_reaches_the_open_ancestor_at_that_depth():
    """``add_data(k, v, depth)``: the record at that depth in the current call chain, not an earlier sibling's."""

    @traced_usage
    def leaf(tag):
        add_data("from_leaf", tag, depth=1)
        add_data("own_depth", tag, depth=2)
        add_data("root_sees", tag, depth=0)

    @traced_usage
    def child(tag):
        leaf(tag)

    @traced_usage
    def root():
        child("first")
        child("second")

    with capture_usage() as usage:
        root()
    records = usage.logs[0]["data"]
    by = [(r["function"].rsplit(".", 1)[-1], r["depth"]) for r in records]
    assert by == [("root", 0), ("child", 1), ("leaf", 2), ("child", 1), ("leaf", 2)]
    root_r, child1, leaf1, child2, leaf2 = records
    assert child1["from_leaf"] == "first" and child2["from_leaf"] == "second"
    assert leaf1["own_depth"] == "first" and leaf2["own_depth"] == "second"
    # the same key sent twice to the root: the later call's value
    assert root_r["root_sees"] == "second"
    assert "from_leaf" not in root_r | leaf1 | leaf2


def test_python_tracker_add_data_deeper_than_the_call_is_ignored_never_raised():
    """A depth below the current call names no open record: python_tracker lost it (or raised); here it is
    ignored, counted, and the call's result is intact."""
    otel_usage._counters.reset()

    @traced_usage
    def child():
        return "done"

    @traced_usage
    def root():
        child()
        add_data("too_deep", 1, depth=1)
        return "ok"

    with capture_usage() as usage:
        assert root() == "ok"
    records = usage.logs[0]["data"]
    assert all("too_deep" not in r for r in records)
    assert otel_usage.stats()["dropped"]["data_bad_depth"] == 1


def test_python_tracker_add_data_depth_from_a_worker_thread_with_the_context():
    """python_tracker kept its state per thread; here a thread run with the context adds to the same log."""
    import contextvars

    @traced_usage
    def root():
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(add_data, "from_thread", True), kwargs={"depth": 0})
        t.start()
        t.join(5)

    with capture_usage() as usage:
        root()
    assert usage.logs[0]["data"][0]["from_thread"] is True


def test_python_tracker_data_order_is_pre_order_not_completion_order():
    """python_tracker appended a record when its call ended (children first); here a parent precedes its
    children (pre-order), siblings by start, so ``data[0]`` is always the root."""

    @traced_usage
    def b():
        pass

    @traced_usage
    def a():
        b()

    @traced_usage
    def root():
        a()
        b()

    with capture_usage() as usage:
        root()
    names = [(r["function"].rsplit(".", 1)[-1], r["depth"]) for r in usage.logs[0]["data"]]
    assert names == [("root", 0), ("a", 1), ("b", 2), ("b", 1)]
