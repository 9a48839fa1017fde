"""Start-up errors are one clear line and never stop the other sinks; exit is bounded and says what was lost.

Everything runs in subprocesses (``opentelemetry-instrument python app.py`` or ``python app.py``), in a
temporary working directory, and reads what the process printed and wrote.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_zero_code import INSTRUMENT, clean_env

APP = """
import otel_usage

@otel_usage.traced_usage
def work(n):
    return n * 2

print("result", sum(work(i) for i in range(50)))
"""

CONFIGURED_APP = "import otel_usage\notel_usage.configure()\n" + APP


def run_app(
    tmp_path: Path, env: dict[str, str], code: str = APP, instrumented: bool = True
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "app.py").write_text(code, encoding="utf-8")
    command = [str(INSTRUMENT), "python", "app.py"] if instrumented else [sys.executable, "app.py"]
    return subprocess.run(
        command, cwd=tmp_path, env=clean_env(env), capture_output=True, text=True, timeout=120, check=False
    )


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_a_misspelled_stock_exporter_is_one_line_with_the_valid_names_and_usage_logs_still_flow(tmp_path: Path) -> None:
    proc = run_app(
        tmp_path, {"OTEL_LOGS_EXPORTER": "usage_fil", "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "result 2450" in proc.stdout
    assert "Traceback" not in proc.stderr
    mentions = [line for line in proc.stderr.splitlines() if "usage_fil" in line]
    assert len(mentions) == 1, proc.stderr
    assert "OTEL_LOGS_EXPORTER" in mentions[0] and "usage_file" in mentions[0] and "console" in mentions[0]
    assert len(lines_of(tmp_path / "usage.jsonl")) == 50  # the usage pipeline's own file sink ran


def test_a_sink_that_cannot_start_is_one_warning_naming_it_and_the_other_sinks_run(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    env = {
        "OTEL_USAGE_EXPORTERS": "file,sql",
        "OTEL_USAGE_FILE_PATH": str(blocker / "usage.jsonl"),
        "OTEL_USAGE_SQL_URL": f"sqlite:///{tmp_path / 'usage.db'}",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    proc = run_app(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "result 2450" in proc.stdout
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "usage sink cannot start" in line]
    assert len(warnings) == 1, proc.stderr
    assert "'file'" in warnings[0] and "OTEL_USAGE_FILE_PATH" in warnings[0]
    import sqlite3

    with sqlite3.connect(tmp_path / "usage.db") as db:
        assert db.execute("select count(*) from usage_logs").fetchone()[0] == 50


def test_the_debug_variable_adds_the_traceback(tmp_path: Path) -> None:
    env = {"OTEL_USAGE_FILE_PATH": str(tmp_path), "OTEL_USAGE_DEBUG": "true", "OTEL_TRACES_EXPORTER": "none"}
    proc = run_app(tmp_path, {**env, "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"})
    assert proc.returncode == 0
    assert "usage sink cannot start" in proc.stderr and "Traceback" in proc.stderr


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: the worst sink there is."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_exit_with_a_sink_that_never_answers_is_bounded_and_says_what_was_lost(
    tmp_path: Path, silent_server: int
) -> None:
    env = {
        "OTEL_USAGE_EXPORTERS": "otlp,file",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent_server}",
        "OTEL_USAGE_EXIT_TIMEOUT_MILLIS": "1500",
    }
    started = time.monotonic()
    proc = run_app(tmp_path, env, code=CONFIGURED_APP, instrumented=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "result 2450" in proc.stdout
    assert elapsed < 15, f"exit took {elapsed:.1f} s with a 1.5 s exit timeout"  # it hung for ~30 s before
    exit_lines = [line for line in proc.stderr.splitlines() if line.startswith("otel_usage at exit:")]
    assert len(exit_lines) == 1, proc.stderr
    line = exit_lines[0]
    assert "shutdown_timeout:otlp" in line  # the reason: still being exported when the exit timeout ran out
    lost_or_spooled = sum(int(part.split()[-1]) for part in line.split("(")[-1].rstrip(")").split(", "))
    assert lost_or_spooled == 50, line
    assert len(lines_of(tmp_path / "usage.jsonl")) == 50  # the healthy sink got everything


def test_exit_with_an_unreachable_database_is_bounded_and_spooled_logs_are_counted(tmp_path: Path) -> None:
    env = {
        "OTEL_USAGE_EXPORTERS": "sql",
        "OTEL_USAGE_SQL_URL": "postgresql+psycopg://usage@127.0.0.1:1/usage",
        "OTEL_USAGE_SPOOL_DIR": str(tmp_path / "spool"),
    }
    proc = run_app(tmp_path, env, code=CONFIGURED_APP, instrumented=False)
    assert proc.returncode == 0, proc.stderr
    exit_lines = [line for line in proc.stderr.splitlines() if line.startswith("otel_usage at exit:")]
    assert len(exit_lines) == 1, proc.stderr
    assert "50 usage log(s) spooled (sql 50)" in exit_lines[0]
    assert "lost" not in exit_lines[0]


def test_a_healthy_exit_prints_nothing(tmp_path: Path) -> None:
    proc = run_app(tmp_path, {}, code=CONFIGURED_APP, instrumented=False)
    assert proc.returncode == 0 and proc.stderr == ""
    assert len(lines_of(tmp_path / "usage.jsonl")) == 50


def test_a_bad_value_is_reported_once_with_the_default_used(tmp_path: Path) -> None:
    code = "import otel_usage\notel_usage.configure()\notel_usage.configure()\n" + APP
    proc = run_app(tmp_path, {"OTEL_USAGE_LEVEL": "LOUD"}, code=code, instrumented=False)
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if "OTEL_USAGE_LEVEL" in line]
    assert line == (
        "otel_usage: ignoring OTEL_USAGE_LEVEL='LOUD' (not a usage level: 'LOUD' (expected one of DEBUG, INFO, "
        "DEFAULT, NONE, any case)); using the default DEFAULT"
    )
