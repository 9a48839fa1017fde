"""Cost of capturing a call's parameters: ParamCapture.capture vs binding with inspect per call.

Run: ``python benchmarks/bench_params.py``. Prints the median per-call cost (µs) over interleaved rounds
and the ratio of each way to ``ParamCapture.capture``.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable
from typing import Any

from otel_usage._capture import ParamCapture

ROUNDS = 31
CALLS = 20_000


def target(user: str, item_id: int, qty: int = 1) -> None:
    """The tracked function: three primitive parameters, one default."""


ARGS: tuple[Any, ...] = ("alice", 42)
KWARGS: dict[str, Any] = {}
SIGNATURE = inspect.signature(target)
CAPTURE = ParamCapture(target)


def naive() -> dict[str, Any]:
    """The naive way: read the signature on every call, bind, apply defaults."""
    bound = inspect.signature(target).bind(*ARGS, **KWARGS)
    bound.apply_defaults()
    return dict(bound.arguments)


def bind_only() -> dict[str, Any]:
    """Signature read once, but still bound with inspect on every call."""
    bound = SIGNATURE.bind(*ARGS, **KWARGS)
    bound.apply_defaults()
    return dict(bound.arguments)


def capture() -> dict[str, Any]:
    """ParamCapture's precomputed plan."""
    return CAPTURE.capture(ARGS, KWARGS)


def per_call_ns(func: Callable[[], object]) -> float:
    """Nanoseconds per call of ``func`` over one round of CALLS calls."""
    start = time.perf_counter_ns()
    for _ in range(CALLS):
        func()
    return (time.perf_counter_ns() - start) / CALLS


def main() -> None:
    """Time the three ways in interleaved rounds and print the medians and ratios."""
    assert capture() == naive() == bind_only() == {"user": "alice", "item_id": 42, "qty": 1}
    ways = {
        "ParamCapture.capture": capture,
        "signature once + bind + apply_defaults": bind_only,
        "inspect.signature(f).bind + apply_defaults": naive,
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, func in ways.items():
            samples[name].append(per_call_ns(func))
    base = statistics.median(samples["ParamCapture.capture"])
    print(f"{'way':<45} {'µs/call':>9} {'ratio':>7}")
    for name in ways:
        median = statistics.median(samples[name])
        print(f"{name:<45} {median / 1000:>9.3f} {median / base:>6.1f}x")


if __name__ == "__main__":
    main()
