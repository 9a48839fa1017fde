"""An event's context is the merge of the usage contexts open when it is emitted (edX ``resolve_context``).

The usage log's own info keeps everything set during the unit of work; these tests pin the difference,
and how the context reaches (or does not reach) threads and asyncio tasks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import otel_usage
from otel_usage import add_info, event, get_info, traced_usage, transaction, usage_context
from otel_usage.testing import capture_usage


def contexts(log):
    """{event name: its context} of one usage log."""
    return {e["name"]: e["context"] for e in log["events"]}


def test_the_issue_scenario_nesting_then_exit():
    """e1 sees the inner value, e2 the outer one, e3 (after both exited) no longer sees the key at all."""

    @traced_usage
    def root():
        with usage_context(x=1):
            with usage_context(x=2):
                event("e1")
            event("e2")
        event("e3")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {"e1": {"x": 2}, "e2": {"x": 1}, "e3": {}}
    # the usage log's info still records what was set during the unit of work (the value set last)
    assert log["x"] == 2


def test_context_exited_by_an_exception_is_gone_from_later_events():
    """A context left through an exception leaves the info in force; the exception reaches the caller unchanged."""
    boom = KeyError("missing")
    seen = {}

    @traced_usage
    def root():
        try:
            with usage_context(step="load", attempt=1):
                event("inside")
                raise boom
        except KeyError as exc:
            seen["exc"] = exc
        event("after")
        with pytest.raises(KeyError) as info, usage_context(step="never-left"):
            raise boom
        seen["again"] = info.value
        event("after-again")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {"inside": {"step": "load", "attempt": 1}, "after": {}, "after-again": {}}
    assert seen["exc"] is boom and seen["again"] is boom
    assert log["step"] == "never-left" and log["attempt"] == 1


def test_exception_escaping_the_probe_keeps_earlier_events_exact():
    """When the exception leaves the probed call too, events before it keep their contexts and the log its error."""

    @traced_usage
    def root():
        with usage_context(phase="a"):
            event("in-a")
        with usage_context(phase="b"):
            event("in-b")
            raise ValueError("stop")

    with capture_usage() as usage:
        with pytest.raises(ValueError, match="stop"):
            root()
        event("outside")
    first, standalone = usage.logs
    assert contexts(first) == {"in-a": {"phase": "a"}, "in-b": {"phase": "b"}}
    assert first["status"] == "error"
    assert contexts(standalone) == {"outside": {}}


def test_same_key_at_several_levels_inner_wins_and_outer_keys_stay():
    """Each level overrides only its own keys; leaving a level brings back exactly the one below."""

    @traced_usage
    def root():
        with usage_context(user="u0", tenant="t", lang="fr"):
            event("l1")
            with usage_context(user="u1", course="c1"):
                event("l2")
                with usage_context(user="u2", lang="en"):
                    event("l3")
                    assert get_info() == {"user": "u2", "tenant": "t", "lang": "en", "course": "c1"}
                event("back-to-l2")
            event("back-to-l1")
        event("none")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {
        "l1": {"user": "u0", "tenant": "t", "lang": "fr"},
        "l2": {"user": "u1", "tenant": "t", "lang": "fr", "course": "c1"},
        "l3": {"user": "u2", "tenant": "t", "lang": "en", "course": "c1"},
        "back-to-l2": {"user": "u1", "tenant": "t", "lang": "fr", "course": "c1"},
        "back-to-l1": {"user": "u0", "tenant": "t", "lang": "fr"},
        "none": {},
    }


def test_event_context_is_what_get_info_returns_at_that_point():
    """get_info() and the event context are the same resolution, before, inside and after contexts."""
    expected = []

    @traced_usage
    def root():
        for step in range(3):
            with usage_context(step=step):
                expected.append(get_info())
                event(f"s{step}")
            expected.append(get_info())
            event(f"after{step}")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert [e["context"] for e in log["events"]] == expected
    assert expected == [{"step": 0}, {}, {"step": 1}, {}, {"step": 2}, {}]


def test_contexts_entered_outside_the_probe_are_in_its_events():
    """A context open around the probed call is open for the events inside it."""

    @traced_usage
    def root():
        event("inside")

    with capture_usage() as usage:
        with usage_context(tenant="acme"):
            root()
        root()
    inside, outside = usage.logs
    assert contexts(inside) == {"inside": {"tenant": "acme"}}
    assert inside["tenant"] == "acme"
    assert contexts(outside) == {"inside": {}} and "tenant" not in outside


def test_decorated_function_context_ends_with_the_call():
    """usage_context as a decorator: its keys are in force during the call only."""

    @usage_context(feature="export")
    def export():
        event("export.run")

    @traced_usage
    def root():
        export()
        event("after")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {"export.run": {"feature": "export"}, "after": {}}


def test_add_info_is_in_force_until_its_call_ends():
    """add_info in the root reaches every later event; in a child, only until the child returns."""

    @traced_usage
    def child():
        add_info("step", "child")
        event("in-child")

    @traced_usage
    def root():
        add_info("user", "ann")
        event("first")
        child()
        event("after-child")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {
        "first": {"user": "ann"},
        "in-child": {"user": "ann", "step": "child"},
        "after-child": {"user": "ann"},
    }
    assert log["user"] == "ann" and log["step"] == "child"


def test_add_info_and_usage_context_on_one_key_the_later_wins():
    """add_info and usage_context form one stack: the one set later (inner) wins while it is in force."""

    @traced_usage
    def root():
        add_info("plan", "free")
        with usage_context(plan="trial"):
            event("ctx-over-info")
            add_info("plan", "pro")
            event("info-over-ctx")
        event("after")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {
        "ctx-over-info": {"plan": "trial"},
        "info-over-ctx": {"plan": "pro"},
        # an add_info inside a usage_context block ends with the block, as its baggage does
        "after": {"plan": "free"},
    }
    assert log["plan"] == "pro"


def test_allow_listed_inbound_baggage_is_the_outermost_context():
    """Inbound allow-listed baggage is in every event's context; a usage context of the same key overrides it."""
    upstream = SpanContext(trace_id=0xABC, span_id=0x5, is_remote=True, trace_flags=TraceFlags(1))
    ctx = baggage.set_baggage("tenant", "acme", trace.set_span_in_context(NonRecordingSpan(upstream)))
    ctx = baggage.set_baggage("role", "admin", ctx)

    @traced_usage
    def handler():
        event("plain")
        with usage_context(tenant="override"):
            event("overridden")
        event("back")

    with capture_usage(baggage_allow=("tenant",)) as usage:
        token = context.attach(ctx)
        try:
            handler()
        finally:
            context.detach(token)
    (log,) = usage.logs
    assert contexts(log) == {
        "plain": {"tenant": "acme"},
        "overridden": {"tenant": "override"},
        "back": {"tenant": "acme"},
    }


def test_event_outside_any_unit_of_work_after_a_context_exited():
    """A standalone event after its context exited carries nothing of it either."""
    with capture_usage() as usage:
        with usage_context(job="cleanup"):
            event("job.start")
        event("job.end")
    start, end = usage.logs
    assert contexts(start) == {"job.start": {"job": "cleanup"}}
    assert contexts(end) == {"job.end": {}}


def test_events_in_a_transaction_see_the_contexts_open_around_it():
    """A transaction is its own log, but a context open around it is still open for its events."""
    with capture_usage() as usage, usage_context(batch="nightly"), transaction("import"):
        with usage_context(file="a.csv"):
            event("file.loaded")
        event("import.done")
    (log,) = usage.logs
    assert contexts(log) == {"file.loaded": {"batch": "nightly", "file": "a.csv"}, "import.done": {"batch": "nightly"}}


def test_changing_one_events_context_in_a_processor_changes_nothing_else():
    """Contexts are copies: a usage processor editing one event's context leaves other events and logs alone."""

    def scrub(log):
        if log.get("events"):
            log["events"][0]["context"]["tenant"] = "scrubbed"

    @traced_usage
    def root():
        event("a")
        event("b")

    with capture_usage(processors=[scrub]) as usage, usage_context(tenant="acme"):
        root()
        root()
        assert get_info() == {"tenant": "acme"}
    first, second = usage.logs
    assert [e["context"] for e in first["events"]] == [{"tenant": "scrubbed"}, {"tenant": "acme"}]
    assert [e["context"] for e in second["events"]] == [{"tenant": "scrubbed"}, {"tenant": "acme"}]


def test_context_held_across_yield_in_a_probed_generator_stays_open_inside_only():
    """A probed generator's open contexts (and add_info) last across its yields, and never leak to the caller."""

    @traced_usage
    def rows():
        add_info("source", "db")
        with usage_context(batch=1):
            event("g.first")
            yield 1
            event("g.second")
            yield 2
        event("g.after")

    @traced_usage
    def root():
        for n in rows():
            event(f"caller.{n}")
        event("caller.end")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {
        "g.first": {"source": "db", "batch": 1},
        "caller.1": {},
        "g.second": {"source": "db", "batch": 1},
        "caller.2": {},
        "g.after": {"source": "db"},
        "caller.end": {},
    }


def test_context_held_across_yield_in_a_probed_async_generator():
    """The same for async generators: open inside across awaits and yields, invisible to the consumer."""

    @traced_usage
    async def pages():
        with usage_context(cursor="c1"):
            event("p.first")
            yield 1
            await asyncio.sleep(0)
            event("p.second")
            yield 2
        event("p.after")

    @traced_usage
    async def root():
        async for n in pages():
            event(f"consumer.{n}")

    with capture_usage() as usage:
        asyncio.run(root())
    (log,) = usage.logs
    assert contexts(log) == {
        "p.first": {"cursor": "c1"},
        "consumer.1": {},
        "p.second": {"cursor": "c1"},
        "consumer.2": {},
        "p.after": {},
    }


def test_context_held_across_yield_in_an_unprobed_generator_is_seen_by_its_consumer():
    """Without a probe, a generator runs in its consumer's context (Python's rule, as documented)."""

    def rows():
        with usage_context(batch=1):
            yield 1

    @traced_usage
    def root():
        for n in rows():
            event(f"consumer.{n}")
        event("after")

    with capture_usage() as usage:
        root()
    assert contexts(usage.logs[0]) == {"consumer.1": {"batch": 1}, "after": {}}


# --- threads ---------------------------------------------------------------------------------------


def test_thread_with_a_copied_context_sees_what_was_open_at_the_copy_only():
    """contextvars semantics: a copy taken inside a context keeps it; contexts entered later are not in it."""
    go = threading.Event()

    def worker():
        go.wait(5)
        event("worker.before")
        with usage_context(in_worker=True):
            event("worker.inside")
        event("worker.after")

    @traced_usage
    def root():
        with usage_context(tenant="acme"):
            ctx = contextvars.copy_context()
            thread = threading.Thread(target=ctx.run, args=(worker,))
            thread.start()
        # the parent has exited "tenant" and enters a context of its own: the thread keeps its copy
        with usage_context(parent_only=True):
            event("parent")
            go.set()
            thread.join(5)
        event("parent.after")

    with capture_usage() as usage:
        root()
    (log,) = usage.logs
    assert contexts(log) == {
        "worker.before": {"tenant": "acme"},
        "worker.inside": {"tenant": "acme", "in_worker": True},
        "worker.after": {"tenant": "acme"},
        "parent": {"parent_only": True},
        "parent.after": {},
    }


def test_plain_thread_inherits_no_context():
    """A plain threading.Thread starts with an empty context: no usage context, and no unit of work."""
    # Python 3.14 can make threads inherit the caller's context (sys.flags.thread_inherit_context);
    # then the thread is inside the unit of work and its contexts like a copied context's.
    inherits = bool(getattr(sys.flags, "thread_inherit_context", 0))

    def worker():
        event("from.plain.thread")

    @traced_usage
    def root():
        with usage_context(tenant="acme"):
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join(5)
            event("parent")

    with capture_usage() as usage:
        root()
    logs = {e["name"]: log for log in usage.logs for e in log["events"]}
    assert logs["parent"]["events"][-1]["context"] == {"tenant": "acme"}
    thread_log = logs["from.plain.thread"]
    if inherits:
        assert thread_log is logs["parent"]
        assert thread_log["events"][0]["context"] == {"tenant": "acme"}
    else:
        assert thread_log is not logs["parent"]
        assert thread_log["events"][0]["context"] == {} and "tenant" not in thread_log


def test_executor_threads_see_contexts_only_when_given_a_copy():
    """ThreadPoolExecutor.submit copies no context; submitting ctx.run does (as asyncio.to_thread does)."""

    @traced_usage
    def root(pool):
        with usage_context(tenant="acme"):
            pool.submit(event, "bare").result(5)
            pool.submit(contextvars.copy_context().run, event, "copied").result(5)

    with capture_usage() as usage, concurrent.futures.ThreadPoolExecutor(1) as pool:
        root(pool)
    by_name = {e["name"]: e["context"] for log in usage.logs for e in log["events"]}
    assert by_name == {"bare": {}, "copied": {"tenant": "acme"}}


def test_concurrent_threads_each_see_only_their_own_contexts():
    """Threads running the same code under different contexts at once never mix them up."""
    barrier = threading.Barrier(4)

    @traced_usage
    def handle(user):
        with usage_context(user=user):
            barrier.wait(5)
            for step in range(20):
                with usage_context(step=step):
                    event("tick")
            event("done")

    with capture_usage() as usage:
        threads = [threading.Thread(target=handle, args=(f"u{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    logs = usage.logs
    assert len(logs) == 4
    for log in logs:
        user = log["user"]
        ticks = [e["context"] for e in log["events"] if e["name"] == "tick"]
        assert ticks == [{"user": user, "step": step} for step in range(20)]
        assert log["events"][-1]["context"] == {"user": user}


# --- asyncio tasks ---------------------------------------------------------------------------------


def test_task_sees_contexts_open_at_its_creation_even_after_the_parent_exits_them():
    """A task copies the context when created: it keeps the parent's contexts, and its own stay its own."""
    release = None

    async def child():
        await release.wait()
        event("child.first")
        with usage_context(child_only=True):
            await asyncio.sleep(0)
            event("child.inside")
        event("child.after")

    @traced_usage
    async def root():
        nonlocal release
        release = asyncio.Event()
        with usage_context(tenant="acme"):
            task = asyncio.create_task(child())
        with usage_context(later=True):
            event("parent.later")
            release.set()
            await task
        event("parent.after")

    with capture_usage() as usage:
        asyncio.run(root())
    (log,) = usage.logs
    assert contexts(log) == {
        "child.first": {"tenant": "acme"},
        "child.inside": {"tenant": "acme", "child_only": True},
        "child.after": {"tenant": "acme"},
        "parent.later": {"later": True},
        "parent.after": {},
    }


def test_interleaved_tasks_keep_their_own_nested_contexts():
    """Tasks switching at every await each resolve their own stack of contexts."""

    async def job(name):
        with usage_context(job=name):
            for depth in range(3):
                with usage_context(depth=depth, job=f"{name}.{depth}"):
                    await asyncio.sleep(0)
                    event("step")
                await asyncio.sleep(0)
                event("between")

    @traced_usage
    async def root():
        with usage_context(run="r1"):
            await asyncio.gather(job("a"), job("b"), job("c"))
        event("end")

    with capture_usage() as usage:
        asyncio.run(root())
    (log,) = usage.logs
    steps = [e["context"] for e in log["events"] if e["name"] == "step"]
    betweens = [e["context"] for e in log["events"] if e["name"] == "between"]
    assert sorted((c["job"], c["depth"]) for c in steps) == sorted(
        (f"{name}.{d}", d) for name in "abc" for d in range(3)
    )
    assert all(c == {"run": "r1", "job": c["job"], "depth": c["depth"]} for c in steps)
    assert sorted(c["job"] for c in betweens) == sorted(name for name in "abc" for _ in range(3))
    assert all(set(c) == {"run", "job"} and c["job"] in "abc" for c in betweens)
    last = log["events"][-1]
    assert last["name"] == "end" and last["context"] == {}


def test_to_thread_carries_the_context():
    """asyncio.to_thread copies the caller's context: the thread sees the contexts open at the call."""

    @traced_usage
    async def root():
        with usage_context(tenant="acme"):
            await asyncio.to_thread(event, "in.thread")
        await asyncio.to_thread(event, "after")

    with capture_usage() as usage:
        asyncio.run(root())
    (log,) = usage.logs
    assert contexts(log) == {"in.thread": {"tenant": "acme"}, "after": {}}


# --- limits and late events ------------------------------------------------------------------------


def emit_event(i):
    event("e", {"i": i})


def emit_line(i):
    otel_usage.log.info(f"line {i}")


def emit_timer(i):
    with otel_usage.timer(f"t{i}"):
        pass


KINDS = [
    pytest.param(emit_event, "events", "event", id="event"),
    pytest.param(emit_line, "logs", "log_line", id="log_line"),
    pytest.param(emit_timer, "timers", "timer", id="timer"),
]


@pytest.mark.parametrize(("emit", "field", "kind"), KINDS)
def test_items_after_their_log_was_emitted_are_counted_not_kept(emit, field, kind):
    """Code still running with a unit of work's context after its log left: counted as late, never raised."""
    otel_usage._counters.reset()
    holder = {}

    @traced_usage
    def root():
        holder["ctx"] = contextvars.copy_context()
        emit(0)

    with capture_usage() as usage:
        root()
        (log,) = usage.logs
        holder["ctx"].run(emit, 1)
        assert usage.logs == [log]
    assert len(log[field]) == 1
    assert otel_usage.stats()["dropped"][f"late_{kind}"] == 1


@pytest.mark.parametrize(("emit", "field", "kind"), KINDS)
def test_items_per_log_are_bounded_and_counted(emit, field, kind):
    """One unit of work cannot grow without bound: items beyond the cap are counted, the first ones kept."""
    from otel_usage._log_items import MAX_ITEMS_PER_LOG

    otel_usage._counters.reset()

    @traced_usage
    def root():
        for i in range(MAX_ITEMS_PER_LOG + 5):
            emit(i)
        return "ok"

    with capture_usage() as usage:
        assert root() == "ok"
    (log,) = usage.logs
    assert len(log[field]) == MAX_ITEMS_PER_LOG
    assert otel_usage.stats()["dropped"][f"{kind}s_per_log"] == 5
    if kind == "event":
        assert log[field][-1]["data"] == {"i": MAX_ITEMS_PER_LOG - 1}
