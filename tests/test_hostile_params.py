"""Hostile parameter objects through real probes and the real JSONL file exporter.

Generated objects (cycles, nesting 10,000 deep, 10 MB strings and bytes, objects whose ``__repr__``,
``__str__``, ``__getattr__``, ``__len__``, ``__iter__`` or ``__usage__`` raise or return non-strings,
infinite iterators) are passed to probed functions, 10,000 of them in all. Internal errors re-raise under
the test suite (``tests/conftest.py``), so "no exception into the caller" also means "no internal error".
The worst-case time per call is measured by ``benchmarks/bench_hostile.py``, not here.
"""

from __future__ import annotations

import array
import base64
import collections
import dataclasses
import decimal
import enum
import fractions
import itertools
import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from otel_usage import _counters, add_data, add_info, traced_usage
from otel_usage._capture import ParamCapture
from otel_usage._redact import Redactor
from otel_usage._serialize import SerializeLimits, get_policy, serialize, set_policy
from otel_usage.exporters.file import FileUsageExporter
from otel_usage.exporters.sql import SqlUsageExporter
from otel_usage.testing import capture_usage

MB = 1 << 20
TIGHT = {"param_max_depth": 3, "param_max_length": 16, "param_max_items": 3, "param_max_size": 64}


class Boom(Exception):
    """What the hostile methods raise."""


# --- hostile behaviours ----------------------------------------------------------------------------------


def _raise(self: Any, *args: Any) -> Any:
    raise Boom("hostile")


def _recurse(self: Any, *args: Any) -> Any:
    return _recurse(self)


def _huge_text(self: Any, *args: Any) -> str:
    return "r" * (10 * MB)


def _new_of_same_class(self: Any) -> Any:
    return type(self).__new__(type(self))


#: What a text method (``__repr__``, ``__str__``) may do.
TEXT = {
    "raise": _raise,
    "recurse": _recurse,
    "int": lambda self: 42,
    "bytes": lambda self: b"bytes",
    "none": lambda self: None,
    "self": lambda self: self,
    "huge": _huge_text,
    "surrogate": lambda self: "lone \udcff surrogate",
}
#: What ``__len__`` may do.
LENGTH = {"raise": _raise, "negative": lambda self: -1, "huge": lambda self: 1 << 70, "float": lambda self: 1.5}
#: What ``__iter__`` may do.
ITERATE = {
    "raise": _raise,
    "endless": lambda self: itertools.count(),
    "not-an-iterator": lambda self: 42,
    "self-forever": lambda self: itertools.repeat(self),
}
#: What a representation hook (``__usage__``, ``__track__``, ``model_dump``) may do.
HOOK = {
    "raise": _raise,
    "recurse": _recurse,
    "self": lambda self: self,
    "new": _new_of_same_class,
    "fan-out": lambda self: [_new_of_same_class(self) for _ in range(100)],
    "cycle": lambda self: {"me": self, "list": [self, self]},
    "huge": _huge_text,
    "endless": lambda self: itertools.count(),
    "nan": lambda self: [float("nan"), float("inf"), 1 << 5000],
}
#: What ``__getattr__``/``__getattribute__`` may do.
ATTRIBUTE = {"raise": _raise, "recurse": _recurse, "none": lambda self, name: None, "int": lambda self, name: 7}

BASES: dict[str, tuple[type, Callable[[type], Any]]] = {
    "object": (object, lambda cls: cls()),
    "list": (list, lambda cls: cls([1, "two", None])),
    "dict": (dict, lambda cls: cls(a=1, password="secret")),
    "str": (str, lambda cls: cls("text")),
    "int": (int, lambda cls: cls(7)),
    "float": (float, lambda cls: cls("nan")),
    "tuple": (tuple, lambda cls: cls((1, 2))),
    "set": (set, lambda cls: cls({1, 2})),
    "exception": (Exception, lambda cls: cls("message")),
    "mapping": (collections.abc.Mapping, lambda cls: cls()),
    "sequence": (collections.abc.Sequence, lambda cls: cls()),
}

_classes: dict[tuple[Any, ...], type] = {}


def hostile_class(base: str, methods: tuple[tuple[str, str, str], ...], name: str) -> type:
    """A class built on ``base`` whose methods behave as ``methods`` says ((dunder, table, behaviour), ...)."""
    key = (base, methods, name)
    cls = _classes.get(key)
    if cls is None:
        tables = {"text": TEXT, "len": LENGTH, "iter": ITERATE, "hook": HOOK, "attr": ATTRIBUTE}
        namespace: dict[str, Any] = {dunder: tables[table][behaviour] for dunder, table, behaviour in methods}
        if BASES[base][0] in (collections.abc.Mapping, collections.abc.Sequence):
            namespace.setdefault("__getitem__", _raise)
            namespace.setdefault("__len__", LENGTH["huge"])
            namespace.setdefault("__iter__", ITERATE["endless"])
        if "__getattribute__" in namespace:  # keep construction possible: only our names misbehave
            hostile = namespace.pop("__getattribute__")

            def getattribute(self: Any, attr: str, hostile: Any = hostile) -> Any:
                if attr.startswith("__") and attr not in ("__usage__", "__track__", "__dict__"):
                    return object.__getattribute__(self, attr)
                return hostile(self, attr)

            namespace["__getattribute__"] = getattribute
        cls = type(name, (BASES[base][0],), namespace)
        _classes[key] = cls
    return cls


def _methods(dunders: list[str], table: str, behaviours: dict[str, Any]) -> st.SearchStrategy[tuple[str, str, str]]:
    return st.tuples(st.sampled_from(dunders), st.just(table), st.sampled_from(sorted(behaviours)))


method_specs = st.one_of(
    _methods(["__repr__", "__str__"], "text", TEXT),
    _methods(["__len__"], "len", LENGTH),
    _methods(["__iter__"], "iter", ITERATE),
    _methods(["__usage__", "__track__", "model_dump"], "hook", HOOK),
    _methods(["__getattr__", "__getattribute__"], "attr", ATTRIBUTE),
)
CLASS_NAMES = ("Hostile", "x" * 10_000, "名前", "", "a b;c'd")
hostile_instances = st.tuples(
    st.just("hostile"),
    st.sampled_from(sorted(BASES)),
    st.lists(method_specs, min_size=1, max_size=4, unique_by=lambda m: m[0]).map(lambda m: tuple(sorted(m))),
    st.integers(0, len(CLASS_NAMES) - 1),
)


# --- other hostile values --------------------------------------------------------------------------------


class Endless:
    """An infinite iterator whose repr raises: counts 0, 1, 2, ..."""

    def __init__(self) -> None:
        self.n = 0

    def __iter__(self) -> Endless:
        return self

    def __next__(self) -> int:
        self.n += 1
        return self.n - 1

    def __repr__(self) -> str:
        raise Boom("no repr")


def counting_generator() -> Iterator[int]:
    """An infinite generator: 0, 1, 2, ..."""
    yield from itertools.count()


#: Types of the iterators below: the probed function reads their first item, which must still be 0.
COUNTING = (Endless, type(counting_generator()), itertools.count)

ITERATORS: dict[str, Callable[[], Iterator[int]]] = {
    "endless": Endless, "generator": counting_generator, "count": itertools.count,
}  # fmt: skip
iterators = st.tuples(st.just("iterator"), st.sampled_from(sorted(ITERATORS)))


def nested(kind: str, depth: int) -> Any:
    """A value nested ``depth`` levels deep."""
    value: Any = "bottom"
    for _ in range(depth):
        if kind == "list":
            value = [value]
        elif kind == "dict":
            value = {"k": value}
        elif kind == "tuple":
            value = (value,)
        elif kind == "deque":
            value = collections.deque([value])
        else:
            value = Wrapper(value)
    return value


class Wrapper:
    """Represented by a list holding what it wraps (a chain of representation hooks)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __usage__(self) -> Any:
        return [self.inner]


@dataclasses.dataclass
class Node:
    """A dataclass that can point at itself."""

    child: Any = None


def cycle(kind: str) -> Any:
    """A value that contains itself."""
    if kind == "list":
        value: Any = [1]
        value.append(value)
        return value
    if kind == "dict":
        d: dict[str, Any] = {}
        d["self"] = d
        return d
    if kind == "mutual":
        a: list[Any] = []
        b = {"a": a}
        a.append(b)
        return a
    if kind == "dataclass":
        node = Node()
        node.child = node
        return node
    if kind == "deque":
        q: collections.deque[Any] = collections.deque()
        q.append(q)
        return q
    wrapper = Wrapper(None)
    wrapper.inner = wrapper
    return wrapper


class TextSubclass(str):
    """A str subclass whose __str__ raises."""

    def __str__(self) -> str:
        raise Boom("no str")


def big_text(size: int, char: str, subclass: bool) -> str:
    value = char * size
    return TextSubclass(value) if subclass else value


def binary(kind: str, size: int) -> Any:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "strided":
        return memoryview(data)[::3]
    if kind == "cast":
        return memoryview(data[: size - size % 8]).cast("d")
    if kind == "released":
        view = memoryview(data)
        view.release()
        return view
    return memoryview(data)


class Color(enum.Enum):
    RED = Endless()


NUMBERS = [
    float("nan"), float("inf"), -float("inf"), 1 << 5000, -(10 ** 4400), decimal.Decimal("1e999999"),
    decimal.Decimal("nan"), fractions.Fraction(10 ** 5000, 3), complex("nan"), Color.RED, True,
]  # fmt: skip

numbers = st.tuples(st.just("number"), st.integers(0, len(NUMBERS) - 1))


def strings(max_size: int) -> st.SearchStrategy[Any]:
    return st.tuples(
        st.just("string"),
        st.integers(0, max_size),
        st.sampled_from(["x", "é", "😀", "\udcff", "\x00", '"', "\\", "\n", "\u2028"]),
        st.booleans(),
    )


def binaries(max_size: int) -> st.SearchStrategy[Any]:
    kinds = st.sampled_from(["bytes", "bytearray", "memoryview", "strided", "cast", "released"])
    return st.tuples(st.just("binary"), kinds, st.integers(8, max_size))


CONTAINERS: dict[str, Callable[[int], Any]] = {
    "array": lambda n: array.array("d", range(n)),
    "userlist": lambda n: collections.UserList(range(n)),
    "keys": lambda n: dict.fromkeys(range(n)).keys(),
    "values": lambda n: dict.fromkeys(range(n)).values(),
    "userstring": lambda n: collections.UserString("u" * n),
    "kwargs-like": lambda n: {f"k{i}": "v" * 50 for i in range(n)},
}


def container(kind: str, size: int) -> Any:
    return CONTAINERS[kind](size)


def containers(max_size: int) -> st.SearchStrategy[Any]:
    return st.tuples(st.just("container"), st.sampled_from(sorted(CONTAINERS)), st.integers(0, max_size))


leaves = st.one_of(
    hostile_instances,
    iterators,
    st.tuples(st.just("nested"), st.sampled_from(["list", "dict", "tuple", "deque", "hook"]), st.integers(1, 10_000)),
    st.tuples(st.just("cycle"), st.sampled_from(["list", "dict", "mutual", "dataclass", "deque", "hook"])),
    strings(2048),
    binaries(4096),
    containers(200),
    numbers,
    st.tuples(st.just("text"), st.text()),
)
#: One of these per call: a 10 MB string (up to 40 MB of memory), 10 MB of bytes, 100,000 items.
big_values = st.one_of(strings(10 * MB), binaries(10 * MB), containers(100_000))
hashable_keys = st.one_of(
    st.text(max_size=20), st.integers(), st.floats(), st.none(), st.sampled_from(["password", "x" * 5000, "\udcff"])
)
hostile_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.tuples(st.just("list"), st.lists(children, max_size=4)),
        st.tuples(st.just("tuple"), st.tuples(children, children)),
        st.tuples(st.just("dict"), st.lists(st.tuples(hashable_keys, children), max_size=4)),
    ),
    max_leaves=4,
)


def build(recipe: tuple[Any, ...]) -> Any:
    """The hostile value a recipe describes (strategies draw recipes: plain data that hypothesis can print
    safely; printing the hostile values themselves could raise or never end)."""
    kind, *args = recipe
    if kind == "hostile":
        base, methods, name = args
        return BASES[base][1](hostile_class(base, methods, CLASS_NAMES[name]))
    if kind == "list":
        return [build(item) for item in args[0]]
    if kind == "tuple":
        return tuple(build(item) for item in args[0])
    if kind == "dict":
        return {key: build(item) for key, item in args[0]}
    if kind == "text":
        return args[0]
    makers: dict[str, Callable[..., Any]] = {
        "iterator": lambda name: ITERATORS[name](),
        "nested": nested,
        "cycle": cycle,
        "string": big_text,
        "binary": binary,
        "container": container,
        "number": NUMBERS.__getitem__,
    }
    return makers[kind](*args)


keyword_names = st.one_of(
    st.text(min_size=1, max_size=10), st.sampled_from(["api_key", "é" * 2000, "k\udcff", "**e1", "…", "rest", "self"])
).filter(lambda name: name not in ("a", "b", "key"))  # those are named parameters of ``target``


# --- the probed functions --------------------------------------------------------------------------------


@traced_usage
def inner(value: Any) -> None:
    """A nested probe: the same hostile value in a child record."""


@traced_usage(record_return=True)
def target(a: Any, b: Any = None, *rest: Any, key: Any = None, **extra: Any) -> tuple[str, list[int], list[Any]]:
    """Takes hostile values every way a function can, records some as data and info, returns them unchanged."""
    values = [a, b, *rest, key, *extra.values()]
    inner(a)
    add_data("hostile", values)
    add_info("hostile_info", b)
    firsts = [next(v) for v in values if isinstance(v, COUNTING)]
    return "done", firsts, values


def strict_json(line: str) -> Any:
    """Parse one line as strict JSON: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def read_lines(path: Path) -> list[str]:
    """The file's lines: strict UTF-8, split on ``\\n`` only (a JSON string may hold U+2028 or U+0085)."""
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def run_hostile_calls(tmp_path: Path, limits: dict[str, int], examples: int, per_call: int) -> tuple[int, int]:
    """Drive ``examples`` hypothesis examples of ``per_call`` hostile values each through ``target``.

    Returns (values passed, calls made); asserts everything a caller and a reader of the file can see.
    """
    path = tmp_path / "usage.jsonl"
    counts = {"values": 0, "calls": 0}
    _counters.reset()
    with capture_usage(**limits) as usage:
        exporter = FileUsageExporter(path)
        usage.pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=(Phase.generate,),  # no shrinking: each hostile example is big, and the failure is clear
            suppress_health_check=list(HealthCheck),
        )
        @given(
            big=big_values,
            recipes=st.lists(hostile_values, min_size=per_call - 1, max_size=per_call - 1),
            extra_names=st.lists(keyword_names, min_size=2, max_size=2, unique=True),
            split=st.integers(0, 3),
        )
        def one_call(big: Any, recipes: list[Any], extra_names: list[str], split: int) -> None:
            values = [build(recipe) for recipe in recipes[:4]] + [build(big)] + [build(r) for r in recipes[4:]]
            a, b, *rest = values
            positional, keyword = rest[:split], rest[split:]
            key = keyword.pop() if keyword else None
            extra = {f"e{i}": value for i, value in enumerate(keyword)}
            if keyword:  # hostile keyword names too
                extra[extra_names[0]] = extra.pop("e0")
            expected = [a, b, *positional, key, *extra.values()]
            result = target(a, b, *positional, key=key, **extra)
            assert result[0] == "done"
            assert all(r is e for r, e in zip(result[2], expected, strict=True))
            assert result[1] == [0] * sum(isinstance(v, COUNTING) for v in expected)  # not consumed by the probe
            counts["values"] += len(values)
            counts["calls"] += 1

        one_call()
    # Leaving the block shuts the pipeline down: the assembler is joined, then the exporter flushed and closed.
    lines = read_lines(path)
    assert len(lines) == counts["calls"], _counters.stats()  # one log per call: nothing lost
    limits_in_force = SerializeLimits(
        *(limits.get(f"param_{name}", default) for name, default in (("max_depth", 6), ("max_length", 1024),
                                                                     ("max_items", 100), ("max_size", 8192)))
    )  # fmt: skip
    bound = value_bound(limits_in_force)
    for line in lines:
        log = strict_json(line)
        outer, child = log["data"]
        assert outer["function"].endswith("target") and child["function"].endswith("inner")
        for value in [*outer["params"].values(), outer["return"], outer["hostile"], child["params"]["value"]]:
            assert len(json.dumps(value, ensure_ascii=False)) <= bound
    snapshot = _counters.stats()
    assert snapshot.get("internal_errors", 0) == 0
    assert "unserializable:file" not in snapshot  # the file exporter never had to clean up after us
    assert set(snapshot["dropped"]) <= {"info_oversize"}  # an info value too big for baggage: counted
    return counts["values"], counts["calls"]


def value_bound(limits: SerializeLimits) -> int:
    """The documented size bound of one serialized value: the budget, plus about one item per level."""
    return limits.max_size + limits.max_depth * (6 * limits.max_length + 64) + 256


@pytest.fixture(autouse=True)
def default_policy() -> Iterator[None]:
    """Every test starts from the default policy; the previous one is restored afterwards."""
    saved = get_policy()
    set_policy(SerializeLimits(), Redactor())
    yield
    set_policy(*saved)


#: (limits, hypothesis examples, values per call): 600 * 9 + 500 * 10 = 10,400 hostile values in all.
RUNS = [({}, 600, 9), (TIGHT, 500, 10)]


@pytest.mark.parametrize(("limits", "examples", "per_call"), RUNS, ids=["default-limits", "tight-limits"])
def test_hostile_values_never_reach_the_caller_and_every_line_is_json(
    tmp_path: Path, limits: dict[str, int], examples: int, per_call: int
) -> None:
    """Hostile values (one of them 10 MB) passed every way a function takes them: results unchanged,
    iterators unconsumed, no error, one strict-JSON, UTF-8, size-bounded line per call in the real file."""
    values, calls = run_hostile_calls(tmp_path, limits, examples, per_call)
    assert (values, calls) == (examples * per_call, examples)


# --- the defects these tests found (each pinned by a direct test) -----------------------------------------


def many_kwargs(**extra: Any) -> None:
    """Takes any keyword arguments."""


def test_extra_keyword_arguments_share_one_budget() -> None:
    """``f(**client_dict)`` with 10,000 keys records at most max_items of them within one max_size budget
    (it recorded all 10,000, 10 MB, before)."""
    captured = ParamCapture(many_kwargs).capture((), {f"k{i}": "v" * 1000 for i in range(10_000)})
    text = json.dumps(captured)
    assert len(text) <= SerializeLimits().max_size + 2048
    kept = [key for key in captured if key != "…"]
    assert kept == [f"k{i}" for i in range(len(kept))] and 1 <= len(kept) < 100
    assert captured["…"] == f"+{10_000 - len(kept)} items"


def test_extra_keyword_arguments_cut_at_max_items() -> None:
    """Small extras are cut at max_items, with the count of what was left out."""
    captured = ParamCapture(many_kwargs).capture((), {f"k{i}": i for i in range(250)})
    assert captured == {**{f"k{i}": i for i in range(100)}, "…": "+150 items"}


def test_long_and_unencodable_keyword_names_are_cut_and_cleaned() -> None:
    """A 10 MB keyword name is cut like a string; one with a lone surrogate is made encodable."""
    captured = ParamCapture(many_kwargs).capture((), {"n" * (10 * MB): 1, "bad\udcff": 2, "api_key": "s3cret"})
    assert captured == {f"{'n' * 1024}…[+{10 * MB - 1024} chars]": 1, "bad\\udcff": 2, "api_key": "[REDACTED]"}
    json.dumps(captured).encode("utf-8")


def test_long_names_do_not_stay_in_the_redaction_cache() -> None:
    """Client-sent names (query arguments: up to 64 KB each) are checked but not cached: memory stays flat."""
    redactor = Redactor()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            assert redactor.is_sensitive(f"{i}{'a' * 65_536}") is False
        assert redactor.is_sensitive(f"x{'a' * 65_536}_password") is True
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 4 * MB, retained  # 1000 cached names would hold 64 MB


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: array.array("d", range(10_000_000)), [*map(float, range(100)), "…[+9999900 items]"]),
        (lambda: collections.UserList(range(1_000_000)), [*range(100), "…[+999900 items]"]),
        (lambda: dict.fromkeys(range(1_000_000)).keys(), [*range(100), "…[+999900 items]"]),
        (lambda: dict.fromkeys(range(5), "v").values(), ["v"] * 5),
        (lambda: {"a": 1}.items(), [["a", 1]]),
        (lambda: collections.UserString("u" * (10 * MB)), f"{'u' * 1024}…[+{10 * MB - 1024} chars]"),
        (lambda: range(10**18), "range(0, 1000000000000000000)"),
    ],
    ids=["array", "UserList", "keys-view", "values-view", "items-view", "UserString", "range-stays-repr"],
)
def test_big_standard_containers_are_walked_not_repr(build: Callable[[], Any], expected: Any) -> None:
    """Standard containers whose repr costs time in proportion to their size (array.array of 10M floats:
    2 s) are represented by their first items."""
    assert serialize(build()) == expected


def test_lone_surrogates_become_encodable_text() -> None:
    """A lone surrogate anywhere (string, key, cut string, repr) comes out as ``\\udcff`` text."""
    hostile = type("BadRepr", (), {"__repr__": lambda self: "r\udcff"})
    value = {"k\udcff": ["v\udcff", "w\udcff" * 2000, hostile()], "plain": "é😀"}
    result = serialize(value)
    text = json.dumps(result, ensure_ascii=False)
    text.encode("utf-8")  # strict: raises on a surrogate
    assert result["k\\udcff"][0] == "v\\udcff" and result["k\\udcff"][2] == "r\\udcff"
    assert result["plain"] == "é😀"
    assert ParamCapture(inner).capture(("\udcff",), {}) == {"value": "\\udcff"}


def test_lone_surrogate_parameter_is_stored_in_sqlite(tmp_path: Path) -> None:
    """A parameter with a lone surrogate (a filename from ``os.fsdecode``) no longer gets its whole log
    rejected by SQLite: it is stored, readable back."""
    name = os.fsdecode(b"report-\xff.csv")
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    _counters.reset()
    with capture_usage() as usage:
        exporter = SqlUsageExporter(url)
        usage.pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))
        inner(name)
    reader = SqlUsageExporter(url)
    (log,) = reader.get_usage()
    reader.shutdown()
    assert log["data"][0]["params"] == {"value": "report-\\udcff.csv"}
    assert _counters.stats()["dropped"] == {}


def test_class_names_in_markers_are_cut() -> None:
    """An unrepresentable object of a class with a 10,000-character name gives a short marker."""
    cls = type("N" * 10_000, (), {"__repr__": _raise})
    assert serialize(cls()) == f"<unrepresentable {'N' * 128}…>"


def test_fan_out_hooks_are_called_a_bounded_number_of_times() -> None:
    """A hook returning 100 new hooked objects (a tree of 100**6) costs a bounded number of hook calls:
    markers count against the size budget."""
    calls = [0]

    class Fan:
        def __usage__(self) -> list[Fan]:
            calls[0] += 1
            return [Fan() for _ in range(100)]

    result = serialize(Fan())
    assert len(json.dumps(result)) <= value_bound(SerializeLimits())
    assert calls[0] <= 1000, calls[0]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: memoryview(bytes(range(256)) * (40 * 1024))[::2],
            f"{base64.b64encode((bytes(range(0, 256, 2)) * 6)[:768]).decode()}…[+{5 * MB - 768} bytes]",
        ),
        (lambda: TextSubclass("t" * (10 * MB)), f"{'t' * 1024}…[+{10 * MB - 1024} chars]"),
    ],
    ids=["strided-memoryview", "str-subclass"],
)
def test_big_buffers_and_str_subclasses_copy_only_what_is_kept(build: Callable[[], Any], expected: str) -> None:
    """A strided 10 MB memoryview and a 10 MB str subclass are cut without copying them whole (the copy
    cost 85 ms per call for the view)."""
    value = build()
    tracemalloc.start()
    try:
        assert serialize(value) == expected
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MB, peak


def test_info_with_lone_surrogates_travels_in_baggage() -> None:
    """An info value with lone surrogates is recorded and injected into outgoing baggage (it used to raise
    UnicodeEncodeError in add_info for long values, and in every propagator's inject for short ones)."""
    carrier: dict[str, str] = {}

    @traced_usage
    def call_out() -> None:
        add_info("short", "a\udcff")
        add_info("long", "b\udcff" * 400)
        W3CBaggagePropagator().inject(carrier)

    with capture_usage() as usage:
        call_out()
    (log,) = usage.logs
    assert (log["short"], log["long"]) == ("a\\udcff", "b\\udcff" * 400)
    sent = W3CBaggagePropagator().extract(carrier)
    assert baggage.get_baggage("short", sent) == "a\\udcff"


# --- classes and exceptions that refuse to be named ------------------------------------------------------


class _RaisingNameMeta(type):
    @property
    def __name__(cls) -> str:  # type: ignore[override]
        raise RuntimeError("no name for you")


class _Nameless(metaclass=_RaisingNameMeta):
    @traced_usage
    def method(self, x: int) -> int:
        return x + 1


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print")


def test_a_class_whose_metaclass_refuses_its_name_is_recorded_by_its_real_name() -> None:
    with capture_usage() as usage:
        assert _Nameless().method(1) == 2
    assert [log["data"][0]["class_name"] for log in usage] == ["_Nameless"]


def test_an_exception_whose_str_raises_reaches_the_caller_unchanged() -> None:
    error = _UnprintableError()

    @traced_usage
    def fail() -> None:
        raise error

    with capture_usage() as usage, pytest.raises(_UnprintableError) as raised:
        fail()
    assert raised.value is error
    (log,) = usage
    assert log["status"] == "error"
    assert log["data"][0]["error"] == {"type": "_UnprintableError", "message": "<unprintable _UnprintableError>"}
