"""Info and data: add_info, usage_context, get_info, baggage encoding, reserved keys."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

import otel_usage
from otel_usage import add_data, add_info, get_info, traced_usage, usage_context
from otel_usage._info_codec import decode_info_value, encode_info_value
from otel_usage.testing import capture_usage


@traced_usage
def probe(fn=None):
    return fn() if fn else None


def test_usage_context_sets_info_for_everything_inside():
    """Info from usage_context lands in every log started inside it, and not after."""
    with capture_usage() as usage:
        with usage_context(tenant="acme", user="alice"):
            probe()
        probe()
    inside, after = usage.logs
    assert inside["tenant"] == "acme" and inside["user"] == "alice"
    assert "tenant" not in after


def test_nested_usage_contexts_are_a_stack_same_names_included():
    """An inner context of the same name wins inside; the outer value is back after it."""
    seen = []
    with usage_context(user="outer", tenant="t"):
        seen.append(get_info())
        with usage_context(user="inner"):
            seen.append(get_info())
            with usage_context(user="innermost"):
                seen.append(get_info())
            seen.append(get_info())
        seen.append(get_info())
    seen.append(get_info())
    assert [s.get("user") for s in seen] == ["outer", "inner", "innermost", "inner", "outer", None]
    assert all(s.get("tenant") == "t" for s in seen[:5])


def test_usage_context_as_decorator_sync_and_async():
    """usage_context decorates sync and async functions."""

    @usage_context(feature="export")
    def sync():
        return get_info()["feature"]

    @usage_context(feature="async-export")
    async def coro():
        return get_info()["feature"]

    assert sync() == "export"
    assert asyncio.run(coro()) == "async-export"
    assert get_info() == {}


def test_add_info_is_shared_by_the_whole_log_and_seen_by_descendants():
    """add_info in a child is in the log; descendants started after it read it with get_info."""
    got = {}

    @traced_usage
    def grandchild():
        got["info"] = get_info()

    @traced_usage
    def child():
        add_info("user", "bob")
        grandchild()

    @traced_usage
    def root():
        child()
        got["after"] = get_info()

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert log["user"] == "bob"
    assert got["info"]["user"] == "bob"
    # in force until the child returns: the parent no longer reads it, the log keeps it
    assert "user" not in got["after"]


def test_info_reaches_threads_started_with_the_context():
    """A thread run with a copy of the context sees the info and records into the same log."""
    got = {}

    @traced_usage
    def worker():
        got["info"] = get_info()
        add_data("thread", True)

    @traced_usage
    def root():
        add_info("user", "carol")
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(worker,))
        t.start()
        t.join()

    with capture_usage() as usage, usage_context(tenant="acme"):
        root()
    (log,) = usage.logs
    assert got["info"] == {"tenant": "acme", "user": "carol"}
    assert log["data"][1]["thread"] is True


def test_info_travels_in_baggage_to_outgoing_calls():
    """Info is in the baggage that a propagator injects into outgoing requests, typed values encoded."""
    headers = {}

    @traced_usage
    def call_other_service():
        add_info("user", "dave")
        add_info("plan", {"tier": 2})
        W3CBaggagePropagator().inject(headers)

    with capture_usage(), usage_context(tenant="acme"):
        call_other_service()
    ctx = W3CBaggagePropagator().extract(headers)
    received = {k: decode_info_value(str(v)) for k, v in baggage.get_all(ctx).items()}
    assert received == {"tenant": "acme", "user": "dave", "plan": {"tier": 2}}


@pytest.mark.parametrize(
    "value",
    ["plain", " padded ", "j:looks-encoded", "", "ünïcode ✓", 42, 1.5, True, None, [1, "a"], {"k": [1, 2]}],
)
def test_baggage_encoding_round_trips_through_the_wire(value):
    """Any JSON-native info value survives encoding, W3C propagation and decoding."""
    headers = {}
    ctx = baggage.set_baggage("k", encode_info_value(value))
    W3CBaggagePropagator().inject(headers, context=ctx)
    back = baggage.get_baggage("k", W3CBaggagePropagator().extract(headers))
    assert decode_info_value(str(back)) == value


def test_oversize_info_value_is_refused_and_counted():
    """An info value too large for baggage is refused with a warning and counted."""
    otel_usage._counters.reset()

    @traced_usage
    def f():
        add_info("blob", "x" * 5000)
        add_info("ok", "y")

    with capture_usage(param_max_length=10000, param_max_size=20000) as usage:
        f()
    (log,) = usage.logs
    assert "blob" not in log and log["ok"] == "y"
    assert otel_usage.stats()["dropped"]["info_oversize"] == 1


@pytest.mark.parametrize("key", ["data", "trace_id", "span_id", "start", "duration", "status", "schema"])
def test_reserved_info_keys_are_rejected(key):
    """Reserved top-level keys cannot be info keys: a clear ValueError."""
    with pytest.raises(ValueError, match="reserved"):
        add_info(key, 1)
    with pytest.raises(ValueError, match="reserved"):
        usage_context(**{key: 1})


@pytest.mark.parametrize("key", ["function", "depth", "params", "duration"])
def test_built_in_record_keys_are_rejected_as_data(key):
    """add_data cannot overwrite a record's built-in keys."""
    with pytest.raises(ValueError, match="built-in"):
        add_data(key, 1)


def test_info_values_are_serialized_and_redacted():
    """Info values are JSON-native copies, and sensitive names are redacted."""
    import datetime

    @traced_usage
    def f():
        add_info("when", datetime.date(2026, 1, 2))
        add_info("api_token", "abc")

    with capture_usage() as usage:
        f()
    (log,) = usage.logs
    assert log["when"] == "2026-01-02"
    assert log["api_token"] == "[REDACTED]"


def test_info_from_context_is_isolated_between_threads_and_tasks():
    """Concurrent units of work with different contexts never see each other's info."""
    results = {}

    @traced_usage
    async def handle(user):
        add_info("user", user)
        await asyncio.sleep(0.01)
        results[user] = get_info()["user"]

    async def main():
        async def one(u):
            with usage_context(tenant=f"t-{u}"):
                await handle(u)

        await asyncio.gather(*(one(u) for u in ("a", "b", "c")))

    with capture_usage() as usage:
        asyncio.run(main())
    logs = usage.logs
    assert results == {"a": "a", "b": "b", "c": "c"}
    assert sorted((log["user"], log["tenant"]) for log in logs) == [("a", "t-a"), ("b", "t-b"), ("c", "t-c")]


def test_context_restored_after_unit_of_work():
    """After a probe returns, the caller's context (baggage included) is what it was."""
    before = context.get_current()

    @traced_usage
    def f():
        add_info("user", "eve")

    with capture_usage():
        f()
    assert baggage.get_all() == baggage.get_all(before)
