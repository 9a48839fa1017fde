"""configure(), shutdown, flush at exit, OTEL_SDK_DISABLED and fork safety, in fresh interpreters.

These run in subprocesses because configure() sets OpenTelemetry's process-global providers, which
can be set only once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import otel_usage
from otel_usage._config import CoreSettings


def run(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


PRELUDE = """
import io, json, sys
import otel_usage
from otel_usage import traced_usage
from otel_usage.exporters.memory import InMemoryUsageExporter
from otel_usage.exporters.console import ConsoleUsageExporter

@traced_usage
def work(n):
    return n * 2
"""


def test_configure_is_idempotent_and_extends():
    """A second configure() adds no second span processor and applies new settings."""
    proc = run(
        PRELUDE
        + """
mem = InMemoryUsageExporter()
p1 = otel_usage.configure(exporters=[mem], level="INFO")
p2 = otel_usage.configure(exporters=[mem], level="DEBUG")
assert p1 is p2
work(1)
otel_usage.force_flush()
print(json.dumps({"logs": len(mem.get_logs()), "level": otel_usage.get_level().name}))
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"logs": 1, "level": "DEBUG"}


def test_explicit_argument_wins_over_environment():
    """configure(level=...) wins over OTEL_USAGE_LEVEL; the env applies when no argument is given."""
    code = PRELUDE + "otel_usage.configure(exporters=[], {arg}); print(otel_usage.get_level().name)"
    assert run(code.format(arg=""), {"OTEL_USAGE_LEVEL": "debug"}).stdout.strip() == "DEBUG"
    assert run(code.format(arg="level='NONE'"), {"OTEL_USAGE_LEVEL": "debug"}).stdout.strip() == "NONE"


def test_bad_env_value_warns_and_falls_back(caplog):
    """A bad env value logs a warning naming the variable and falls back to the default."""
    os.environ["OTEL_USAGE_MAX_PENDING_LOGS"] = "-3"
    try:
        settings = CoreSettings.from_env()
    finally:
        del os.environ["OTEL_USAGE_MAX_PENDING_LOGS"]
    assert settings.max_pending_logs == 4096
    assert "OTEL_USAGE_MAX_PENDING_LOGS" in caplog.text


def test_bad_explicit_argument_raises():
    """A bad explicit argument is a ValueError at configuration time."""
    with pytest.raises(ValueError):
        CoreSettings.from_env(max_pending_logs=0)
    with pytest.raises(ValueError):
        CoreSettings.from_env(level="LOUD")
    with pytest.raises(ValueError):
        CoreSettings.from_env(no_such_setting=1)


def test_unknown_exporter_name_is_an_error():
    """An unknown exporter name would lose data: configure() raises."""
    proc = run(PRELUDE + "otel_usage.configure(exporters=['carrier-pigeon'])")
    assert proc.returncode != 0
    assert "carrier-pigeon" in proc.stderr


def test_logs_flushed_at_exit():
    """Usage logs still buffered at interpreter exit are written before the process ends."""
    proc = run(
        PRELUDE
        + """
otel_usage.configure(exporters=[ConsoleUsageExporter()], schedule_delay_millis=60000)
for i in range(3):
    work(i)
"""
    )
    assert proc.returncode == 0, proc.stderr
    logs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [log["data"][0]["params"]["n"] for log in logs] == [0, 1, 2]


def test_sdk_disabled_makes_everything_a_no_op():
    """With OTEL_SDK_DISABLED=true probes just call the function and nothing is recorded."""
    proc = run(
        PRELUDE
        + """
mem = InMemoryUsageExporter()
assert otel_usage.configure(exporters=[mem]) is None
assert work(2) == 4
otel_usage.force_flush()
print(len(mem.get_logs()))
""",
        {"OTEL_SDK_DISABLED": "true"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


def test_shutdown_stops_recording_but_not_the_application():
    """After shutdown() probes still work and nothing more is buffered."""
    proc = run(
        PRELUDE
        + """
mem = InMemoryUsageExporter()
otel_usage.configure(exporters=[mem])
work(1)
otel_usage.shutdown()
assert work(3) == 6
print(len(mem.get_logs()), otel_usage.stats()["spans_buffered"])
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "0"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_records_its_own_logs_and_drops_parent_pending():
    """A forked child re-creates the worker, drops the parent's pending work and records its own logs."""
    proc = run(
        PRELUDE
        + """
import os, threading
otel_usage.configure(exporters=[ConsoleUsageExporter()])
gate = threading.Event()

@traced_usage
def parent_open():
    gate.wait(5)

t = threading.Thread(target=parent_open)
t.start()
work(100)
otel_usage.force_flush()
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    work(7)
    otel_usage.force_flush()
    print("child-stats", otel_usage.stats()["logs_pending"], flush=True)
    os._exit(0)
os.waitpid(pid, 0)
gate.set()
t.join()
"""
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    logs = [json.loads(line) for line in lines if line.startswith("{")]
    child_logs = [log for log in logs if log["data"][0]["params"].get("n") == 7]
    assert len(child_logs) == 1
    assert sum(1 for log in logs if log["data"][0]["function"].endswith("parent_open")) == 1
    assert "child-stats 0" in lines


def test_sampler_from_environment_is_wrapped():
    """OTEL_TRACES_SAMPLER names are resolved by configure() and wrapped in LevelSampler."""
    proc = run(
        PRELUDE
        + """
from opentelemetry import trace
otel_usage.configure(exporters=[])
print(trace.get_tracer_provider().sampler.get_description())
""",
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("LevelSampler{")
    assert "TraceIdRatioBased{0.25}" in proc.stdout


def test_public_api_is_pinned():
    """The public API is exactly what __all__ lists."""
    assert sorted(otel_usage.__all__) == sorted(
        [
            "DEBUG",
            "DEFAULT",
            "INFO",
            "NONE",
            "SCHEMA_VERSION",
            "USAGE_LOG_EVENT",
            "DropUsageLog",
            "Level",
            "LevelSampler",
            "Tracker",
            "UsagePipeline",
            "UsageProcessor",
            "UsageLogHandler",
            "UsageSpanProcessor",
            "__version__",
            "add_data",
            "add_info",
            "allow_events",
            "allow_functions",
            "block_events",
            "block_functions",
            "configure",
            "event",
            "force_flush",
            "get_info",
            "get_level",
            "get_pipeline",
            "get_tracker",
            "log",
            "register_representation",
            "replay",
            "set_level",
            "shutdown",
            "stats",
            "timer",
            "traced_usage",
            "transaction",
            "usage_context",
        ]
    )
    for name in otel_usage.__all__:
        assert hasattr(otel_usage, name)
