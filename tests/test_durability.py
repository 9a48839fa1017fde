"""Durability across processes: forked workers deliver everything; kill -9 in durable mode loses at most 100 ms.

Each test runs a real child Python process (the application), then counts what reached the sinks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from otel_usage.exporters._replay import replay
from otel_usage.exporters.memory import InMemoryUsageExporter

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4
PER_WORKER = 500

FORKED_APP = textwrap.dedent(
    """
    import multiprocessing, os, sys
    import otel_usage
    from otel_usage import traced_usage
    from otel_usage.exporters.file import FileUsageExporter
    from otel_usage.exporters.sql import SqlUsageExporter

    mode, out = sys.argv[1], sys.argv[2]
    otel_usage.configure(
        exporters=[FileUsageExporter(os.path.join(out, "usage.jsonl")),
                   SqlUsageExporter("sqlite:///" + os.path.join(out, "usage.db"))]
    )

    @traced_usage(name="app.job")
    def job(worker, i):
        return i

    job(-1, 0)  # the parent records before forking: its workers are running when the children start

    def run(worker):
        for i in range({per_worker}):
            job(worker, i)

    if mode == "fork":
        children = []
        for worker in range({workers}):
            pid = os.fork()
            if pid == 0:
                run(worker)
                sys.exit(0)  # a pre-fork server's worker ends like this: atexit handlers run
            children.append(pid)
        for pid in children:
            assert os.waitpid(pid, 0)[1] == 0
    else:
        ctx = multiprocessing.get_context("fork")  # the child ends with os._exit: no atexit handler runs
        processes = [ctx.Process(target=run, args=(worker,)) for worker in range({workers})]
        for p in processes:
            p.start()
        for p in processes:
            p.join()
            assert p.exitcode == 0
    """
).format(workers=WORKERS, per_worker=PER_WORKER)


def run_child(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> None:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr


def per_worker(workers: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for worker in workers:
        counts[worker] = counts.get(worker, 0) + 1
    return counts


@pytest.mark.parametrize("mode", ["fork", "multiprocessing"])
def test_four_workers_forked_after_configure_each_deliver_all_their_logs(tmp_path: Path, mode: str) -> None:
    """os.fork and multiprocessing children of a configured parent: every log of every worker in both sinks."""
    run_child(FORKED_APP, mode, str(tmp_path))
    with open(tmp_path / "usage.jsonl", encoding="utf-8") as f:
        logs = [json.loads(line) for line in f]
    file_workers = [log["data"][0]["params"]["worker"] for log in logs]
    expected = {-1: 1, **{w: PER_WORKER for w in range(WORKERS)}}
    assert per_worker(file_workers) == expected
    assert len({(log["data"][0]["params"]["worker"], log["data"][0]["params"]["i"]) for log in logs}) == len(logs)
    with contextlib.closing(sqlite3.connect(tmp_path / "usage.db")) as db:
        rows, distinct = db.execute("SELECT count(*), count(DISTINCT trace_id) FROM usage_logs").fetchone()
    assert rows == distinct == 1 + WORKERS * PER_WORKER


CRASHING_APP = textwrap.dedent(
    """
    import sys, time
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
    import otel_usage
    from otel_usage import traced_usage

    class DownUsageExporter(LogRecordExporter):  # the sink is down for the whole life of this process
        def export(self, batch):
            return LogRecordExportResult.FAILURE
        def shutdown(self):
            pass
        def force_flush(self, timeout_millis=30000):
            return True

    otel_usage.configure(exporters=[DownUsageExporter()])

    @traced_usage(name="app.job")
    def job(i):
        return i

    progress = open(sys.argv[1], "a", buffering=1)
    i = 0
    while True:
        job(i)
        progress.write(f"{i} {time.time()}\\n")  # i has ended: from now on it must survive a kill
        i += 1
        time.sleep(0.0005)
    """
)


@pytest.mark.parametrize("durability", ["disk", "memory"])
def test_kill_9_during_an_outage_then_replay_delivers_everything_once(tmp_path: Path, durability: str) -> None:
    """Durable mode: after kill -9 the spool holds every log except at most the last 100 ms, each once.
    Memory mode (the default) is the contrast: what was still in memory is gone."""
    progress = tmp_path / "progress.txt"
    spool = tmp_path / "spool"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_APP, str(progress)],
        cwd=ROOT,
        env={**os.environ, "OTEL_USAGE_SPOOL_DIR": str(spool), "OTEL_USAGE_DURABILITY": durability},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if progress.exists() and progress.read_text().count("\n") >= 1500:
                break
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            time.sleep(0.05)
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        if child.stderr:
            child.stderr.close()
    sent = {}
    for line in progress.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sent[int(parts[0])] = float(parts[1])
    received = InMemoryUsageExporter()
    delivered = replay(spool, received) if spool.exists() else 0
    numbers = [log["data"][0]["params"]["i"] for log in received.get_logs()]
    assert delivered == len(numbers)
    assert len(numbers) == len(set(numbers)), "a log was delivered twice"
    assert set(numbers) <= set(sent), "a log that was never sent"
    missing = [i for i, at in sent.items() if i not in set(numbers)]
    if durability == "disk":
        assert all(sent[i] >= killed_at - 0.1 for i in missing), (
            f"{len(missing)} lost, oldest {killed_at - min(sent[i] for i in missing):.3f}s before the kill"
        )
        assert len(numbers) >= 1000  # the bulk was on disk (the window above is what it may lack)
    else:
        assert len(missing) > 0  # without write-ahead the queue in memory dies with the process
