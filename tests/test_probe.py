"""Probes: one usage log per root call, hierarchy, parameters, levels, every kind of callable."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import threading

import pytest

import otel_usage
from otel_usage import DEBUG, DEFAULT, INFO, NONE, add_data, add_info, get_tracker, traced_usage
from otel_usage.testing import capture_usage

tr = get_tracker(__name__)


@tr.probe(level=DEFAULT)
def leaf(x, y=2):
    """Leaf doc."""
    return x + y


@tr.probe(level=DEFAULT)
def middle(n):
    add_data("seen", n)
    return leaf(n) + leaf(n, y=10)


@tr.probe(level=DEFAULT)
def root_call(n):
    add_info("user", "alice")
    return middle(n)


def functions(log):
    return [(r["function"], r["depth"]) for r in log["data"]]


def test_one_log_per_root_call_with_depths():
    """Each root call gives one log whose records carry call order and depth."""
    with capture_usage() as usage:
        assert root_call(1) == 14
        assert root_call(2) == 16
    logs = usage.logs
    assert len(logs) == 2
    name = f"{__name__}."
    assert functions(logs[0]) == [
        (name + "root_call", 0),
        (name + "middle", 1),
        (name + "leaf", 2),
        (name + "leaf", 2),
    ]
    assert logs[0]["user"] == "alice"
    assert logs[0]["data"][1]["seen"] == 1
    assert logs[1]["data"][0]["params"] == {"n": 2}
    assert logs[0]["trace_id"] != logs[1]["trace_id"]


def test_log_shape_matches_schema_1():
    """The log has info at the top, data records with the built-in keys, and the metadata keys."""
    with capture_usage(service_name="shop") as usage:
        root_call(3)
    (log,) = usage.logs
    assert list(log)[:2] == ["user", "data"]
    assert set(log) == {
        "user",
        "data",
        "trace_id",
        "span_id",
        "parent_span_id",
        "service",
        "start",
        "duration",
        "status",
        "schema",
    }
    assert log["service"] == "shop"
    assert log["status"] == "ok"
    assert log["schema"] == 1
    assert log["parent_span_id"] is None
    assert len(log["trace_id"]) == 32 and len(log["span_id"]) == 16
    assert log["start"].endswith("Z") and "T" in log["start"]
    first = log["data"][0]
    assert first["tracker"] == __name__
    assert first["level"] == "DEFAULT"
    assert first["start"] == 0.0
    assert first["exception"] is False
    assert 0 <= first["duration"] <= log["duration"]
    later = log["data"][2]
    assert 0 <= later["start"] <= log["duration"]
    json.dumps(log, allow_nan=False)


def test_bound_params_with_defaults_and_extras():
    """Parameters are bound by name with defaults applied; *args and **kwargs extras are kept."""

    @traced_usage
    def f(a, b=5, *rest, c=7, **extra):
        return a

    with capture_usage() as usage:
        f(1, 2, 3, 4, c=8, z="q")
        f(9)
    first, second = usage.logs
    assert first["data"][0]["params"] == {"a": 1, "b": 2, "rest": [3, 4], "c": 8, "z": "q"}
    assert second["data"][0]["params"] == {"a": 9, "b": 5, "rest": [], "c": 7}


def test_include_exclude_and_fname():
    """inc/exc choose parameters (exclude wins) and fname renames the function."""

    @tr.probe(fname="renamed", inc=["a", "b"], exc=["b"])
    def f(a, b, c):
        return c

    with capture_usage() as usage:
        f(1, 2, 3)
    record = usage.logs[0]["data"][0]
    assert record["function"] == "renamed"
    assert record["params"] == {"a": 1}


def test_track_representation_hook():
    """Objects with python_tracker's __track__ (or __usage__) are recorded by that representation."""

    class Cart:
        def __init__(self, n):
            self.n = n

        def __track__(self):
            return {"items": self.n}

    @traced_usage
    def pay(cart):
        return cart.n

    with capture_usage() as usage:
        pay(Cart(3))
    assert usage.logs[0]["data"][0]["params"] == {"cart": {"items": 3}}


class Shop:
    @traced_usage
    def buy(self, item):
        return item

    @traced_usage
    @classmethod
    def open_cls(cls, when):
        return when

    @classmethod
    @traced_usage
    def open_cls2(cls, when):
        return when

    @traced_usage
    @staticmethod
    def helper(x):
        return x * 2

    @staticmethod
    @traced_usage
    def helper2(x):
        return x * 3


class Outlet(Shop):
    pass


def test_methods_record_runtime_class_name_and_skip_self():
    """Methods record the run-time class of self/cls and never self/cls as a parameter."""
    with capture_usage() as usage:
        assert Outlet().buy("hat") == "hat"
        assert Outlet.open_cls(1) == 1
        assert Outlet.open_cls2(2) == 2
        assert Shop.helper(2) == 4
        assert Shop().helper2(2) == 6
    records = [log["data"][0] for log in usage.logs]
    assert [r.get("class_name") for r in records] == ["Outlet", "Outlet", "Outlet", None, None]
    assert records[0]["params"] == {"item": "hat"}
    assert records[1]["params"] == {"when": 1}
    assert records[2]["params"] == {"when": 2}
    assert records[0]["function"] == f"{__name__}.Shop.buy"


def test_wrapper_keeps_metadata_and_signature():
    """The decorated function keeps its name, qualname, doc, __wrapped__ and signature."""
    assert leaf.__name__ == "leaf"
    assert leaf.__qualname__ == "leaf"
    assert leaf.__doc__ == "Leaf doc."
    assert str(inspect.signature(leaf)) == "(x, y=2)"
    assert leaf.__wrapped__(1) == 3
    assert inspect.iscoroutinefunction(traced_usage(_coro))
    assert inspect.isgeneratorfunction(traced_usage(_gen))
    assert inspect.isasyncgenfunction(traced_usage(_agen))


async def _coro():
    return 1


def _gen():
    yield 1


async def _agen():
    yield 1


def test_recursion_nests():
    """A recursive probe gives one log with one record per level of recursion."""

    @traced_usage
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    with capture_usage() as usage:
        assert fact(4) == 24
    (log,) = usage.logs
    assert [r["depth"] for r in log["data"]] == [0, 1, 2, 3]
    assert [r["params"]["n"] for r in log["data"]] == [4, 3, 2, 1]


def test_add_data_to_ancestors():
    """add_data(depth=0) reaches the root, negative depths are relative, positive are absolute."""

    @traced_usage
    def c():
        add_data("to_root", 1, depth=0)
        add_data("to_parent", 2, depth=-1)
        add_data("to_depth1", 3, depth=1)
        add_data("mine", 4)
        add_data("nowhere", 5, depth=7)

    @traced_usage
    def b():
        c()

    @traced_usage
    def a():
        b()

    with capture_usage() as usage:
        a()
    ra, rb, rc = usage.logs[0]["data"]
    assert ra["to_root"] == 1
    assert rb["to_parent"] == 2 and rb["to_depth1"] == 3
    assert rc["mine"] == 4
    assert "nowhere" not in ra | rb | rc
    assert otel_usage.stats()["dropped"]["data_bad_depth"] >= 1


@pytest.mark.parametrize("threshold", [DEBUG, INFO, DEFAULT, NONE])
def test_level_threshold(threshold):
    """A probe is recorded when its level >= the threshold; NONE records nothing."""

    @traced_usage(level=DEBUG)
    def d():
        return "d"

    @traced_usage(level=INFO)
    def i():
        return "i"

    @traced_usage(level=DEFAULT)
    def df():
        return "df"

    with capture_usage(level=threshold) as usage:
        assert (d(), i(), df()) == ("d", "i", "df")
    recorded = [log["data"][0]["level"] for log in usage.logs]
    expected = [lv.name for lv in (DEBUG, INFO, DEFAULT) if lv >= threshold]
    assert recorded == expected


def test_threshold_change_takes_effect_on_next_call():
    """set_level at run time applies to the very next call."""

    @traced_usage(level=INFO)
    def f():
        return 1

    with capture_usage(level=DEFAULT) as usage:
        f()
        otel_usage.set_level("info")
        f()
        otel_usage.set_level(NONE)
        f()
    assert len(usage.logs) == 1


def test_filtered_probe_hides_its_subtree_and_nested_filtered():
    """A filtered probe hides every probe it calls, through nested filtered probes and recursion."""

    @traced_usage(level=DEFAULT)
    def visible_child():
        return 1

    @traced_usage(level=DEBUG)
    def hidden_inner(n):
        if n:
            return hidden_inner(n - 1)
        return visible_child()

    @traced_usage(level=DEBUG)
    def hidden_outer():
        return hidden_inner(2) + visible_child()

    @traced_usage(level=DEFAULT)
    def top():
        return hidden_outer() + visible_child()

    with capture_usage(level=DEFAULT) as usage:
        assert hidden_outer() == 2
        assert top() == 3
    logs = usage.logs
    assert len(logs) == 1
    assert [r["function"].rsplit(".", 1)[1] for r in logs[0]["data"]] == ["top", "visible_child"]


def test_filtered_probe_hides_other_instrumentation_spans():
    """Spans of other instrumentations started inside a filtered probe are not recorded either."""
    with capture_usage(level=DEFAULT) as usage:
        tracer = usage.tracer_provider.get_tracer("db")

        @traced_usage(level=DEBUG)
        def quiet():
            with tracer.start_as_current_span("SELECT"):
                return 1

        @traced_usage
        def loud():
            with tracer.start_as_current_span("INSERT"):
                pass
            return quiet()

        loud()
    (log,) = usage.logs
    assert [r["function"].rsplit(".", 1)[-1] for r in log["data"]] == ["loud", "INSERT"]
    assert log["data"][1]["tracker"] == "db"


def test_no_info_leak_between_logs():
    """Info added in one unit of work never appears in a later unrelated log."""

    @traced_usage
    def first():
        add_info("user", "alice")

    @traced_usage
    def second():
        return 2

    with capture_usage() as usage:
        first()
        add_info("stray", 1)
        second()
    a, b = usage.logs
    assert a["user"] == "alice"
    assert "user" not in b and "stray" not in b


class Boom(Exception):
    pass


def test_exception_flagged_and_reraised_unchanged():
    """An exception is recorded and re-raised as the same object with its traceback."""
    raised = Boom("bad thing")

    @traced_usage
    def inner():
        raise raised

    @traced_usage
    def outer():
        try:
            inner()
        except Boom:
            pass
        inner()

    with capture_usage() as usage, pytest.raises(Boom) as info:
        outer()
    assert info.value is raised
    frames = [f.name for f in info.traceback]
    assert "inner" in frames and "outer" in frames
    (log,) = usage.logs
    assert log["status"] == "error"
    assert log["error"] == {"type": "Boom", "message": "bad thing"}
    assert [r["exception"] for r in log["data"]] == [True, True, True]
    assert log["data"][1]["error"] == {"type": "Boom", "message": "bad thing"}


def test_unserializable_params_never_break_the_call():
    """Hostile parameters never change the call's result or later logs."""

    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr")

        def __eq__(self, other):
            raise RuntimeError("no eq")

        __hash__ = None

    @traced_usage
    def f(x):
        return "ok"

    with capture_usage() as usage:
        assert f(Hostile()) == "ok"
        assert f(1) == "ok"
    logs = usage.logs
    assert len(logs) == 2
    json.dumps(logs[0], allow_nan=False)
    assert logs[1]["data"][0]["params"] == {"x": 1}


def test_record_return():
    """record_return adds the serialized return value."""

    @traced_usage(record_return=True)
    def f():
        return {"a": (1, 2)}

    with capture_usage() as usage:
        f()
    assert usage.logs[0]["data"][0]["return"] == {"a": [1, 2]}


def test_threads_give_independent_logs():
    """8 threads x 50 calls give 400 correct, independent logs."""

    @traced_usage
    def work(thread, i):
        add_info("thread", thread)
        return leaf(i)

    def run(t):
        for i in range(50):
            work(t, i)

    with capture_usage() as usage:
        threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    logs = usage.logs
    assert len(logs) == 400
    seen = set()
    for log in logs:
        root, child = log["data"]
        assert root["params"]["thread"] == log["thread"]
        assert child["params"] == {"x": root["params"]["i"], "y": 2}
        seen.add((log["thread"], root["params"]["i"]))
    assert len(seen) == 400


def test_async_functions_nest():
    """Async probes record like sync ones, with callees nested."""

    @traced_usage
    async def child(n):
        await asyncio.sleep(0)
        return n

    @traced_usage
    async def parent():
        return await child(1) + await child(2)

    with capture_usage() as usage:
        assert asyncio.run(parent()) == 3
    (log,) = usage.logs
    assert [(r["function"].rsplit(".", 1)[1], r["depth"]) for r in log["data"]] == [
        ("parent", 0),
        ("child", 1),
        ("child", 1),
    ]


def test_generator_span_covers_iteration_and_callees_nest():
    """A generator's record spans the whole iteration; probes called while it runs nest under it."""

    @traced_usage
    def rows(n):
        for i in range(n):
            yield leaf(i)

    @traced_usage
    def consume():
        return sum(rows(3))

    with capture_usage() as usage:
        assert consume() == 9
        assert list(rows(1)) == [2]
    first, second = usage.logs
    assert [r["depth"] for r in first["data"]] == [0, 1, 2, 2, 2]
    gen_record = first["data"][1]
    assert gen_record["params"] == {"n": 3}
    assert [r["depth"] for r in second["data"]] == [0, 1]


def test_generator_close_and_throw():
    """Closing a generator early ends its record without an error; throw() reaches the generator."""

    @traced_usage
    def counter():
        try:
            n = 0
            while True:
                got = yield n
                n += got or 1
        except ValueError:
            yield -1

    with capture_usage() as usage:
        g = counter()
        assert next(g) == 0
        assert g.send(5) == 5
        assert g.throw(ValueError()) == -1
        g.close()
    (log,) = usage.logs
    assert log["data"][0]["exception"] is False


def test_async_generator():
    """Async generators are recorded over their whole iteration."""

    @traced_usage
    async def agen(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield leaf(i)

    async def main():
        return [x async for x in agen(2)]

    with capture_usage() as usage:
        assert asyncio.run(main()) == [2, 3]
    (log,) = usage.logs
    assert [r["depth"] for r in log["data"]] == [0, 1, 1]


def test_same_tracker_for_same_name():
    """get_tracker returns one tracker per name."""
    assert get_tracker("a.b") is get_tracker("a.b")
    assert get_tracker("a.b") is not get_tracker("a.c")


def test_bad_decoration_arguments_raise_at_decoration():
    """A bad level or an unknown include name is a clear error when decorating."""
    with pytest.raises(ValueError, match="level"):
        traced_usage(level="loud")(leaf)
    with pytest.raises(ValueError):
        traced_usage(include=["nope"])(leaf)


def test_probe_without_pipeline_just_calls():
    """With no pipeline configured, probes call the function and record nothing."""
    assert root_call(1) == 14


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX")
def test_bare_probe_decorator():
    """tr.probe works bare too."""

    @tr.probe
    def f():
        return 5

    with capture_usage() as usage:
        assert f() == 5
    assert usage.logs[0]["data"][0]["level"] == "DEFAULT"
