"""P4: requests/s of a Flask app with usage tracking + the SQLite exporter, against the same app with only the
stock FlaskInstrumentor + BatchSpanProcessor to a discarding exporter. Target: ratio >= 0.9.

    python benchmarks/bench_flask.py [--seconds 5] [--rounds 3] [--app notes|hello] [--client auto|wrk|python]
                                     [--exporter sql|file|null|none]

Both servers (Werkzeug, threaded, 127.0.0.1, free ports) run at once, each in its own process; the load
comes from a separate process (``wrk`` when installed, else a Python client process with several
threads) and hits one server at a time, alternating (usage, stock, stock, usage, usage ...) so that both
see the same machine. Each server's requests/s is the median of its rounds; the headline ratio is the
median over rounds of usage/stock measured back to back (the order alternates round by round), which
cancels slow drifts of the machine.

Apps: ``notes`` (default): the notes example's JSON API (``GET /api/notes/<id>`` with a Bearer token:
a before-request token lookup, two SQLite queries, probed service functions); ``hello``: one route that
calls one probed function (the worst case: almost nothing but the tracking itself).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTES_PATH = "/api/notes/1"
HELLO_PATH = "/items/42?view=full"
TOKEN = "tok-bob"


# --- servers (each in its own process) ---------------------------------------------------------------------


def _null_exporter() -> Any:
    """An exporter that receives the usage logs and discards them: the pipeline's cost without a sink's."""
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    class NullExporter(LogRecordExporter):
        def export(self, batch: Any) -> LogRecordExportResult:
            return LogRecordExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return NullExporter()


def _hello_app() -> Any:
    from flask import Flask, jsonify

    from otel_usage import traced_usage

    @traced_usage
    def load_item(item_id: int, view: str) -> dict[str, Any]:
        return {"id": item_id, "view": view, "name": f"item {item_id}"}

    app = Flask("hello")

    @app.route("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        from flask import request

        return jsonify(load_item(item_id, request.args.get("view", "short")))

    return app


def _serve(mode: str, app_name: str, data_dir: str, exporter: str, conn: Any) -> None:
    import logging

    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if mode == "usage":
        import otel_usage
        from otel_usage.exporters.file import FileUsageExporter
        from otel_usage.exporters.sql import SqlUsageExporter

        exporters: dict[str, Any] = {
            "sql": lambda: [SqlUsageExporter(f"sqlite:///{data_dir}/usage-{app_name}.db")],
            "file": lambda: [FileUsageExporter(f"{data_dir}/usage-{app_name}.jsonl")],
            "none": lambda: [],
            "null": lambda: [_null_exporter()],
        }
        otel_usage.configure(exporters=exporters[exporter](), service_name="bench")
    else:
        # The app's add_info calls have no usage pipeline to go to here: not worth a warning each.
        logging.getLogger("otel_usage").setLevel(logging.ERROR)
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class DiscardingExporter(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
        trace.set_tracer_provider(provider)
    if app_name == "notes":
        sys.path.insert(0, str(ROOT / "examples"))
        from notes_app import create_app

        app = create_app(f"{data_dir}/notes-{mode}.db", track=mode == "usage")
    else:
        app = _hello_app()
        if mode == "usage":
            from otel_usage.instrumentors.flask import UsageTracking

            UsageTracking(app)
    if mode != "usage":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument_app(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    server.request_queue_size = 256
    conn.send(server.server_port)
    server.serve_forever()


# --- load ----------------------------------------------------------------------------------------------------


def visitor_cookie(port: int, path: str) -> str:
    """The ``Cookie`` header a returning browser sends: the visitor cookie the server gives on a first visit."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = client.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie") or ""
    finally:
        client.close()
    return cookie.split(";", 1)[0]


def _python_load(port: int, path: str, seconds: float, threads: int, cookie: str, conn: Any) -> None:
    """A client process: ``threads`` threads, one connection per request (the server speaks HTTP/1.0)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "bench/1.0 (python)", "Cookie": cookie}
    counts = [0] * threads
    errors = [0] * threads
    deadline = time.monotonic() + seconds

    def run(i: int) -> None:
        while time.monotonic() < deadline:
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                client.request("GET", path, headers=headers)
                response = client.getresponse()
                response.read()
                if response.status == 200:
                    counts[i] += 1
                else:
                    errors[i] += 1
            except OSError:
                errors[i] += 1
            finally:
                client.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    conn.send((sum(counts) / (time.monotonic() - started), sum(errors)))


def measure(client: str, port: int, path: str, seconds: float, connections: int) -> tuple[float, int]:
    """Requests/s (status 200) and errors of one round of load on ``port``, from returning visitors."""
    cookie = visitor_cookie(port, path)
    if client == "wrk":
        proc = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-H",
                f"Authorization: Bearer {TOKEN}",
                "-H",
                "User-Agent: bench/1.0 (wrk)",
                "-H",
                f"Cookie: {cookie}",
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout).group(1))  # type: ignore[union-attr]
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
        socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", proc.stdout)
        total = int(errors.group(1)) if errors else 0
        total += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
        return rate, total
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc_ = ctx.Process(target=_python_load, args=(port, path, seconds, connections, cookie, child))
    proc_.start()
    result: tuple[float, int] = parent.recv()
    proc_.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--app", choices=["notes", "hello"], default="notes")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections of the load (8)")
    parser.add_argument(
        "--exporter",
        choices=["sql", "file", "null", "none"],
        default="sql",
        help="usage exporter of the tracked server: sql (SQLite, the P4 target), file (JSONL), "
        "null (logs made and discarded) or none (no exporter)",
    )
    args = parser.parse_args()
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    path = NOTES_PATH if args.app == "notes" else HELLO_PATH
    ctx = multiprocessing.get_context("spawn")
    data_dir = tempfile.mkdtemp(prefix="bench_flask_")
    servers: dict[str, tuple[Any, int]] = {}
    try:
        for mode in ("usage", "stock"):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(mode, args.app, data_dir, args.exporter, child), daemon=True)
            proc.start()
            if not parent.poll(60):  # the server died before listening: its traceback is on stderr
                raise SystemExit(f"the {mode} server did not start (exit code {proc.exitcode})")
            servers[mode] = (proc, parent.recv())
        for _mode, (_proc, port) in servers.items():  # warm-up: rules compiled, caches filled, DB files created
            measure("python", port, path, 1.0, 2)
        rates: dict[str, list[float]] = {"usage": [], "stock": []}
        errors = {"usage": 0, "stock": 0}
        cpu = {"usage": 0.0, "stock": 0.0}
        served = {"usage": 0.0, "stock": 0.0}
        for round_number in range(args.rounds):
            order = ["usage", "stock"] if round_number % 2 == 0 else ["stock", "usage"]
            for mode in order:
                proc, port = servers[mode]
                before = _cpu_seconds(proc.pid)
                started = time.monotonic()
                rate, failed = measure(client, port, path, args.seconds, args.connections)
                cpu[mode] += _cpu_seconds(proc.pid) - before
                served[mode] += rate * (time.monotonic() - started)
                rates[mode].append(rate)
                errors[mode] += failed
        time.sleep(1.5)  # let the last batch reach its sink before counting
        stored = _count_logs(Path(data_dir), args.app)
    finally:
        for proc, _port in servers.values():
            proc.terminate()
            proc.join(5)
        shutil.rmtree(data_dir, ignore_errors=True)
    usage, stock = statistics.median(rates["usage"]), statistics.median(rates["stock"])
    print(f"P4 Flask requests/s, app={args.app}, client={client}, {args.connections} connections,")
    print(f"{args.rounds} rounds x {args.seconds:g} s per server, cpus={os.cpu_count()}")
    print(f"{'server':<44} {'req/s (median)':>15} {'rounds':>30} {'errors':>7}")
    labels = {
        "usage": {
            "sql": "usage tracking + SqlUsageExporter (SQLite)",
            "file": "usage tracking + FileUsageExporter (JSONL)",
            "null": "usage tracking + discarding exporter",
            "none": "usage tracking, no exporter",
        }[args.exporter],
        "stock": "stock FlaskInstrumentor + BatchSpanProcessor",
    }
    for mode, label in labels.items():
        rounds = ", ".join(f"{r:.0f}" for r in rates[mode])
        print(f"{label:<44} {statistics.median(rates[mode]):>15.1f} {rounds:>30} {errors[mode]:>7}")
    paired = statistics.median(u / s for u, s in zip(rates["usage"], rates["stock"], strict=True))
    print(f"ratio of the medians usage/stock: {usage / stock:.3f}; usage logs stored: {stored}")
    print(f"ratio usage/stock, median of the {args.rounds} paired rounds: {paired:.3f} (target >= 0.9)")
    print(f"added time per request: {(1 / usage - 1 / stock) * 1e6:.0f} us (of {1e6 / stock:.0f} us per stock request)")
    if cpu["stock"] > 0:
        per_request = {mode: cpu[mode] / served[mode] * 1e6 for mode in cpu if served[mode]}
        print(
            "server CPU per request (all threads, about): "
            + ", ".join(f"{mode} {value:.0f} us" for mode, value in per_request.items())
        )


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _count_logs(data_dir: Path, app: str) -> int:
    import sqlite3

    jsonl = data_dir / f"usage-{app}.jsonl"
    if jsonl.exists():
        return sum(1 for _ in jsonl.open(encoding="utf-8"))
    database = data_dir / f"usage-{app}.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT count(*) FROM usage_logs").fetchone()[0])


if __name__ == "__main__":
    main()
