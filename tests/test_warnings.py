"""RateLimitedLog: the one "at most once per interval" (or once per process) of otel_usage's messages,
and the fork hooks it relies on."""

from __future__ import annotations

import os
import time

import pytest

from otel_usage._fork import after_fork_in_child
from otel_usage._warnings import RateLimitedLog


def test_once_per_interval_per_key() -> None:
    log = RateLimitedLog(0.2)
    assert log.allow("a")
    assert not log.allow("a")
    assert log.allow("b")
    time.sleep(0.25)
    assert log.allow("a")
    assert not log.allow("a")


def test_the_interval_may_be_read_on_every_call() -> None:
    interval = [60.0]
    log = RateLimitedLog(lambda: interval[0])
    assert log.allow("a")
    assert not log.allow("a")
    interval[0] = 0.0
    assert log.allow("a")


def test_once_per_process_with_a_bounded_memory() -> None:
    log = RateLimitedLog(None, max_keys=2)
    assert [log.allow(k) for k in "aabcd"] == [True, False, True, True, False]
    assert not log.allow("a")


def test_with_an_interval_a_full_memory_is_cleared() -> None:
    log = RateLimitedLog(60.0, max_keys=2)
    assert all(log.allow(k) for k in "abc")
    assert log.allow("d")  # the memory was full: cleared
    assert log.allow("a")


def test_clear_forgets_every_key() -> None:
    log = RateLimitedLog(60.0)
    assert log.allow()
    assert not log.allow()
    log.clear()
    assert log.allow()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_bound_method_fork_hook_is_held_weakly() -> None:
    calls: list[str] = []

    class Hooked:
        def reset(self) -> None:
            calls.append("reset")

    hooked = Hooked()
    after_fork_in_child(hooked.reset)
    gone = Hooked()
    after_fork_in_child(gone.reset)
    del gone
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the hooks that ran, then leave without cleanup
        os.write(write, str(len(calls)).encode())
        os._exit(0)
    os.close(write)
    ran = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert ran == b"1"  # the live object's hook; the collected one did nothing
    assert calls == []  # not in the parent


def test_internal_errors_raise_when_the_variable_says_so_read_when_one_happens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otel_usage import _errors
    from otel_usage import environment_variables as ev

    monkeypatch.setattr(_errors, "RAISE", False)
    monkeypatch.delenv(ev.OTEL_USAGE_RAISE_INTERNAL_ERRORS, raising=False)
    _errors.internal_error(RuntimeError("swallowed"), "test")
    monkeypatch.setenv(ev.OTEL_USAGE_RAISE_INTERNAL_ERRORS, "true")
    with pytest.raises(RuntimeError, match="raised"):
        _errors.internal_error(RuntimeError("raised"), "test")


def test_never_raises_logs_the_error_and_returns_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from otel_usage import _counters, _errors

    monkeypatch.setattr(_errors, "RAISE", False)

    @_errors.never_raises("a boundary", default=False)
    def boundary(fail: bool) -> bool:
        """Its own docstring."""
        if fail:
            raise RuntimeError("a bug")
        return True

    before = _counters.counter("internal_errors")
    assert boundary(False) is True
    assert boundary(True) is False
    assert _counters.counter("internal_errors") == before + 1
    assert "otel_usage internal error in a boundary" in caplog.text
    assert boundary.__doc__ == "Its own docstring."
