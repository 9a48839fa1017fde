"""A tracked Flask app under gunicorn, 4 sync workers, stopped with SIGTERM: every request's usage log is
delivered, by every worker, to the JSON Lines file and to SQLite (counts, not timings)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

GUNICORN = Path(sys.executable).parent / "gunicorn"
REQUESTS = 2000
WORKERS = 4

APP = """
import os

from flask import Flask

import otel_usage
from otel_usage.instrumentors.flask import UsageTracking

otel_usage.configure(exporters=["file", "sql"], service_name="gunicorn-app")
app = Flask(__name__)
UsageTracking(app)


@otel_usage.traced_usage
def load(item):
    return {"item": item}


@app.get("/items/<int:item>")
def item(item):
    otel_usage.add_info("pid", os.getpid())
    return load(item)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("preload", [False, True], ids=["app-per-worker", "preload"])
def test_gunicorn_four_sync_workers_sigterm_after_2000_requests_delivers_every_log(
    tmp_path: Path, preload: bool
) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST"))}
    env.update(
        {
            "OTEL_USAGE_FILE_PATH": str(tmp_path / "usage.jsonl"),
            "OTEL_USAGE_SQL_URL": f"sqlite:///{tmp_path / 'usage.db'}",
            "OTEL_USAGE_SPOOL_DIR": str(tmp_path / "spool"),
        }
    )
    command = [str(GUNICORN), "-w", str(WORKERS), "-k", "sync", "-b", f"127.0.0.1:{port}", "app:app"]
    if preload:
        command.insert(1, "--preload")  # configure() runs in the arbiter, before the workers are forked
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # the arbiter listens: requests queue until the workers take them
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.communicate()[0]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

        def hit(n: int) -> int:
            with requests.Session() as http:
                return sum(http.get(f"http://127.0.0.1:{port}/items/{i}", timeout=120).status_code == 200 for i in n)

        with ThreadPoolExecutor(8) as pool:
            ok = sum(pool.map(hit, [range(k, REQUESTS, 8) for k in range(8)]))
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=120)[0]
    assert server.returncode == 0, output
    assert ok == REQUESTS
    sent = REQUESTS
    logs = [json.loads(line) for line in (tmp_path / "usage.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(logs) == sent, output
    assert len({log["trace_id"] for log in logs}) == sent  # no duplicates
    by_pid = Counter(log["pid"] for log in logs if "pid" in log)
    assert len(by_pid) == WORKERS, by_pid  # every worker delivered its share
    with sqlite3.connect(tmp_path / "usage.db") as db:
        rows, distinct = db.execute("select count(*), count(distinct trace_id) from usage_logs").fetchone()
    assert (rows, distinct) == (sent, sent)
    assert "Traceback" not in output, output
