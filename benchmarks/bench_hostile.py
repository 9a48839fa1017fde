"""Worst-case time of one probed call whose parameters are hostile (the bound the property tests rely on).

Run: ``python benchmarks/bench_hostile.py``. Each case builds a fresh hostile value (not timed), passes it
to a probed function as a parameter (``record_return=True``, and the same value as ``add_data``, so it is
serialized three times per call) and times the call, through a real pipeline writing the real JSONL file.
Prints, per case, the median and the maximum over the rounds in microseconds, the ratio of the median
to a call with plain parameters, and the size of the biggest log line; then the overall worst case.

Costs that belong to the application are included where the serializer must call its code: a
``__repr__`` that builds 10 MB, a ``__usage__`` hook that creates 100 objects per call.
"""

from __future__ import annotations

import array
import collections
import fractions
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from otel_usage import add_data, traced_usage
from otel_usage.exporters.file import FileUsageExporter
from otel_usage.testing import capture_usage

ROUNDS = 15
MB = 1 << 20


class Boom(Exception):
    """Raised by the hostile methods."""


class RaisesEverywhere:
    """repr, str, len, iter and attribute access raise."""

    def __repr__(self) -> str:
        raise Boom

    __str__ = __repr__

    def __len__(self) -> int:
        raise Boom

    def __iter__(self) -> Iterator[Any]:
        raise Boom

    def __getattr__(self, name: str) -> Any:
        raise Boom


class HugeRepr:
    """repr builds 10 MB (the application's cost)."""

    def __repr__(self) -> str:
        return "r" * (10 * MB)


class NotText:
    """repr and str return non-strings."""

    def __repr__(self) -> Any:
        return 42

    def __str__(self) -> Any:
        return b"bytes"


class EndlessIterable(collections.abc.Sequence):  # type: ignore[type-arg]
    """A sequence that claims 2**70 items and iterates forever."""

    def __getitem__(self, index: Any) -> Any:
        return index

    def __len__(self) -> int:
        return 1 << 70

    def __iter__(self) -> Iterator[int]:
        return itertools.count()


class RaisingHook:
    """__usage__ raises."""

    def __usage__(self) -> Any:
        raise Boom


class FanOut:
    """__usage__ returns 100 new FanOuts (a tree of 100**depth); the application's cost is 100 objects per call."""

    def __usage__(self) -> list[FanOut]:
        return [FanOut() for _ in range(100)]


class Chain:
    """__usage__ returns a list holding the next link."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __usage__(self) -> Any:
        return [self.inner]


def nested(make: Callable[[Any], Any], depth: int = 10_000) -> Any:
    value: Any = None
    for _ in range(depth):
        value = make(value)
    return value


def cycle() -> Any:
    a: list[Any] = []
    b = {"a": a, "again": a}
    a.extend([b, a, b])
    return a


def endless_generator() -> Iterator[int]:
    yield from itertools.count()


CASES: dict[str, Callable[[], Any]] = {
    "plain (baseline)": lambda: 42,
    "str 10 MB": lambda: "x" * (10 * MB),
    "str 10 MB of emoji (40 MB)": lambda: "😀" * (10 * MB),
    "str 10 MB of lone surrogates": lambda: "\udcff" * (10 * MB),
    "str subclass 10 MB": lambda: type("S", (str,), {})("x" * (10 * MB)),
    "bytes 10 MB": lambda: b"\xff" * (10 * MB),
    "memoryview 10 MB, strided": lambda: memoryview(b"\xff" * (10 * MB))[::2],
    "list nested 10,000 deep": lambda: nested(lambda v: [v]),
    "dict nested 10,000 deep": lambda: nested(lambda v: {"k": v}),
    "hook chain 10,000 deep": lambda: nested(Chain),
    "cycles": cycle,
    "every dunder raises": RaisesEverywhere,
    "repr/str return non-strings": NotText,
    "repr returns 10 MB": HugeRepr,
    "len 2**70, endless iter": EndlessIterable,
    "__usage__ raises": RaisingHook,
    "__usage__ fans out 100 per call": FanOut,
    "endless generator": endless_generator,
    "itertools.count": itertools.count,
    "array.array of 10M floats": lambda: array.array("d", bytes(80 * 1_000_000)),
    "UserList of 1M": lambda: collections.UserList(range(1_000_000)),
    "dict keys view of 1M": lambda: dict.fromkeys(range(1_000_000)).keys(),
    "dict of 1M": lambda: dict.fromkeys(range(1_000_000), "v"),
    "set of 1M": lambda: set(range(1_000_000)),
    "int of 100,000 bits": lambda: 1 << 100_000,
    "Fraction of 5,000-digit ints": lambda: fractions.Fraction(10**5000 + 1, 3),
    "100 hostile objects in a list": lambda: [RaisesEverywhere(), NotText(), RaisingHook(), cycle()] * 25,
}


@traced_usage(record_return=True)
def probed(value: Any, **extra: Any) -> Any:
    """Records ``value`` as a parameter, as data and as its return value."""
    add_data("value", value)
    return value


def time_case(build: Callable[[], Any], kwargs: Callable[[], dict[str, Any]] | None = None) -> list[float]:
    """Microseconds of each round's probed call (building the value is not timed)."""
    times = []
    for _ in range(ROUNDS):
        value = build()
        extra = kwargs() if kwargs is not None else {}
        start = time.perf_counter()
        probed(value, **extra)
        times.append((time.perf_counter() - start) * 1e6)
        del value, extra
    return times


def main() -> None:
    """Time every case through a real pipeline and JSONL file; print the table and the worst case."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.jsonl"
        rows: list[tuple[str, float, float]] = []
        with capture_usage() as usage:
            exporter = FileUsageExporter(path)
            usage.pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))
            for name, build in CASES.items():
                times = time_case(build)
                rows.append((name, statistics.median(times), max(times)))
            many = {f"k{i}": "v" * 1000 for i in range(10_000)}
            times = time_case(lambda: 0, lambda: dict(many))
            rows.append(("10,000 keyword arguments of 1 KB", statistics.median(times), max(times)))
            times = time_case(lambda: 0, lambda: {"n" * (10 * MB): 1})
            rows.append(("keyword argument named with 10 MB", statistics.median(times), max(times)))
        longest = max(len(line) for line in path.read_bytes().split(b"\n"))
    baseline = rows[0][1]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'case':<{width}}  {'median µs':>10}  {'max µs':>10}  {'x plain':>8}")
    for name, median, worst in rows:
        print(f"{name:<{width}}  {median:>10.0f}  {worst:>10.0f}  {median / baseline:>8.1f}")
    name, _, worst = max(rows, key=lambda row: row[2])
    print(f"\nworst case per call: {worst / 1000:.1f} ms ({name}); longest JSONL line: {longest} bytes")


if __name__ == "__main__":
    main()
