"""A self-hosted dashboard of stored usage logs: a Flask blueprint to mount in your app.

Traffic over time, top routes, users and browsers, latency percentiles, errors, the slowest recent requests and
a page per trace with its call tree. Charts are drawn by Chart.js, shipped inside the package (no CDN); the
pages load no script from elsewhere and send a strict Content-Security-Policy.

Access is protected by default: pass ``auth``, a function of the request that returns True to let it in
(or a response to send instead, e.g. a redirect to your login page). Without one, the dashboard answers only
requests from this machine (a loopback peer address and no proxy header) and refuses every other::

    from otel_usage.dashboard import create_dashboard

    app.register_blueprint(
        create_dashboard("sqlite:///usage.db", auth=lambda request: current_user.is_admin),
        url_prefix="/usage",
    )

``otel-usage dashboard --store URL`` serves it alone on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Callable
from typing import Any

from otel_usage.query import FIELDS, QueryError, StoreError, UsageStore, open_store

__all__ = ["AuthHook", "create_dashboard", "serve"]

logger = logging.getLogger(__name__)

#: ``auth(request)``: True lets the request in; False refuses it (403); a response is sent as it is.
AuthHook = Callable[[Any], Any]

_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "Forwarded")
_SINCE = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "all": None}
_TOPS = {"routes": "route", "users": "user", "browsers": "browser", "endpoints": "endpoint", "os": "os"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _loopback(request: Any) -> bool:
    if any(request.headers.get(name) for name in _PROXY_HEADERS):
        return False  # a proxy on this machine forwards other machines' requests
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _row(row: Any) -> dict[str, Any]:
    return row.to_dict()  # type: ignore[no-any-return]


def create_dashboard(
    store: str | os.PathLike[str] | UsageStore,
    auth: AuthHook | None = None,
    *,
    name: str = "otel_usage_dashboard",
    tz: str = "UTC",
) -> Any:
    """The dashboard as a Flask blueprint over ``store`` (a URL, a path or an open store).

    Args:
        store: where the usage logs are (opened now: a store that cannot be read fails here).
        auth: the access hook (see the module documentation); None serves loopback requests only.
        name: the blueprint's name.
        tz: the time zone of the time buckets.

    Raises:
        StoreError: the store cannot be read.
        QueryError: a bad store URL or time zone.
    """
    from flask import Blueprint, abort, jsonify, make_response, render_template, request

    from otel_usage.query import TimeZone

    TimeZone(tz)  # a bad zone fails now
    opened = open_store(store)
    here = os.path.dirname(__file__)
    blueprint = Blueprint(
        name,
        __name__,
        template_folder=os.path.join(here, "templates"),
        static_folder=os.path.join(here, "static"),
        static_url_path="/static",
    )

    @blueprint.before_request
    def _guard() -> Any:
        if auth is None:
            if _loopback(request):
                return None
            return make_response(
                "The usage dashboard has no auth hook: it answers only requests from this machine. "
                "Pass create_dashboard(..., auth=...) to serve others.\n",
                403,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        allowed = auth(request)
        if allowed is True:
            return None
        if allowed is False or allowed is None:
            abort(403)
        return allowed

    @blueprint.after_request
    def _headers(response: Any) -> Any:
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _window() -> tuple[str, Any, str]:
        since = request.args.get("since", "7d")
        if since not in _SINCE:
            raise QueryError(f"since must be one of {', '.join(_SINCE)}")
        seconds = _SINCE[since]
        start = None if seconds is None else dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)
        per = request.args.get("per") or ("hour" if seconds is not None and seconds <= 86400 * 2 else "day")
        return since, start, per

    def _error(exc: Exception) -> Any:
        status = 400 if isinstance(exc, QueryError) else 503
        return jsonify({"error": str(exc)}), status

    @blueprint.route("/")
    def index() -> Any:
        return render_template("otel_usage_dashboard/index.html", store=opened.url, windows=list(_SINCE))

    @blueprint.route("/api/summary")
    def summary() -> Any:
        try:
            since, start, per = _window()
            traffic = opened.stats(per=per, start=start, tz=tz)
            if since == "all" and "per" not in request.args and len(traffic.rows) <= 3:
                hourly = opened.stats(per="hour", start=start, tz=tz)  # a short history: hours say more
                if len(hourly.rows) <= 72:
                    traffic, per = hourly, "hour"
            total = opened.stats(start=start, tz=tz).rows
            tops = {key: [_row(r) for r in opened.stats(by=f, start=start, top=10).rows] for key, f in _TOPS.items()}
            errors = sorted(
                (r for r in opened.stats(by="endpoint", start=start, top=50).rows if r.errors),
                key=lambda r: -r.errors,
            )[:10]
            recent = opened.get_usage(start=start, limit=200)
        except (QueryError, StoreError) as exc:
            return _error(exc)
        slowest = sorted(
            (log for log in recent if isinstance(log.get("duration"), (int, float))), key=lambda log: -log["duration"]
        )[:10]
        return jsonify(
            {
                "store": opened.url,
                "since": since,
                "per": per,
                "tz": tz,
                "total": _row(total[0]) if total else None,
                "traffic": [_row(r) for r in traffic.rows],
                "errors": [_row(r) for r in errors],
                "slowest": [_brief(log) for log in slowest],
                **tops,
            }
        )

    @blueprint.route("/api/trace/<trace_id>")
    def trace_data(trace_id: str) -> Any:
        try:
            logs = opened.get_trace(trace_id)
        except (QueryError, StoreError) as exc:
            return _error(exc)
        if not logs:
            return jsonify({"error": f"no usage log of trace {trace_id}"}), 404
        return jsonify([{**log, "start": log["start"].isoformat()} for log in logs])

    @blueprint.route("/trace/<trace_id>")
    def trace(trace_id: str) -> Any:
        try:
            logs = opened.get_trace(trace_id)
        except (QueryError, StoreError) as exc:
            return make_response(str(exc), 400 if isinstance(exc, QueryError) else 503)
        if not logs:
            abort(404)
        return render_template("otel_usage_dashboard/trace.html", trace_id=trace_id, logs=[_view(log) for log in logs])

    blueprint.record_once(lambda state: state.app.extensions.setdefault("otel_usage_dashboards", []).append(opened))
    return blueprint


def _brief(log: dict[str, Any]) -> dict[str, Any]:
    from otel_usage.query._fields import value_of

    return {
        "trace_id": log.get("trace_id"),
        "start": log["start"].isoformat(),
        "duration": log.get("duration"),
        "status": log.get("status"),
        "service": log.get("service"),
        "endpoint": value_of(log, FIELDS["endpoint"]) or value_of(log, FIELDS["function"])[:1],
        "path": value_of(log, FIELDS["path"]),
        "user": value_of(log, FIELDS["user"]),
        "http_status": value_of(log, FIELDS["http_status"]),
    }


def _view(log: dict[str, Any]) -> dict[str, Any]:
    """What the trace page shows: header, info, and call/timer bars as percentages of the log's duration."""
    from otel_usage._schema import RESERVED_KEYS
    from otel_usage.query._render import call_tree, to_json

    calls = call_tree(log)
    timers = [t for t in log.get("timers") or () if isinstance(t, list) and len(t) >= 3]
    raw = log.get("duration")
    duration = float(raw) if isinstance(raw, (int, float)) else 0.0
    total = max([duration] + [s + (d or 0.0) for _, _, s, d, _ in calls] + [float(t[2] or 0) for t in timers])
    total = total or 1.0

    def bar(start: float, length: float) -> dict[str, float]:
        left = min(99.5, max(0.0, start / total * 100))
        return {"left": round(left, 2), "width": round(max(0.5, min(100 - left, length / total * 100)), 2)}

    rows = [
        {
            "kind": "call",
            "label": function,
            "depth": depth,
            "duration_ms": None if d is None else d * 1000,
            "failed": failed,
            **bar(start, d or 0.0),
        }
        for depth, function, start, d, failed in calls
    ]
    rows += [
        {
            "kind": "timer",
            "label": f"timer {t[0]}",
            "depth": 0,
            "duration_ms": (float(t[2] or 0) - float(t[1] or 0)) * 1000,
            "failed": False,
            **bar(float(t[1] or 0), float(t[2] or 0) - float(t[1] or 0)),
        }
        for t in timers
    ]
    lines = [
        {"offset_ms": float(line[0] or 0) * 1000, "text": f"[{line[1]}] {line[2]}", "data": to_json(line[3:4])}
        for line in log.get("logs") or ()
        if isinstance(line, list) and len(line) >= 3
    ]
    lines += [
        {
            "offset_ms": float(e.get("time") or 0) * 1000,
            "text": f"event {e.get('name')}",
            "data": to_json(e.get("data")),
        }
        for e in log.get("events") or ()
        if isinstance(e, dict)
    ]
    info = {k: to_json(v, indent=1) for k, v in log.items() if k not in RESERVED_KEYS}
    return {
        "log": log,
        "start": log["start"].isoformat(),
        "rows": rows,
        "lines": sorted(lines, key=lambda item: item["offset_ms"]),
        "info": info,
        "error": to_json(log.get("error")) if log.get("error") else None,
        "total_ms": total * 1000,
    }


def serve(store: str | UsageStore, host: str = "127.0.0.1", port: int = 8050, console: Any = None) -> None:
    """Serve the dashboard of ``store`` alone (loopback only, no auth hook) until interrupted."""
    from flask import Flask, redirect
    from werkzeug.serving import make_server

    app = Flask("otel_usage.dashboard")
    app.register_blueprint(create_dashboard(store), url_prefix="/usage")
    app.add_url_rule("/", "root", lambda: redirect("/usage/"))
    server = make_server(host, port, app, threaded=True)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{server.server_port}/usage/"
    message = f"otel-usage dashboard of {getattr(store, 'url', store)} at {url} (Ctrl-C stops it)"
    if console is not None:
        console.print(message, markup=False)
    else:
        logger.warning("%s", message)
    try:
        server.serve_forever()
    finally:
        server.server_close()
