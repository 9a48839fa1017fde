"""The dashboard blueprint on a real HTTP server over a real store, and in a real headless Chromium.

The browser is Debian's chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright; the
screenshots go to the test's tmp dir, or to ``$OTEL_USAGE_ARTEFACTS_DIR`` when that is set.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_usage.dashboard import create_dashboard
from otel_usage.query import StoreError, open_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Server:
    """A Flask app with the dashboard mounted at /usage, on a real Werkzeug server in a thread."""

    def __init__(self, store: str, auth: Callable[[Any], Any] | None = None) -> None:
        from flask import Flask
        from werkzeug.serving import make_server

        app = Flask("dashboard_test")
        app.register_blueprint(create_dashboard(store, auth=auth), url_prefix="/usage")
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}/usage"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, dict(err.headers), err.read()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def served(demo_run: tuple[Path, str]) -> Iterator[Server]:
    server = Server(f"sqlite:///{demo_run[0] / 'usage.db'}")
    yield server
    server.close()


def test_summary_api_matches_the_store(served: Server, demo_run: tuple[Path, str]) -> None:
    """The summary the page draws is the store's statistics: totals, traffic buckets, top routes."""
    status, headers, body = served.get("/api/summary?since=all")
    assert status == 200
    summary = json.loads(body)
    with open_store(demo_run[0] / "usage.db") as store:
        total = store.stats().rows[0]
        routes = store.stats(by="route", top=10).rows
    assert summary["total"]["hits"] == total.hits and summary["total"]["duration_p95"] == total.duration_p95
    assert sum(row["hits"] for row in summary["traffic"]) == total.hits
    assert [r["route"] for r in summary["routes"]] == [r.group["route"] for r in routes]
    assert summary["slowest"] and summary["users"] and summary["browsers"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, _, body = served.get("/api/summary?since=forever")
    assert status == 400 and b"since must be one of" in body


def test_trace_page_and_api(served: Server, demo_run: tuple[Path, str]) -> None:
    """A trace's page lists its calls as bars; an unknown trace is a 404."""
    with open_store(demo_run[0] / "usage.db") as store:
        log = next(x for x in store.get_usage(limit=500) if len(x["data"]) > 1)
    status, _, body = served.get(f"/trace/{log['trace_id']}")
    assert status == 200
    page = body.decode()
    assert page.count('class="bar"') == len(log["data"]) and log["data"][1]["function"] in page
    status, _, body = served.get(f"/api/trace/{log['trace_id']}")
    assert status == 200 and json.loads(body)[0]["span_id"] == log["span_id"]
    assert served.get("/trace/" + "0" * 32)[0] == 404
    assert served.get("/api/trace/" + "0" * 32)[0] == 404


def test_without_an_auth_hook_only_loopback_is_served(served: Server) -> None:
    """No auth hook: a request that came through a proxy (X-Forwarded-For, Forwarded) is refused."""
    assert served.get("/")[0] == 200
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        status, _, body = served.get("/api/summary", {header: "198.51.100.7"})
        assert status == 403 and b"no auth hook" in body


def test_the_auth_hook_decides(demo_run: tuple[Path, str]) -> None:
    """With a hook: True serves, False refuses with 403, a response is sent as it is (here a redirect)."""
    from flask import redirect

    def auth(request: Any) -> Any:
        token = request.headers.get("Authorization")
        if token == "Bearer good":
            return True
        if token is None:
            return redirect("/login")
        return False

    server = Server(f"sqlite:///{demo_run[0] / 'usage.db'}", auth=auth)
    try:
        assert server.get("/api/summary", {"Authorization": "Bearer good", "X-Forwarded-For": "1.2.3.4"})[0] == 200
        assert server.get("/api/summary", {"Authorization": "Bearer bad"})[0] == 403
        status, _, _ = server.get("/static/chart.umd.min.js", {"Authorization": "Bearer bad"})
        assert status == 403
    finally:
        server.close()


def test_a_store_that_cannot_be_read_fails_at_creation(tmp_path: Path) -> None:
    """create_dashboard opens the store: a missing one is a StoreError there, not at the first request."""
    with pytest.raises(StoreError, match="no such file"):
        create_dashboard(tmp_path / "missing.jsonl")


def test_chart_library_is_shipped_with_its_licence() -> None:
    """Chart.js and its MIT licence are files of the package (no CDN)."""
    import otel_usage.dashboard as dashboard

    static = Path(dashboard.__file__).parent / "static"
    assert (static / "chart.umd.min.js").read_text().startswith("/*!\n * Chart.js v4.")
    assert "MIT License" in (static / "chart.js-LICENSE.md").read_text()


def _artefacts(tmp_path: Path) -> Path:
    folder = os.environ.get("OTEL_USAGE_ARTEFACTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path


def test_dashboard_renders_in_chromium(served: Server, demo_run: tuple[Path, str], tmp_path: Path) -> None:
    """In headless Chromium: no console error, every chart drawn with the store's figures, a trace page with its
    bars placed; screenshots written."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"!!! browser test NOT RUN: no {CHROMIUM} (apt-get install chromium) !!!")
    from playwright.sync_api import sync_playwright

    with open_store(demo_run[0] / "usage.db") as store:
        hits = store.count()
    problems: list[str] = []
    requests: list[str] = []
    out = _artefacts(tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(served.base + "/?since=all")
            page.wait_for_function("() => document.body.dataset.rendered !== ''", timeout=30_000)
            assert page.evaluate("document.body.dataset.rendered") == str(hits)
            drawn = page.evaluate(
                """() => Object.fromEntries(['traffic', 'latency', 'routes', 'users', 'browsers', 'errors'].map(id => {
                    const chart = Chart.getChart(id);
                    return [id, chart ? chart.data.datasets[0].data : null];
                }))"""
            )
            assert sum(drawn["traffic"]) == hits
            assert drawn["latency"] and all(v is None or v > 0 for v in drawn["latency"])
            assert drawn["routes"] and drawn["users"] and drawn["browsers"] and drawn["errors"] is not None
            painted = page.evaluate(
                """() => { const c = document.getElementById('traffic');
                           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                           let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i]) n++; } return n; }"""
            )
            assert painted > 1000  # pixels drawn on the canvas
            page.screenshot(path=str(out / "dashboard.png"), full_page=True)
            page.click("#slowest tbody a")
            page.wait_for_function("() => Number(document.body.dataset.rendered) > 0", timeout=30_000)
            widths = page.eval_on_selector_all(".bar", "bars => bars.map(b => b.style.width)")
            assert widths and all(w.endswith("%") for w in widths)
            page.screenshot(path=str(out / "trace.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith("http://127.0.0.1:") for url in requests)  # nothing from a CDN
    for name in ("dashboard.png", "trace.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
