"""Parameter capture, redaction and the never-raising serializer: otel_usage._capture and _serialize."""

from __future__ import annotations

import array
import collections
import dataclasses
import datetime
import decimal
import enum
import functools
import json
import math
import pathlib
import time
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_usage._capture import ParamCapture
from otel_usage._redact import REDACTED, Redactor
from otel_usage._represent import register_representation
from otel_usage._serialize import (
    SerializeLimits,
    get_policy,
    serialize,
    serialize_attributes,
    serialize_named,
    set_policy,
)


@pytest.fixture(autouse=True)
def default_policy() -> Iterator[None]:
    """Every test starts from the default policy; the previous one is restored afterwards."""
    saved = get_policy()
    set_policy(SerializeLimits(), Redactor())
    yield
    set_policy(*saved)


def limits(**kwargs: int) -> None:
    """Install limits (the redactor stays)."""
    set_policy(SerializeLimits(**kwargs), get_policy()[1])


def dumps(value: Any) -> str:
    """Strict JSON: fails on NaN/inf and on anything not JSON-native."""
    return json.dumps(value, allow_nan=False)


# --- capture: binding ------------------------------------------------------------------------------


def simple(a: Any, b: Any = 2, c: Any = "x") -> None:
    """Three parameters, two defaults."""


def variadic(a: Any, *rest: Any, k: Any = 1, **extra: Any) -> None:
    """Named, *args, keyword-only and **kwargs parameters."""


def kinds(a: Any, /, b: Any, *, c: Any = 3) -> None:
    """Positional-only, positional-or-keyword and keyword-only parameters."""


def pos_only_and_kwargs(a: Any, /, **kw: Any) -> None:
    """A positional-only name that may also turn up as a **kwargs key."""


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "expected"),
    [
        (simple, (1,), {}, {"a": 1, "b": 2, "c": "x"}),
        (simple, (1, 5), {"c": None}, {"a": 1, "b": 5, "c": None}),
        (simple, (), {"c": 3.5, "a": True}, {"a": True, "b": 2, "c": 3.5}),
        (variadic, (1, 2, 3), {"z": "q", "k": 8}, {"a": 1, "rest": [2, 3], "k": 8, "z": "q"}),
        (variadic, (1,), {}, {"a": 1, "rest": [], "k": 1}),
        (kinds, (1, 2), {}, {"a": 1, "b": 2, "c": 3}),
        (kinds, (1,), {"c": 4, "b": 2}, {"a": 1, "b": 2, "c": 4}),
        (pos_only_and_kwargs, (1,), {"a": 2, "b": 3}, {"a": 1, "**a": 2, "b": 3}),
    ],
)
def test_capture_binds_by_name_with_defaults(func: Callable[..., Any], args: Any, kwargs: Any, expected: Any) -> None:
    """Arguments are bound by name, defaults applied, *args as a list and **kwargs extras flat."""
    captured = ParamCapture(func).capture(args, kwargs)
    assert captured == expected
    assert list(captured) == list(expected)


def test_capture_keeps_signature_order() -> None:
    """Keys follow the signature, not the order of the call's keywords."""
    assert list(ParamCapture(simple).capture((), {"c": 1, "b": 2, "a": 3})) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((1, 2, 3, 4, 5), {}, {"a": 1, "b": 2, "c": 3}),
        ((), {}, {"b": 2, "c": "x"}),
        ((1,), {"zzz": 9}, {"a": 1, "b": 2, "c": "x", "zzz": 9}),
        ((1,), {"a": 7}, {"a": 1, "b": 2, "c": "x"}),
    ],
    ids=["too-many", "missing", "unknown-keyword", "duplicate"],
)
def test_non_binding_call_is_captured_without_raising(args: Any, kwargs: Any, expected: Any) -> None:
    """A call that would raise TypeError in the function is captured as far as it goes, never raising."""
    assert ParamCapture(simple).capture(args, kwargs) == expected


def test_positional_only_passed_by_keyword_is_captured_by_key() -> None:
    """A positional-only parameter passed by keyword (a TypeError for the function) is captured by its key."""
    assert ParamCapture(kinds).capture((), {"a": 1, "b": 2}) == {"b": 2, "c": 3, "a": 1}


def test_partial_captures_the_remaining_parameters() -> None:
    """A functools.partial is captured by the signature that is left to call."""
    assert ParamCapture(functools.partial(simple, 1)).capture((5,), {}) == {"b": 5, "c": "x"}


class NoSignature:
    """A callable whose signature cannot be read."""

    __signature__ = "broken"

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        """Accept anything."""


@pytest.mark.parametrize("func", [max, NoSignature()], ids=["builtin", "broken-signature"])
def test_callable_without_signature_captures_args_and_kwargs(func: Callable[..., Any]) -> None:
    """Without a signature, positional arguments go under "args" and keywords flat."""
    assert ParamCapture(func).capture((3, 4), {"key": "k"}) == {"args": [3, 4], "key": "k"}


def test_callable_without_signature_accepts_any_include_name() -> None:
    """Without a signature any name may turn up, so include/exclude names are not checked."""
    assert ParamCapture(NoSignature(), include=["key"]).capture((1,), {"key": 2, "o": 3}) == {"key": 2}


# --- capture: methods, include and exclude --------------------------------------------------------


class Cart:
    """A class with the method kinds the probes decorate."""

    def add(self, item: Any, qty: Any = 1) -> None:
        """An instance method."""

    @classmethod
    def make(cls, size: Any) -> None:
        """A class method."""

    @staticmethod
    def check(item: Any) -> None:
        """A static method."""

    class Inner:
        """A nested class."""

        def run(self, x: Any) -> None:
            """A method of a nested class."""


def module_level_self(self: Any, x: Any) -> None:
    """A module-level function whose first parameter happens to be named self."""


def make_local() -> Callable[..., Any]:
    """A local function with a parameter named self."""

    def local(self: Any, x: Any) -> None:
        """Defined in a function, not a class."""

    return local


@pytest.mark.parametrize(
    ("func", "is_method", "first_param", "args", "expected"),
    [
        (Cart.add, True, "self", (Cart(), "apple"), {"item": "apple", "qty": 1}),
        (vars(Cart)["make"], True, "cls", (Cart, 3), {"size": 3}),
        (Cart.make.__func__, True, "cls", (Cart, 3), {"size": 3}),
        (vars(Cart)["check"], False, None, ("apple",), {"item": "apple"}),
        (Cart().add, False, None, ("apple",), {"item": "apple", "qty": 1}),
        (Cart.Inner.run, True, "self", (Cart.Inner(), 1), {"x": 1}),
        (module_level_self, False, None, (object(), 1), {"x": 1}),
        (make_local(), False, None, (object(), 1), {"x": 1}),
    ],
    ids=["method", "classmethod", "classmethod-func", "staticmethod", "bound", "nested", "module", "local"],
)
def test_methods_and_self_exclusion(
    func: Any, is_method: bool, first_param: str | None, args: Any, expected: Any
) -> None:
    """is_method/first_param describe the call's first argument, and self/cls are never captured by default."""
    capture = ParamCapture(func)
    assert (capture.is_method, capture.first_param) == (is_method, first_param)
    assert capture.capture(args, {}) == expected


def test_self_captured_when_included() -> None:
    """self is captured when named in include."""

    class Item:
        def __repr__(self) -> str:
            return "Item()"

        def act(self, x: Any) -> None:
            """A method."""

    assert ParamCapture(Item.act, include=["self", "x"]).capture((Item(), 1), {}) == {"self": "Item()", "x": 1}


@pytest.mark.parametrize(
    ("include", "exclude", "kwargs", "expected"),
    [
        (None, None, {"z": 1}, {"a": 1, "rest": [2], "k": 1, "z": 1}),
        (["a", "k"], None, {"z": 1}, {"a": 1, "k": 1}),
        (["a", "k"], ["k"], {}, {"a": 1}),
        (None, ["a", "rest"], {"z": 1}, {"k": 1, "z": 1}),
        (["rest"], None, {}, {"rest": [2]}),
        (["z"], None, {"z": 1, "y": 2}, {"z": 1}),
        (None, ["z"], {"z": 1, "y": 2}, {"a": 1, "rest": [2], "k": 1, "y": 2}),
        (["extra"], None, {"z": 1, "y": 2}, {"z": 1, "y": 2}),
        (["extra", "a"], ["y"], {"z": 1, "y": 2}, {"a": 1, "z": 1}),
        (None, ["extra"], {"z": 1}, {"a": 1, "rest": [2], "k": 1}),
        ("a", None, {}, {"a": 1}),
    ],
    ids=[
        "all", "include", "exclude-wins", "exclude", "include-var-positional", "include-extra-key",
        "exclude-extra-key", "include-var-keyword", "exclude-wins-over-var-keyword", "exclude-var-keyword",
        "single-string",
    ],
)  # fmt: skip
def test_include_exclude(include: Any, exclude: Any, kwargs: Any, expected: Any) -> None:
    """include keeps only the names given, exclude always wins, both apply to **kwargs keys."""
    assert ParamCapture(variadic, include, exclude).capture((1, 2), kwargs) == expected


@pytest.mark.parametrize(("include", "exclude"), [(["a", "nope"], None), (None, ["zz", "nope"])])
def test_unknown_include_or_exclude_name_raises(include: Any, exclude: Any) -> None:
    """A name the function does not have is a ValueError naming the function and the bad names."""
    with pytest.raises(ValueError, match=r"test_params\.simple has no parameter named .*nope") as info:
        ParamCapture(simple, include, exclude)
    assert "a, b, c" in str(info.value)


def test_unknown_names_allowed_with_var_keyword() -> None:
    """With **kwargs any name may be an extra key, so it is accepted."""
    assert ParamCapture(variadic, include=["later"]).capture((1,), {"later": 5}) == {"later": 5}


# --- capture: values ----------------------------------------------------------------------------


def test_capture_redacts_parameters_extras_and_nested_keys() -> None:
    """Sensitive parameter names, **kwargs keys and nested dict keys are redacted."""

    def login(user: Any, password: Any, options: Any, **extra: Any) -> None:
        """A login."""

    captured = ParamCapture(login).capture(
        ("alice", "hunter2", {"remember": True, "api_key": "k"}), {"auth_token": "t", "lang": "en"}
    )
    assert captured == {
        "user": "alice",
        "password": REDACTED,
        "options": {"remember": True, "api_key": REDACTED},
        "auth_token": REDACTED,
        "lang": "en",
    }


def test_capture_follows_a_policy_change() -> None:
    """A new redactor installed after decoration applies to the next call."""
    capture = ParamCapture(simple)
    assert capture.capture((1,), {}) == {"a": 1, "b": 2, "c": "x"}
    set_policy(SerializeLimits(), Redactor(["b"], defaults=False))
    assert capture.capture((1,), {}) == {"a": 1, "b": REDACTED, "c": "x"}


def test_capture_cuts_and_converts_values() -> None:
    """Primitive values are kept, strings cut, non-finite floats and huge ints replaced, others serialized."""
    limits(max_length=4)
    captured = ParamCapture(simple).capture(("abcdefg", float("nan"), 1 << 2000), {})
    assert captured == {"a": "abcd…[+3 chars]", "b": "NaN", "c": "<int of 2001 bits>"}
    assert ParamCapture(simple).capture((float("-inf"), [1], (2,)), {}) == {"a": "-Infinity", "b": [1], "c": [2]}


def test_capture_does_not_consume_generators() -> None:
    """A generator argument is represented by repr and still yields everything to the function."""
    gen = (i for i in range(3))
    captured = ParamCapture(simple).capture((gen, iter([1, 2])), {})
    assert captured["a"].startswith("<generator object")
    assert captured["b"].startswith("<list_iterator object")
    assert list(gen) == [0, 1, 2]


def test_capture_never_raises_on_hostile_values() -> None:
    """A parameter whose repr raises is captured as a marker; the others are intact."""

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    captured = ParamCapture(simple).capture((Hostile(),), {"c": 1})
    assert captured == {"a": "<unrepresentable Hostile>", "b": 2, "c": 1}
    dumps(captured)


# --- serialize: type rules ----------------------------------------------------------------------


class Color(enum.Enum):
    """A plain enum."""

    RED = "red"
    PAIR = (1, 2)


class Rank(enum.IntEnum):
    """An int enum."""

    HIGH = 3


class MyInt(int):
    """An int subclass."""


class MyFloat(float):
    """A float subclass."""


class MyStr(str):
    """A str subclass with a lying __str__."""

    def __str__(self) -> str:
        return "lie"


@dataclasses.dataclass
class Point:
    """A dataclass with a hidden field."""

    x: int
    y: int
    secret_note: str = dataclasses.field(default="s", repr=False)


@dataclasses.dataclass
class Segment:
    """A dataclass holding dataclasses."""

    start: Point
    end: Point
    label: str | None = None


class Pair(NamedTuple):
    """A namedtuple."""

    left: Any
    right: Any


class ModelV2:
    """A pydantic-v2-like object."""

    def model_dump(self) -> dict[str, Any]:
        return {"id": 1, "tags": ("a",)}


class ModelV1:
    """A pydantic-v1-like object."""

    __fields__: dict[str, Any] = {"id": None}

    def dict(self) -> dict[str, Any]:
        return {"id": 2}


class Tracked:
    """python_tracker's representation hook."""

    def __track__(self) -> Any:
        return {"tracked": True}


class Both(Tracked):
    """Both hooks: __usage__ wins."""

    def __usage__(self) -> Any:
        return "usage"


AWARE = datetime.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (0, 0),
        (-(10**300), -(10**300)),
        (1 << 1100, "<int of 1101 bits>"),
        (1.5, 1.5),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ("héllo", "héllo"),
        (MyInt(7), 7),
        (MyFloat(2.5), 2.5),
        (MyStr("truth"), "truth"),
        (Color.RED, "red"),
        (Color.PAIR, [1, 2]),
        (Rank.HIGH, 3),
        ([1, (2, 3)], [1, [2, 3]]),
        (collections.deque([1, 2]), [1, 2]),
        ({3, 1, 2}, [1, 2, 3]),
        (frozenset({"b", "a"}), ["a", "b"]),
        ({"a": {"b": [None]}}, {"a": {"b": [None]}}),
        (
            {2: "i", 1.5: "f", None: "n", True: "t", (1, 2): "tup"},
            {"2": "i", "1.5": "f", "null": "n", "true": "t", "(1, 2)": "tup"},
        ),
        ({1: "int", "1": "str"}, {"1": "int", "1#2": "str"}),
        (types.MappingProxyType({"k": 1}), {"k": 1}),
        (collections.OrderedDict(b=1, a=2), {"b": 1, "a": 2}),
        (b"hi\x00", "aGkA"),
        (bytearray(b"\xff"), "/w=="),
        (memoryview(b"abcdef")[::2], "YWNl"),
        (memoryview(array.array("B", [1, 2])), "AQI="),
        (AWARE, "2026-01-02T03:04:05.600000+02:00"),
        (datetime.datetime(2026, 1, 2, 3, 4), "2026-01-02T03:04:00"),
        (datetime.date(2026, 1, 2), "2026-01-02"),
        (datetime.time(3, 4, 5), "03:04:05"),
        (datetime.timedelta(minutes=1, microseconds=500), 60.0005),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (decimal.Decimal("1.10"), "1.10"),
        (decimal.Decimal("0.1000000000000000000000000001"), "0.1000000000000000000000000001"),
        (pathlib.PurePosixPath("/tmp/x"), "/tmp/x"),
        (Point(1, 2), {"x": 1, "y": 2}),
        (Segment(Point(0, 0), Point(1, 1)), {"start": {"x": 0, "y": 0}, "end": {"x": 1, "y": 1}, "label": None}),
        (Pair(1, "r"), {"left": 1, "right": "r"}),
        (ValueError("bad", 1), {"type": "ValueError", "message": "('bad', 1)"}),
        (KeyError("k"), {"type": "KeyError", "message": "'k'"}),
        (ModelV2(), {"id": 1, "tags": ["a"]}),
        (ModelV1(), {"id": 2}),
        (Tracked(), {"tracked": True}),
        (Both(), "usage"),
        (range(3), "range(0, 3)"),
        (math.pi, math.pi),
    ],
    ids=repr,
)  # fmt: skip
def test_serialize_type_rules(value: Any, expected: Any) -> None:
    """Each kind of value gets its documented JSON-native form."""
    result = serialize(value)
    assert result == expected
    assert type(result) is type(expected)
    dumps(result)


def test_serialize_unsortable_set_keeps_iteration_order() -> None:
    """A set whose items cannot be sorted keeps them in iteration order."""
    value = {1, (2, 3)}
    assert serialize(value) == [serialize(item) for item in value]


def test_serialize_does_not_mutate() -> None:
    """Serializing leaves the value untouched."""
    value = {"b": [3, {1, 2}], "a": (1,)}
    before = repr(value)
    serialize(value)
    assert repr(value) == before


def test_serialize_does_not_consume_iterators() -> None:
    """Generators and iterators are represented by repr, not iterated."""
    gen = (i for i in range(3))
    it = iter([1, 2])
    result = serialize({"g": gen, "i": it})
    assert result["g"].startswith("<generator object")
    assert result["i"].startswith("<list_iterator object")
    assert (list(gen), list(it)) == ([0, 1, 2], [1, 2])


def test_serialize_falls_back_to_repr() -> None:
    """An object without a rule is its repr."""

    class Thing:
        def __repr__(self) -> str:
            return "Thing(1)"

    assert serialize([Thing()]) == ["Thing(1)"]


# --- serialize: hooks and registry --------------------------------------------------------------


def test_registry_wins_over_hooks_and_builtin_rules() -> None:
    """A registered function beats __usage__, __track__ and the built-in rules, for subclasses too."""

    class Base:
        def __usage__(self) -> Any:
            return "hook"

    class Child(Base):
        def __track__(self) -> Any:
            return "track"

    @dataclasses.dataclass
    class Data(Base):
        x: int = 1

    register_representation(Base, lambda obj: {"registered": type(obj).__name__})
    assert serialize([Base(), Child(), Data()]) == [
        {"registered": "Base"},
        {"registered": "Child"},
        {"registered": "Data"},
    ]


def test_registry_uses_nearest_class_in_mro() -> None:
    """A subclass uses the function registered for its nearest class in MRO order."""

    class A:
        pass

    class B(A):
        pass

    class C(B):
        pass

    register_representation(A, lambda obj: "A")
    register_representation(B, lambda obj: "B")
    assert serialize([A(), B(), C()]) == ["A", "B", "B"]


def test_registry_can_override_builtin_types() -> None:
    """A registered function overrides a built-in rule (here for a datetime subclass)."""

    class Stamp(datetime.datetime):
        pass

    register_representation(Stamp, lambda obj: obj.year)
    assert serialize(Stamp(2026, 1, 1)) == 2026


def test_register_representation_rejects_bad_arguments() -> None:
    """register_representation takes a class and a callable."""
    with pytest.raises(TypeError):
        register_representation("str", str)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        register_representation(int, "nope")  # type: ignore[arg-type]


def test_hook_result_is_serialized_in_turn() -> None:
    """A hook's result goes through the rules again (limits, redaction, nested hooks)."""

    class Inner:
        def __usage__(self) -> Any:
            return {"token": "t", "n": float("inf")}

    class Outer:
        def __usage__(self) -> Any:
            return Inner()

    assert serialize(Outer()) == {"token": REDACTED, "n": "Infinity"}


def test_hook_returning_self_uses_builtin_rule() -> None:
    """A hook returning its own object falls through to the built-in rules."""

    @dataclasses.dataclass
    class Data:
        x: int

        def __usage__(self) -> Any:
            return self

    class Plain:
        def __usage__(self) -> Any:
            return self

        def __repr__(self) -> str:
            return "Plain()"

    assert serialize([Data(1), Plain()]) == [{"x": 1}, "Plain()"]


def test_hook_that_raises_falls_back_to_repr() -> None:
    """A raising hook (or registered function) gives the object's repr, or the marker if repr raises too."""

    class Raising:
        def __usage__(self) -> Any:
            raise RuntimeError("boom")

        def __repr__(self) -> str:
            return "Raising()"

    class Worse(Raising):
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert serialize([Raising(), Worse()]) == ["Raising()", "<unrepresentable Worse>"]


def test_endless_hook_chain_is_cut() -> None:
    """A hook returning a new hooked object every time ends in the depth marker."""

    class Endless:
        def __usage__(self) -> Any:
            return Endless()

    assert serialize(Endless()) == "…[depth]"


def test_hook_returning_a_container_of_itself_is_a_cycle() -> None:
    """A hook whose result contains the object itself is cut by the cycle marker."""

    class Loop:
        def __usage__(self) -> Any:
            return {"me": self}

    assert serialize(Loop()) == {"me": "…[cycle]"}


# --- serialize: caps and markers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("caps", "value", "expected"),
    [
        ({"max_length": 5}, "abcdefgh", "abcde…[+3 chars]"),
        ({"max_length": 5}, ["abcdefgh"], ["abcde…[+3 chars]"]),
        ({"max_length": 5}, {"abcdefgh": 1}, {"abcde…[+3 chars]": 1}),
        ({"max_length": 7}, ValueError("abcdefgh"), {"type": "ValueEr…[+3 chars]", "message": "abcdefg…[+1 chars]"}),
        ({"max_length": 8}, b"abcdefghij", "YWJjZGVm…[+4 bytes]"),
        ({"max_items": 3}, list(range(10)), [0, 1, 2, "…[+7 items]"]),
        ({"max_items": 3}, tuple(range(4)), [0, 1, 2, "…[+1 items]"]),
        ({"max_items": 3}, set(range(10)), [0, 1, 2, "…[+7 items]"]),
        ({"max_items": 2}, {"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "…": "+1 items"}),
        ({"max_items": 1}, Point(1, 2), {"x": 1, "…": "+1 items"}),
        ({"max_depth": 2}, [[[1]], 2], [["…[depth]"], 2]),
        ({"max_depth": 2}, {"a": {"b": {"c": 1}}}, {"a": {"b": "…[depth]"}}),
        ({"max_depth": 1}, [Point(1, 2), "s"], ["…[depth]", "s"]),
        ({"max_size": 64}, ["x" * 30, "y" * 30, "z" * 30], ["x" * 30, "y" * 29 + "…[+1 chars]", "…[+1 items]"]),
        ({"max_size": 64}, list(range(100)), [*range(18), "…[+82 items]"]),
        ({"max_size": 64}, {f"k{i}": i for i in range(50)}, {**{f"k{i}": i for i in range(8)}, "…": "+42 items"}),
    ],
    ids=[
        "string", "nested-string", "key", "exception", "bytes", "list", "tuple", "set", "dict", "dataclass",
        "depth-list", "depth-dict", "depth-object", "size-strings", "size-list", "size-dict",
    ],
)  # fmt: skip
def test_caps_and_markers(caps: dict[str, int], value: Any, expected: Any) -> None:
    """Every limit cuts with its documented marker."""
    limits(**caps)
    result = serialize(value)
    assert result == expected
    dumps(result)


def test_top_level_string_is_cut_by_the_size_budget() -> None:
    """A string longer than max_size is cut at max_size even when max_length allows more."""
    limits(max_length=1000, max_size=10)
    assert serialize("a" * 30) == "a" * 10 + "…[+20 chars]"
    assert ParamCapture(simple).capture(("a" * 30,), {})["a"] == "a" * 10 + "…[+20 chars]"


@pytest.mark.parametrize(
    "build",
    [
        lambda: "x" * 10_000_000,
        lambda: list(range(1_000_000)),
        lambda: dict.fromkeys(range(1_000_000)),
        lambda: set(range(1_000_000)),
        lambda: [["y" * 5000] * 200] * 200,
        lambda: b"\x00" * 10_000_000,
    ],
    ids=["10MB-string", "1M-list", "1M-dict", "1M-set", "wide-nested", "10MB-bytes"],
)
def test_huge_values_stay_small_and_fast(build: Callable[[], Any]) -> None:
    """Huge values serialize quickly into output bounded by the size budget."""
    value = build()
    start = time.perf_counter()
    result = serialize(value)
    assert time.perf_counter() - start < 0.5
    assert len(dumps(result)) < 8192 + 1024


def test_limits_are_validated() -> None:
    """A limit below 1 (or not an int) is a ValueError."""
    with pytest.raises(ValueError, match="max_items"):
        SerializeLimits(max_items=0)
    with pytest.raises(ValueError, match="max_depth"):
        SerializeLimits(max_depth=True)


def test_set_policy_checks_types_and_get_policy_returns_it() -> None:
    """set_policy installs what get_policy returns, and rejects wrong types."""
    policy = (SerializeLimits(max_items=3), Redactor(defaults=False))
    set_policy(*policy)
    assert get_policy() == policy
    with pytest.raises(TypeError):
        set_policy(None, Redactor())  # type: ignore[arg-type]


# --- serialize: cycles and hostile objects ------------------------------------------------------


def self_list() -> Any:
    value: list[Any] = [1]
    value.append(value)
    return value


def self_dict() -> Any:
    value: dict[str, Any] = {"a": 1}
    value["me"] = value
    return value


def mutual() -> Any:
    a: list[Any] = ["a"]
    b: list[Any] = ["b", a]
    a.append(b)
    return a


@dataclasses.dataclass
class Node:
    """A dataclass that can point to itself."""

    name: str
    next: Any = None


def self_node() -> Any:
    node = Node("n")
    node.next = node
    return node


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (self_list, [1, "…[cycle]"]),
        (self_dict, {"a": 1, "me": "…[cycle]"}),
        (mutual, ["a", ["b", "…[cycle]"]]),
        (self_node, {"name": "n", "next": "…[cycle]"}),
    ],
    ids=["list", "dict", "mutual", "dataclass"],
)
def test_cycles_are_marked(build: Callable[[], Any], expected: Any) -> None:
    """A value that contains itself is cut by the cycle marker, without recursion errors."""
    result = serialize(build())
    assert result == expected
    dumps(result)


def test_shared_references_are_not_cycles() -> None:
    """The same object twice side by side is serialized twice."""
    shared = [1]
    assert serialize([shared, shared]) == [[1], [1]]


class BadRepr:
    """repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class ReprNotStr:
    """repr returns something else than a string."""

    def __repr__(self) -> Any:
        return 42


class BadEqHash:
    """== and hash raise."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __repr__(self) -> str:
        return "BadEqHash()"


class Opaque:
    """Every attribute access raises."""

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")

    def __repr__(self) -> str:
        return "Opaque()"


class BadLenMapping(collections.abc.Mapping):  # type: ignore[type-arg]
    """A mapping whose __len__ raises."""

    def __getitem__(self, key: Any) -> Any:
        return 1

    def __iter__(self) -> Iterator[Any]:
        return iter(["k"])

    def __len__(self) -> int:
        raise RuntimeError("no len")

    def __repr__(self) -> str:
        return "BadLenMapping()"


class BadList(list):  # type: ignore[type-arg]
    """A list whose own __len__ and __iter__ raise."""

    def __len__(self) -> int:
        raise RuntimeError("no len")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")


@dataclasses.dataclass
class BadField:
    """A dataclass whose field access raises."""

    x: int

    def __getattribute__(self, name: str) -> Any:
        if name == "x":
            raise RuntimeError("no x")
        return object.__getattribute__(self, name)


class Spawner:
    """Each representation is a list holding a new Spawner."""

    def __usage__(self) -> Any:
        return [Spawner()]


class HostileMeta(type):
    """A metaclass on which every missing class attribute raises."""

    def __getattr__(cls, name: str) -> Any:
        raise RuntimeError(f"no {name}")


class MetaHostile(metaclass=HostileMeta):
    """Looking up a hook or a rule on this class raises."""

    def __repr__(self) -> str:
        return "MetaHostile()"


class BadKey:
    """A dict key whose str and repr raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (BadRepr, "<unrepresentable BadRepr>"),
        (ReprNotStr, "<unrepresentable ReprNotStr>"),
        (lambda: [BadEqHash(), 1], ["BadEqHash()", 1]),
        (Opaque, "Opaque()"),
        (BadLenMapping, "BadLenMapping()"),
        (lambda: BadList([1, 2]), [1, 2]),
        (lambda: BadField(1), "<unrepresentable BadField>"),
        (Spawner, [[[[[["…[depth]"]]]]]]),
        (MetaHostile, "MetaHostile()"),
        (lambda: {BadKey(): 1, BadKey(): 2}, {"<unrepresentable BadKey>": 1, "<unrepresentable BadKey>#2": 2}),
        (lambda: {"ok": BadRepr(), "n": 1}, {"ok": "<unrepresentable BadRepr>", "n": 1}),
    ],
    ids=["repr-raises", "repr-not-str", "eq-hash-raise", "getattr-raises", "len-raises", "list-subclass",
         "field-raises", "endless-nesting", "class-lookup-raises", "key-str-raises", "nested"],
)  # fmt: skip
def test_hostile_objects(build: Callable[[], Any], expected: Any) -> None:
    """Hostile objects never raise and end up as their documented marker."""
    result = serialize(build())
    assert result == expected
    dumps(result)


def test_nesting_deeper_than_the_recursion_limit() -> None:
    """With a huge max_depth, a value nested past Python's recursion limit still serializes without raising."""
    limits(max_depth=1_000_000)
    value: list[Any] = []
    for _ in range(5000):
        value = [value]
    dumps(serialize(value))


# --- redaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password", "PASSWORD", "user_password", "userPassword", "db-password", "new password", "passwords",
        "passwd", "pwd", "old_pwd", "secret", "client_secret", "token", "access_token", "accessToken",
        "csrftoken", "X-Auth-Token", "auth", "basic_auth", "authToken", "oauth", "authorization",
        "Proxy-Authorization", "cookie", "Set-Cookie", "session", "session_id", "sessionid", "api_key",
        "apiKey", "APIKey", "X-API-Key", "apikey", "private_key", "aws_access_key_id", "credit card",
        "creditCard", "card_number", "cvv", "credentials", "bearer", "jwt",
    ],
)  # fmt: skip
def test_default_fragments_redact(name: str) -> None:
    """Names holding a built-in fragment (any case, separators ignored) are sensitive."""
    assert Redactor().is_sensitive(name)
    assert serialize_named(name, "value") == REDACTED


@pytest.mark.parametrize(
    "name",
    ["author", "authority", "authors", "user", "item_id", "max_tokens", "tokenizer", "shipping", "description", ""],
)
def test_default_fragments_spare_ordinary_names(name: str) -> None:
    """Ordinary names (author is not auth, max_tokens is not a token) are kept."""
    assert not Redactor().is_sensitive(name)
    assert serialize_named(name, "value") == "value"


@pytest.mark.parametrize(
    ("extra", "defaults", "name", "sensitive"),
    [
        (["iban"], True, "user_iban", True),
        (["iban"], True, "password", True),
        (["iban"], False, "password", False),
        (["iban"], False, "IBAN", True),
        (["pin"], True, "card_pin", True),
        (["pin"], True, "shipping", False),
        (["Account-Number"], True, "account_number", True),
        ("account number", True, "accountNumber", True),
        ("account number", True, "a", False),
        ([], False, "anything", False),
    ],
)
def test_extra_fragments_and_defaults_off(extra: Any, defaults: bool, name: str, sensitive: bool) -> None:
    """Extra fragments add to (or, with defaults off, replace) the built-in list; a string is one fragment."""
    assert Redactor(extra, defaults=defaults).is_sensitive(name) is sensitive


def test_redactor_rejects_non_string_fragments() -> None:
    """A fragment that is not a string is a ValueError."""
    with pytest.raises(ValueError, match="strings"):
        Redactor([1])  # type: ignore[list-item]


def test_nested_dict_keys_are_redacted() -> None:
    """Sensitive keys are redacted at every level, in dicts, dataclass fields and hook results."""

    @dataclasses.dataclass
    class Login:
        user: str
        password: str

    value = {"user": {"name": "a", "profile": {"api_key": "k", "author": "me"}}, "login": Login("a", "p")}
    assert serialize_named("payload", value) == {
        "user": {"name": "a", "profile": {"api_key": REDACTED, "author": "me"}},
        "login": {"user": "a", "password": REDACTED},
    }


def test_serialize_named_redacts_the_whole_value() -> None:
    """A sensitive name hides the whole value, whatever it is."""
    assert serialize_named("session", {"id": 1}) == REDACTED


def test_redaction_with_defaults_off_keeps_default_names() -> None:
    """With the built-in list off, a password is kept and only the extra fragments apply."""
    set_policy(SerializeLimits(), Redactor(["card"], defaults=False))
    assert serialize({"password": "p", "card": "c"}) == {"password": "p", "card": REDACTED}


# --- property-based -----------------------------------------------------------------------------

keys = st.one_of(
    st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none(), st.tuples(st.integers(), st.text())
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=1 << 1000, max_value=1 << 1100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=50),
    st.decimals(allow_nan=True),
    st.datetimes(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=8),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=8),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=5), st.floats()), max_size=8),
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(value=values, tight=st.booleans())
def test_serialize_never_raises_and_is_valid_json(value: Any, tight: bool) -> None:
    """Any nested structure (NaN, inf, arbitrary keys) serializes without raising into strict, bounded JSON."""
    if tight:
        limits(max_depth=3, max_length=10, max_items=3, max_size=100)
    text = json.dumps(serialize(value), allow_nan=False, ensure_ascii=False)
    assert dumps(serialize_named("password", value)) == '"[REDACTED]"'
    if tight:  # the budget is rough: about one item over per nesting level
        assert len(text) < 1500


# --- span attributes ---------------------------------------------------------------------------------------

_attribute_scalars = (
    st.text(max_size=40)
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**1100), max_value=2**1100)
    | st.floats(allow_nan=True, allow_infinity=True)
)
_attribute_values = _attribute_scalars | st.tuples(_attribute_scalars) | st.lists(st.text(max_size=5), max_size=3)
_attribute_keys = st.sampled_from(["http.method", "password", "db.statement", "authToken", "author"]) | st.text(
    max_size=30
)


@settings(max_examples=300, deadline=None)
@given(
    attributes=st.dictionaries(_attribute_keys, _attribute_values, max_size=12),
    max_length=st.integers(1, 40),
    max_items=st.integers(1, 14),
    max_size=st.integers(1, 400),
)
def test_serialize_attributes_is_the_general_walk(
    attributes: dict[str, Any], max_length: int, max_items: int, max_size: int
) -> None:
    """The fast path for span attributes gives exactly what serialize() gives, whatever the limits."""
    limits(max_length=max_length, max_items=max_items, max_size=max_size)
    assert serialize_attributes(attributes) == serialize(dict(attributes))


def test_serialize_attributes_matches_the_walk_at_every_budget_boundary() -> None:
    """Every max_size around where the walk starts cutting, for strings, numbers and booleans."""
    attributes: dict[str, Any] = {
        "http.method": "GET",
        "n": 7,
        "big": 2**70,
        "ok": True,
        "ratio": 0.25,
        "http.target": "/api/notes/1",
        "password": "x",
    }
    for max_length in (2, 5, 12, 64):
        for max_size in range(1, 160):
            limits(max_length=max_length, max_size=max_size)
            assert serialize_attributes(attributes) == serialize(dict(attributes)), (max_length, max_size)


def test_serialize_attributes_of_a_real_span_redacts_and_keeps_the_rest() -> None:
    """The SDK's BoundedAttributes are read as they are, sensitive keys redacted."""
    from opentelemetry.attributes import BoundedAttributes

    attributes = BoundedAttributes(
        attributes={"http.method": "GET", "http.status_code": 200, "http.auth_token": "s3cret", "ratio": 0.5}
    )
    assert serialize_attributes(attributes) == {
        "http.method": "GET",
        "http.status_code": 200,
        "http.auth_token": REDACTED,
        "ratio": 0.5,
    }
