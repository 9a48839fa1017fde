"""``otel-usage demo``: the notes example app on a real local server, driven by simulated users.

The app (``examples/notes_app``; a wheel installs a copy in the package) runs on Werkzeug on 127.0.0.1
(a free port, in a thread) with Flask usage tracking; simulated users sign in, read, write, search,
comment and call the JSON API over real HTTP for a bounded time. Usage logs go to ``usage.db`` (SQLite,
:class:`SqlUsageExporter`) and ``usage.jsonl`` (:class:`FileUsageExporter`) in the output directory; the
summary at the end (top users, endpoints, slowest functions) is computed from the logs stored in SQLite.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import http.cookiejar
import importlib
import json
import logging
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DemoResult",
    "SQL_COLUMNS",
    "Summary",
    "find_notes_app",
    "run_demo",
    "summarize",
]

#: Info keys the demo's SQL exporter promotes to indexed columns (filters of ``get_usage``).
SQL_COLUMNS = "request.username=user_name,request.endpoint=endpoint"

#: Files of the output directory that a new run replaces.
OUTPUT_FILES = ("usage.db", "usage.jsonl", "notes.db", "notes.db-wal", "notes.db-shm")

BROWSERS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "en-US,en;q=0.9",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15",
        "fr-FR,fr;q=0.9,en;q=0.6",
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "de-DE,de;q=0.8"),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1",
        "es-ES,es;q=0.9",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36",
        "pt-BR,pt;q=0.9",
    ),
]


#: Where the notes app is: ``examples/notes_app`` of a source checkout, else the copy a wheel installs.
NOTES_APP_DIRS = (
    Path(__file__).resolve().parents[2] / "examples" / "notes_app",
    Path(__file__).resolve().parents[1] / "_examples" / "notes_app",
)


def find_notes_app(app_dir: str | os.PathLike[str] | None = None) -> Any:
    """Import the notes example app from its package directory, imported as the top-level ``notes_app``
    (so that its probes are named the same however it was installed).

    Args:
        app_dir: the directory; default ``examples/notes_app`` of the source tree, else the copy in the
            installed package.

    Raises:
        FileNotFoundError: the directory is not there.
    """
    if app_dir is None:
        app_dir = next((d for d in NOTES_APP_DIRS if (d / "__init__.py").is_file()), NOTES_APP_DIRS[0])
    package = Path(app_dir).resolve()
    if not (package / "__init__.py").is_file():
        raise FileNotFoundError(
            f"the demo app is not at {package}: reinstall otel-usage, or pass --app-dir path/to/examples/notes_app"
        )
    parent = str(package.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return importlib.import_module(package.name)


# --- simulated users -----------------------------------------------------------------------------------


class _CountingRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects like a browser, counting each redirect response."""

    def __init__(self, statuses: collections.Counter[int]) -> None:
        self.statuses = statuses

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        self.statuses[code] += 1
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Client:
    """One simulated browser: cookies (session, visitor), a user agent, an address behind the proxy."""

    def __init__(self, base: str, rng: random.Random, address: str) -> None:
        self.base = base
        self.rng = rng
        agent, language = rng.choice(BROWSERS)
        self.headers = {"User-Agent": agent, "Accept-Language": language, "X-Forwarded-For": address}
        self.statuses: collections.Counter[int] = collections.Counter()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _CountingRedirects(self.statuses)
        )
        self.failures = 0
        self.last_url = ""

    def call(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
        token: str | None = None,
        referrer: str | None = None,
    ) -> int:
        headers = dict(self.headers)
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if referrer is not None:
            headers["Referer"] = self.base + referrer
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=10) as response:
                response.read()
                status = int(response.status)
                self.last_url = response.geturl()
        except urllib.error.HTTPError as err:
            err.read()
            status = err.code
        except (OSError, ValueError, http.client.HTTPException):
            self.failures += 1
            return 0
        self.statuses[status] += 1
        return status


def _simulate(client: _Client, name: str, password: str, token: str, deadline: float, counter: list[int]) -> None:
    """One user's session until ``deadline``: sign in, then a weighted mix of what people do in a wiki."""
    rng = client.rng
    note_ids = [1, 2, 3, 4]
    client.call("GET", "/notes/")  # anonymous: redirected to sign in
    if rng.random() < 0.15:
        client.call("POST", "/login", form={"name": name, "password": "wrong"})
    client.call("POST", "/login", form={"name": name, "password": password})

    def browse() -> None:
        client.call("GET", "/notes/" + ("?tag=" + rng.choice(["intro", "ops", "hr"]) if rng.random() < 0.3 else ""))

    def read() -> None:
        client.call("GET", f"/notes/{rng.choice(note_ids)}", referrer="/notes/")

    def write() -> None:
        title = rng.choice(["Meeting notes", "Ideas", "Retro", "Plan", "Recipe"]) + f" {rng.randint(1, 999)}"
        if client.call("POST", "/notes/new", form={"title": title, "body": "Draft **v1**", "tags": "draft"}) == 200:
            last = client.last_url.rstrip("/").rsplit("/", 1)[-1]
            if last.isdigit():
                note_ids.append(int(last))

    def edit() -> None:
        note = rng.choice(note_ids)
        client.call(
            "POST", f"/notes/{note}/edit", form={"body": f"Edited by {name} **again**"}, referrer=f"/notes/{note}"
        )

    def comment() -> None:
        client.call("POST", f"/notes/{rng.choice(note_ids)}/comments", form={"body": "+1"})

    def search() -> None:
        query = rng.choice(["welcome", "release", "first week", "reef", "plan"])
        client.call("GET", "/notes/search?" + urllib.parse.urlencode({"q": query}))

    def history() -> None:
        client.call("GET", f"/notes/{rng.choice(note_ids)}/history")

    def api() -> None:
        roll = rng.random()
        if roll < 0.5:
            client.call("GET", "/api/notes?limit=5", token=token)
        elif roll < 0.8:
            client.call("GET", f"/api/notes/{rng.choice(note_ids)}", token=token)
        elif roll < 0.95:
            client.call("POST", "/api/notes", json_body={"title": "From the API", "tags": ["api"]}, token=token)
        else:
            client.call("DELETE", f"/api/notes/{rng.choice(note_ids)}", token=token)

    def housekeeping() -> None:
        roll = rng.random()
        if roll < 0.4:
            client.call("GET", "/health")  # excluded: no usage log
        elif roll < 0.7:
            client.call("GET", "/static/notes.css")  # static: no usage log
        elif roll < 0.85:
            client.call("GET", f"/notes/{rng.randint(5000, 9999)}")  # a stale link: 404
        elif roll < 0.97:
            client.call("GET", "/admin/export")  # 403 unless admin
        else:
            client.call("GET", "/admin/crash")  # a bug: 500

    actions: list[Callable[[], None]] = [browse, read, write, edit, comment, search, history, api, housekeeping]
    weights = [14, 30, 5, 6, 6, 10, 4, 15, 10]
    while time.monotonic() < deadline:
        rng.choices(actions, weights)[0]()
        counter[0] += 1
        time.sleep(rng.uniform(0.0, 0.01))
    client.call("POST", "/logout")


# --- summary ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """What the stored usage logs say."""

    logs: int = 0
    users: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    endpoints: list[tuple[str, int, float]] = dataclasses.field(default_factory=list)
    functions: list[tuple[str, int, float, float]] = dataclasses.field(default_factory=list)
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)
    visitors: int = 0
    errors: int = 0


def summarize(logs: Iterable[Mapping[str, Any]], top: int = 5) -> Summary:
    """Top users (by requests), top endpoints (requests, mean seconds), slowest probed functions (calls,
    mean and max seconds), statuses, unique visitors and logs with status "error"."""
    users: collections.Counter[str] = collections.Counter()
    endpoints: dict[str, list[float]] = collections.defaultdict(list)
    functions: dict[str, list[float]] = collections.defaultdict(list)
    statuses: collections.Counter[int] = collections.Counter()
    visitors: set[str] = set()
    count = errors = 0
    for log in logs:
        count += 1
        errors += log.get("status") == "error"
        request = log.get("request") or {}
        users[request.get("username") or "(anonymous)"] += 1
        endpoint = request.get("endpoint") or "(no route)"
        endpoints[endpoint].append(float(log.get("duration") or 0.0))
        if request.get("status") is not None:
            statuses[int(request["status"])] += 1
        if request.get("visitor"):
            visitors.add(request["visitor"])
        for record in log.get("data") or ():
            if record.get("level") is not None and record.get("duration") is not None:
                functions[record["function"]].append(float(record["duration"]))
    by_endpoint = sorted(endpoints.items(), key=lambda item: -len(item[1]))[:top]
    by_function = sorted(functions.items(), key=lambda item: -sum(item[1]) / len(item[1]))[:top]
    return Summary(
        logs=count,
        users=users.most_common(top),
        endpoints=[(name, len(d), sum(d) / len(d)) for name, d in by_endpoint],
        functions=[(name, len(d), sum(d) / len(d), max(d)) for name, d in by_function],
        statuses=dict(sorted(statuses.items())),
        visitors=len(visitors),
        errors=errors,
    )


# --- the run ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DemoResult:
    """What a demo run did and where its files are."""

    out: Path
    database: Path
    jsonl: Path
    requests: int
    failed_requests: int
    seconds: float
    jsonl_lines: int
    summary: Summary


def _quiet_handler() -> Any:
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    return QuietHandler


def run_demo(
    out: str | os.PathLike[str] = "otel_usage_demo",
    seconds: float = 10.0,
    users: int = 6,
    seed: int = 7,
    progress: Callable[[float, int], None] | None = None,
    app_dir: str | os.PathLike[str] | None = None,
) -> DemoResult:
    """Run the demo (see the module docstring); ``progress(elapsed_seconds, requests)`` is called ~10x/s.

    Configures the process-wide usage pipeline (:func:`otel_usage.configure`) and shuts it down at the end.

    Raises:
        FileNotFoundError: the notes app is not found (see :func:`find_notes_app`).
        ValueError: a bad argument.
    """
    if seconds <= 0 or users < 1:
        raise ValueError("seconds must be > 0 and users >= 1")
    import otel_usage
    from otel_usage.exporters.file import FileUsageExporter
    from otel_usage.exporters.sql import SqlUsageExporter

    notes_app = find_notes_app(app_dir)
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        (out_dir / name).unlink(missing_ok=True)
    database, jsonl = out_dir / "usage.db", out_dir / "usage.jsonl"
    sql = SqlUsageExporter(f"sqlite:///{database}", columns=SQL_COLUMNS)
    otel_usage.configure(exporters=[sql, FileUsageExporter(jsonl)], service_name="notes-demo")
    app = notes_app.create_app(str(out_dir / "notes.db"), tracking={"trusted_proxies": 1})
    app.logger.setLevel(logging.CRITICAL)  # /admin/crash fails on purpose: its usage log tells, not a traceback

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_quiet_handler())
    server_thread = threading.Thread(target=server.serve_forever, name="notes-demo-server", daemon=True)
    server_thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    rng = random.Random(seed)
    people = list(notes_app.USERS.items())
    counter = [0]
    started = time.monotonic()
    deadline = started + seconds
    clients: list[_Client] = []
    threads = []
    for i in range(users):
        name, (password, token, _role) = people[i % len(people)]
        client = _Client(base, random.Random(rng.random()), f"203.0.113.{10 + i % 200}")
        clients.append(client)
        thread = threading.Thread(
            target=_simulate, args=(client, name, password, token, deadline, counter), name=f"demo-user-{name}"
        )
        threads.append(thread)
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            if progress is not None:
                progress(min(time.monotonic() - started, seconds), counter[0])
            time.sleep(0.1)
    finally:
        for thread in threads:
            thread.join()
        server.shutdown()
        server.server_close()
        elapsed = time.monotonic() - started
        otel_usage.force_flush()
    stored = _read_all(sql)
    summary = summarize(stored)
    otel_usage.shutdown()
    lines = sum(1 for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()) if jsonl.exists() else 0
    return DemoResult(
        out=out_dir,
        database=database,
        jsonl=jsonl,
        requests=sum(sum(c.statuses.values()) for c in clients),
        failed_requests=sum(c.failures for c in clients),
        seconds=elapsed,
        jsonl_lines=lines,
        summary=summary,
    )


def _read_all(sql: Any) -> list[dict[str, Any]]:
    logs: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = sql.get_usage(limit=1000, page=page)
        logs.extend(batch)
        if len(batch) < 1000:
            return logs
        page += 1


def next_commands(result: DemoResult) -> list[str]:
    """The reading commands to run next on what the demo wrote (each works on its output as printed)."""
    import shlex

    database = shlex.quote(f"sqlite:///{result.database}")
    jsonl = shlex.quote(str(result.jsonl))
    trace = _slowest_trace(result.database)
    commands = [
        f"otel-usage stats --store {database} --by endpoint",
        f"otel-usage stats --store {database} --per hour --by user --tz UTC",
        f"otel-usage stats --store {jsonl} --by browser --by os",
    ]
    if trace:
        commands.append(f"otel-usage show {trace} --store {database}")
    commands.append(f"otel-usage dashboard --store {database}")
    return commands


def _slowest_trace(database: Path) -> str | None:
    """The trace id of the slowest stored request (the most interesting one to ``show``)."""
    from otel_usage.query import QueryError, StoreError, open_store

    try:
        with open_store(f"sqlite:///{database}") as store:
            logs = store.get_usage(limit=1000)
    except (QueryError, StoreError):
        return None
    timed = [log for log in logs if isinstance(log.get("duration"), (int, float)) and log.get("data")]
    if not timed:
        return None
    return str(max(timed, key=lambda log: (len(log["data"]) > 1, log["duration"]))["trace_id"])
