"""Flask usage tracking, over a real Werkzeug server and a real HTTP client."""

from __future__ import annotations

import base64
import concurrent.futures
import logging
from collections.abc import Callable, Iterator
from typing import Any

import flask
import pytest
import requests
from flask import Blueprint, Flask, g, render_template_string
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_usage
from otel_usage import add_data, add_info, traced_usage, usage_context
from otel_usage.instrumentors.flask import FlaskUsageInstrumentor, UsageTracking, resolve_settings
from otel_usage.testing import CapturedUsage, capture_usage
from tests.instrumentors._flask_server import serve

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@traced_usage
def load_note(note_id: int) -> dict[str, Any]:
    return {"id": note_id}


@traced_usage
def save_note(note_id: int, text: str) -> None:
    load_note(note_id)


@pytest.fixture
def usage() -> Iterator[CapturedUsage]:
    with capture_usage() as captured:
        yield captured


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def make_app(usage: CapturedUsage, **options: Any) -> tuple[Flask, UsageTracking]:
    app = Flask(__name__)
    app.secret_key = "test-secret"
    tracking = UsageTracking(app, tracer_provider=usage.tracer_provider, **options)

    @app.route("/notes/<int:note_id>", methods=["GET", "POST"])
    def note(note_id: int) -> str:
        if flask.request.method == "POST":
            save_note(note_id, flask.request.get_data(as_text=True))
        else:
            load_note(note_id)
        return f"note {note_id}"

    return app, tracking


def only(logs: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(logs) == 1, logs
    return logs[0]


# --- fields --------------------------------------------------------------------------------------------


def test_every_request_field(usage: CapturedUsage, http: requests.Session) -> None:
    """A request's log carries every field of the ``request`` info key, from the real HTTP request."""
    app, _ = make_app(usage)
    with serve(app) as base:
        response = http.post(
            f"{base}/notes/7?tag=a&tag=b&q=x",
            data="hello",
            auth=("alice", "pw"),
            headers={
                "User-Agent": IPHONE,
                "Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5",
                "Referer": "http://example.test/list",
                "X-Forwarded-For": "203.0.113.9, 10.0.0.2",
            },
        )
        assert response.status_code == 200
    log = only(usage.logs)
    port = base.rsplit(":", 1)[1]
    assert log["request"] == {
        "method": "POST",
        "url": f"http://127.0.0.1:{port}/notes/7?tag=a&tag=b&q=x",
        "path": "/notes/7",
        "route": "/notes/<int:note_id>",
        "endpoint": "note",
        "blueprint": None,
        "view_args": {"note_id": 7},
        "url_args": {"tag": ["a", "b"], "q": ["x"]},
        "status": 200,
        "remote_addr": "127.0.0.1",
        "xforwardedfor": "203.0.113.9, 10.0.0.2",
        "client_ip": "127.0.0.1",
        "authorization": True,
        "username": "alice",
        "user_agent": {
            "string": IPHONE,
            "browser": "Mobile Safari",
            "version": "17.0",
            "os": "iOS",
            "device": "iPhone",
            "language": "fr-FR",
        },
        "content_length": 5,
        "referrer": "http://example.test/list",
        "response_length": 6,
    }
    assert log["status"] == "ok"
    assert [(r["function"], r["depth"]) for r in log["data"]] == [
        ("POST /notes/<int:note_id>", 0),
        ("tests.instrumentors.test_flask.save_note", 1),
        ("tests.instrumentors.test_flask.load_note", 2),
    ]
    assert log["data"][1]["params"] == {"note_id": 7, "text": "hello"}


def test_one_server_span_per_request_is_the_log_root(usage: CapturedUsage, http: requests.Session) -> None:
    """The stock instrumentation's server span is the log's root: no second span per request."""
    spans = InMemorySpanExporter()
    usage.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    app, _ = make_app(usage)
    with serve(app) as base:
        for i in range(3):
            assert http.get(f"{base}/notes/{i}").ok
    logs = usage.logs
    server = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert len(server) == 3 and len(logs) == 3
    assert sorted(format(s.context.span_id, "016x") for s in server) == sorted(log["span_id"] for log in logs)
    assert all(len(log["data"]) == 2 for log in logs)


def test_views_add_their_own_info_and_data(usage: CapturedUsage, http: requests.Session) -> None:
    """``add_info``/``add_data``/``usage_context`` in a view land in that request's log."""
    app, _ = make_app(usage)

    @app.route("/cart")
    def cart() -> str:
        add_info("tenant", "acme")
        add_data("items", 3)
        with usage_context(campaign="spring"):
            load_note(1)
        return "ok"

    with serve(app) as base:
        assert http.get(f"{base}/cart").ok
    log = only(usage.logs)
    assert log["tenant"] == "acme" and log["campaign"] == "spring"
    assert log["data"][0]["items"] == 3


def test_sensitive_query_arguments_are_redacted_everywhere(usage: CapturedUsage, http: requests.Session) -> None:
    """A token in the query string reaches neither the URL, the arguments nor the span attributes."""
    app, _ = make_app(usage)
    with serve(app) as base:
        assert http.get(f"{base}/notes/1?access_token=s3cr3t&page=2").ok
    log = only(usage.logs)
    assert "s3cr3t" not in repr(log)
    assert log["request"]["url_args"] == {"access_token": "[REDACTED]", "page": ["2"]}
    assert log["request"]["url"].endswith("/notes/1?access_token=%5BREDACTED%5D&page=2")


# --- users ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "authorization", "username"),
    [
        (None, False, None),
        ("Basic " + base64.b64encode(b"bob:pw").decode(), True, "bob"),
        ("Bearer eyJhbGciOi.abc.def", True, None),
        ("Basic !!not-base64!!", True, None),
    ],
    ids=["anonymous", "basic", "bearer", "malformed-basic"],
)
def test_authorization_and_username(
    usage: CapturedUsage, http: requests.Session, header: str | None, authorization: bool, username: str | None
) -> None:
    """Basic auth gives its user; a Bearer token gives no user name (never the string "None")."""
    app, _ = make_app(usage)
    with serve(app) as base:
        headers = {"Authorization": header} if header else {}
        assert http.get(f"{base}/notes/1", headers=headers).ok
    request = only(usage.logs)["request"]
    assert request["authorization"] is authorization
    assert request["username"] == username
    assert "eyJhbGciOi" not in repr(request)


def test_user_getter_wins_and_its_failure_is_harmless(usage: CapturedUsage, http: requests.Session) -> None:
    """``user_getter`` names the user; when it raises, the response is untouched and no user is recorded."""
    names = iter(["carol"])

    def getter() -> str | None:
        return next(names)  # the second call raises StopIteration... wrapped as a plain error below

    def safe_getter() -> str | None:
        try:
            return getter()
        except StopIteration:
            raise RuntimeError("user store down") from None

    app, _ = make_app(usage, user_getter=safe_getter)
    with serve(app) as base:
        first = http.get(f"{base}/notes/1")
        second = http.get(f"{base}/notes/1")
    assert (first.status_code, first.text) == (second.status_code, second.text) == (200, "note 1")
    users = [log["request"]["username"] for log in usage.logs]
    assert users == ["carol", None]
    assert otel_usage.stats().get("flask_user_getter_errors", 0) >= 1


def test_flask_login_user(usage: CapturedUsage, http: requests.Session) -> None:
    """Flask-Login's user is recorded when the view loaded it; the tracking never loads one itself."""
    flask_login = pytest.importorskip("flask_login")

    class User(flask_login.UserMixin):  # type: ignore[misc,name-defined]
        def __init__(self, name: str) -> None:
            self.id = name
            self.username = name

    app, _ = make_app(usage)
    manager = flask_login.LoginManager(app)
    loaded: list[str] = []

    @manager.user_loader
    def load(name: str) -> User:
        loaded.append(name)
        return User(name)

    @app.route("/login/<name>")
    def login(name: str) -> str:
        flask_login.login_user(User(name))
        return "in"

    @app.route("/me")
    @flask_login.login_required
    def me() -> str:
        return str(flask_login.current_user.id)

    @app.route("/public")
    def public() -> str:
        return "public"

    with serve(app) as base:
        assert http.get(f"{base}/login/dana").text == "in"
        assert http.get(f"{base}/me").text == "dana"
        assert http.get(f"{base}/public").text == "public"
    assert loaded == ["dana"]  # loaded for /me by the view, never on the tracking's behalf
    users = {log["request"]["path"]: log["request"]["username"] for log in usage.logs}
    assert users == {"/login/dana": "dana", "/me": "dana", "/public": None}


# --- client address ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "header", "client"),
    [
        (0, "203.0.113.9", "127.0.0.1"),
        (0, None, "127.0.0.1"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
        (2, "203.0.113.9", "127.0.0.1"),
        (1, "not-an-ip", "127.0.0.1"),
        (1, "[2001:db8::1]:4711", "2001:db8::1"),
        (1, "203.0.113.9:8080", "203.0.113.9"),
    ],
)
def test_client_ip_honours_trusted_proxies(
    usage: CapturedUsage, http: requests.Session, trusted: int, header: str | None, client: str
) -> None:
    """``client_ip`` trusts X-Forwarded-For only as many hops as there are trusted proxies."""
    app, _ = make_app(usage, trusted_proxies=trusted)
    with serve(app) as base:
        headers = {"X-Forwarded-For": header} if header else {}
        assert http.get(f"{base}/notes/1", headers=headers).ok
    request = only(usage.logs)["request"]
    assert request["client_ip"] == client
    assert request["remote_addr"] == "127.0.0.1"
    assert request["xforwardedfor"] == header


# --- include / exclude ---------------------------------------------------------------------------------


def paths(usage: CapturedUsage) -> list[str]:
    return sorted(log["request"]["path"] for log in usage.logs)


@pytest.mark.parametrize("decorator_first", [True, False], ids=["tracking-outer", "tracking-inner"])
@pytest.mark.parametrize("mode", ["include", "exclude"])
def test_view_decorators_in_either_order(
    usage: CapturedUsage, http: requests.Session, mode: str, decorator_first: bool
) -> None:
    """``@tracking.include``/``@tracking.exclude`` work above or below ``@app.route`` and keep the view."""
    app, tracking = make_app(usage, mode=mode)

    def view_in() -> str:
        return "in"

    def view_out() -> str:
        load_note(99)  # probes of an excluded request leave no log either
        return "out"

    if decorator_first:
        kept_in = tracking.include(app.route("/in")(view_in))
        kept_out = tracking.exclude(app.route("/out")(view_out))
    else:
        kept_in = app.route("/in")(tracking.include(view_in))
        kept_out = app.route("/out")(tracking.exclude(view_out))
    assert kept_in is view_in and kept_out is view_out
    with serve(app) as base:
        for path in ("/in", "/out", "/notes/1"):
            assert http.get(base + path).ok
    expected = ["/in"] if mode == "include" else ["/in", "/notes/1"]
    assert paths(usage) == expected


def test_excluded_request_leaves_no_log_whatever_it_calls(usage: CapturedUsage, http: requests.Session) -> None:
    """An excluded request calling probes, add_info and add_data produces no usage log, and no warning."""
    app, tracking = make_app(usage)

    @tracking.exclude
    @app.route("/health")
    def health() -> str:
        add_info("checked", True)
        add_data("deep", 1)
        save_note(1, "x")
        return "ok"

    before = otel_usage.stats()["dropped_total"]
    with serve(app) as base:
        assert http.get(f"{base}/health").text == "ok"
        assert http.get(f"{base}/notes/2").ok
    assert paths(usage) == ["/notes/2"]
    assert otel_usage.stats()["dropped_total"] == before


def test_endpoint_names_and_wrapped_views(usage: CapturedUsage, http: requests.Session) -> None:
    """Views are matched by endpoint name, through decorators (``__wrapped__``) and by view class."""
    import functools

    from flask.views import MethodView

    app, tracking = make_app(usage, mode="include")

    def logged(func: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> str:
            return func(*args, **kwargs)

        return wrapper

    @app.route("/wrapped")
    @logged
    @tracking.include
    def wrapped() -> str:
        return "w"

    class Items(MethodView):
        def get(self) -> str:
            return "items"

    tracking.include(Items)
    app.add_url_rule("/items", view_func=Items.as_view("items"))
    tracking.include("note")
    with serve(app) as base:
        for path in ("/wrapped", "/items", "/notes/3"):
            assert http.get(base + path).ok
    assert paths(usage) == ["/items", "/notes/3", "/wrapped"]


def _blueprint_with_app_hooks(name: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=f"/{name}")

    @bp.before_app_request
    def mark() -> None:
        g.marked = name

    @bp.app_template_filter(f"shout_{name}")
    def shout(text: str) -> str:
        return text.upper() + "!"

    @bp.route("/page")
    def page() -> str:
        return render_template_string(f"{{{{ 'hi' | shout_{name} }}}} {{{{ g.marked }}}}")

    return bp


@pytest.mark.parametrize("when", ["before-registration", "after-registration"])
@pytest.mark.parametrize("mode", ["include", "exclude"])
def test_blueprints_before_or_after_registration(
    usage: CapturedUsage, http: requests.Session, mode: str, when: str
) -> None:
    """``include_blueprint``/``exclude_blueprint`` work before or after registration, for views added
    later, and leave the blueprint's app-level hooks and template filters working."""
    app, tracking = make_app(usage, mode=mode)
    admin = _blueprint_with_app_hooks("admin")
    shop = _blueprint_with_app_hooks("shop")
    mark = tracking.include_blueprint if mode == "include" else tracking.exclude_blueprint
    if when == "before-registration":
        assert mark(admin) is admin

    @admin.route("/later")
    def later() -> str:  # added to the blueprint after it was marked
        return "later"

    app.register_blueprint(admin)
    app.register_blueprint(shop)
    if when == "after-registration":
        assert mark(admin) is admin
    with serve(app) as base:
        assert http.get(f"{base}/admin/page").text == "HI! shop"
        assert http.get(f"{base}/shop/page").text == "HI! shop"
        assert http.get(f"{base}/admin/later").text == "later"
    tracked = paths(usage)
    if mode == "include":
        assert tracked == ["/admin/later", "/admin/page"]
    else:
        assert tracked == ["/shop/page"]
    assert all(log["request"]["blueprint"] in ("admin", "shop") for log in usage.logs)


def test_nested_blueprints_and_view_marks_win(usage: CapturedUsage, http: requests.Session) -> None:
    """A parent blueprint's mark covers nested blueprints; a view's own mark wins over its blueprint's."""
    app, tracking = make_app(usage)
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")

    @child.route("/a")
    def a() -> str:
        return "a"

    @tracking.include
    @child.route("/b")
    def b() -> str:
        return "b"

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    tracking.exclude_blueprint("parent")
    with serve(app) as base:
        assert http.get(f"{base}/p/c/a").ok and http.get(f"{base}/p/c/b").ok
    assert paths(usage) == ["/p/c/b"]
    assert usage.logs[0]["request"]["blueprint"] == "parent.child"


def test_static_files_excluded_by_default(usage: CapturedUsage, http: requests.Session, tmp_path: Any) -> None:
    """Static files are not tracked unless ``track_static`` is on."""
    (tmp_path / "site.css").write_text("body {}")
    for track_static, expected in ((False, []), (True, ["/static/site.css"])):
        usage.clear()
        app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
        UsageTracking(app, tracer_provider=usage.tracer_provider, track_static=track_static)
        with serve(app) as base:
            assert http.get(f"{base}/static/site.css").text == "body {}"
        assert paths(usage) == expected


def test_mode_from_environment_and_app_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argument > app.config > environment; a bad environment value warns, a bad argument raises."""
    monkeypatch.setenv("OTEL_USAGE_FLASK_MODE", "include")
    monkeypatch.setenv("OTEL_USAGE_FLASK_TRUSTED_PROXIES", "2")
    assert resolve_settings({}).mode == "include"
    assert resolve_settings({}, {"OTEL_USAGE_FLASK_MODE": "exclude"}).mode == "exclude"
    assert resolve_settings({"mode": "exclude"}, {"OTEL_USAGE_FLASK_MODE": "include"}).mode == "exclude"
    assert resolve_settings({}).trusted_proxies == 2
    monkeypatch.setenv("OTEL_USAGE_FLASK_MODE", "sometimes")
    assert resolve_settings({}).mode == "exclude"
    with pytest.raises(ValueError, match="mode"):
        UsageTracking(mode="sometimes")
    with pytest.raises(ValueError, match="trusted_proxies"):
        UsageTracking(trusted_proxies=-1)
    with pytest.raises(ValueError, match="OTEL_USAGE_FLASK_MODE"):
        resolve_settings({}, {"OTEL_USAGE_FLASK_MODE": "never"})


# --- 404 and 500 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["include", "exclude"])
def test_unmatched_requests(usage: CapturedUsage, http: requests.Session, mode: str) -> None:
    """A request matching no route is logged in exclude mode only, with no route and a low-cardinality name."""
    app, _ = make_app(usage, mode=mode)
    with serve(app) as base:
        assert http.get(f"{base}/no/such/page/12345").status_code == 404
        assert http.delete(f"{base}/notes/1").status_code == 405
    logs = usage.logs
    if mode == "include":
        assert logs == []
        return
    by_status = {log["request"]["status"]: log for log in logs}
    assert set(by_status) == {404, 405}
    for log in logs:
        assert log["request"]["route"] is None and log["request"]["endpoint"] is None
    assert by_status[404]["data"][0]["function"] == "GET"
    assert by_status[405]["data"][0]["function"] == "DELETE"
    assert by_status[404]["status"] == "ok"


@pytest.mark.parametrize("propagate", [False, True], ids=["production", "propagating"])
def test_unhandled_error_gives_a_500_log(usage: CapturedUsage, http: requests.Session, propagate: bool) -> None:
    """An unhandled view error: request.status 500, top-level status "error" and the error."""
    app, _ = make_app(usage)
    app.config["PROPAGATE_EXCEPTIONS"] = propagate

    @app.route("/boom")
    def boom() -> str:
        load_note(1)
        raise KeyError("missing note")

    logging.getLogger("werkzeug").disabled = True
    try:
        with serve(app) as base:
            assert http.get(f"{base}/boom").status_code == 500
    finally:
        logging.getLogger("werkzeug").disabled = False
    log = only(usage.logs)
    assert log["request"]["status"] == 500
    assert log["status"] == "error"
    assert log["error"]["type"] == "KeyError"
    assert "missing note" in log["error"]["message"]
    assert [r["function"] for r in log["data"]][1:] == ["tests.instrumentors.test_flask.load_note"]


# --- visitors and geography ----------------------------------------------------------------------------


def test_visitor_cookie_round_trip(usage: CapturedUsage, http: requests.Session) -> None:
    """A new visitor gets a signed, HttpOnly, SameSite cookie; it comes back as the same id; a forged one
    is replaced."""
    app, _ = make_app(usage, visitor_cookie=True)
    with serve(app) as base:
        first = http.get(f"{base}/notes/1")
        cookie = first.headers["Set-Cookie"]
        assert cookie.startswith("otel_usage_visitor=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
        second = http.get(f"{base}/notes/2")
        assert "Set-Cookie" not in second.headers
        forged = requests.get(f"{base}/notes/3", cookies={"otel_usage_visitor": "0" * 32 + ".forged"})
        assert "otel_usage_visitor=" in forged.headers["Set-Cookie"]
    visitors = [log["request"]["visitor"] for log in sorted(usage.logs, key=lambda log: log["request"]["path"])]
    assert visitors[0] == visitors[1] and visitors[2] != visitors[0]
    assert all(len(v) == 32 for v in visitors)


def test_visitor_cookie_needs_a_signing_key(usage: CapturedUsage) -> None:
    """Asking for the visitor cookie with no key to sign it is an error at start-up."""
    with pytest.raises(ValueError, match="secret_key"):
        UsageTracking(Flask(__name__), tracer_provider=usage.tracer_provider, visitor_cookie=True)
    UsageTracking(Flask(__name__), tracer_provider=usage.tracer_provider, visitor_cookie=True, visitor_secret="k")


def test_geo_resolver_and_its_failure(usage: CapturedUsage, http: requests.Session) -> None:
    """The geo resolver gets the client address; when it fails the response is untouched and geo is None."""
    seen: list[str] = []

    def resolver(ip: str) -> dict[str, Any]:
        seen.append(ip)
        if ip == "198.51.100.7":
            raise OSError("database gone")
        return {"country": "FR", "city": "Lyon"}

    app, _ = make_app(usage, geo_resolver=resolver, trusted_proxies=1)
    with serve(app) as base:
        ok = http.get(f"{base}/notes/1", headers={"X-Forwarded-For": "203.0.113.9"})
        failing = http.get(f"{base}/notes/1", headers={"X-Forwarded-For": "198.51.100.7"})
    assert (ok.status_code, ok.text) == (failing.status_code, failing.text) == (200, "note 1")
    assert sorted(seen) == ["198.51.100.7", "203.0.113.9"]
    geos = {log["request"]["client_ip"]: log["request"]["geo"] for log in usage.logs}
    assert geos == {"203.0.113.9": {"country": "FR", "city": "Lyon"}, "198.51.100.7": None}


def test_maxmind_resolver_with_a_local_database(usage: CapturedUsage, http: requests.Session, tmp_path: Any) -> None:
    """The ready MaxMind resolver reads a local City database; unknown addresses give no geography."""
    pytest.importorskip("geoip2")
    mmdb_writer = pytest.importorskip("mmdb_writer")
    from netaddr import IPSet

    from otel_usage.instrumentors.flask import MaxMindGeoResolver

    path = tmp_path / "City.mmdb"
    writer = mmdb_writer.MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    writer.insert_network(
        IPSet(["203.0.113.0/24"]),
        {
            "country": {"iso_code": "FR", "names": {"en": "France"}},
            "city": {"names": {"en": "Lyon"}},
            "subdivisions": [{"names": {"en": "Auvergne-Rhone-Alpes"}}],
            "location": {"latitude": 45.75, "longitude": 4.85, "time_zone": "Europe/Paris"},
        },
    )
    writer.to_db_file(str(path))
    resolver = MaxMindGeoResolver(path)
    try:
        app, _ = make_app(usage, geo_resolver=resolver, trusted_proxies=1)
        with serve(app) as base:
            assert http.get(f"{base}/notes/1", headers={"X-Forwarded-For": "203.0.113.9"}).ok
            assert http.get(f"{base}/notes/2", headers={"X-Forwarded-For": "192.0.2.1"}).ok
    finally:
        resolver.close()
    geos = {log["request"]["path"]: log["request"]["geo"] for log in usage.logs}
    assert geos == {
        "/notes/1": {
            "country": "FR",
            "country_name": "France",
            "region": "Auvergne-Rhone-Alpes",
            "city": "Lyon",
            "latitude": 45.75,
            "longitude": 4.85,
            "time_zone": "Europe/Paris",
        },
        "/notes/2": None,
    }
    with pytest.raises(ValueError, match="does not exist"):
        MaxMindGeoResolver(tmp_path / "missing.mmdb")


# --- never breaking the app ----------------------------------------------------------------------------


class FailingExporter(LogRecordExporter):
    def export(self, batch: Any) -> LogRecordExportResult:
        raise RuntimeError("sink down")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _responses(app: Flask, http: requests.Session) -> list[tuple[int, bytes, list[tuple[str, str]]]]:
    with serve(app) as base:
        out = []
        for method, path in (("GET", "/notes/1"), ("POST", "/notes/2"), ("GET", "/missing"), ("GET", "/boom")):
            response = http.request(method, base + path, data="x")
            headers = sorted((k, v) for k, v in response.headers.items() if k not in ("Date",))
            out.append((response.status_code, response.content, headers))
    return out


def _app_with_boom(app: Flask) -> Flask:
    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    return app


def test_failing_exporter_hook_and_resolver_leave_responses_intact(
    http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Status, body and headers are what the plain app answers, whatever fails in the usage pipeline."""
    monkeypatch.setenv("OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS", "0")
    monkeypatch.setenv("OTEL_USAGE_EXPORT_DELAY_MILLIS", "10")
    logging.getLogger("werkzeug").disabled = True
    try:
        plain = Flask(__name__)

        @plain.route("/notes/<int:note_id>", methods=["GET", "POST"])
        def note(note_id: int) -> str:
            return f"note {note_id}"

        expected = _responses(_app_with_boom(plain), http)
        with capture_usage() as usage:
            usage.pipeline.add_exporter(FailingExporter())

            def bad_hook(request: Any, fields: dict[str, Any]) -> None:
                raise ValueError("hook bug")

            def bad_geo(ip: str) -> dict[str, Any]:
                raise OSError("no database")

            app, _ = make_app(usage, request_hook=bad_hook, geo_resolver=bad_geo)
            got = _responses(_app_with_boom(app), http)
            assert len(usage.logs) == 4
    finally:
        logging.getLogger("werkzeug").disabled = False
    assert [(s, b) for s, b, _ in got] == [(s, b) for s, b, _ in expected]
    assert [h for _, _, h in got] == [h for _, _, h in expected]


# --- concurrency -----------------------------------------------------------------------------------------


def test_parallel_requests_give_one_correct_log_each(usage: CapturedUsage) -> None:
    """Many parallel requests: one log each, and info set by one request never shows in another's."""
    app, _ = make_app(usage)

    @app.route("/work/<int:n>")
    def work(n: int) -> str:
        add_info("user", f"user{n}")
        with usage_context(job=n):
            load_note(n)
        return str(n)

    total = 120
    with serve(app) as base:

        def call(n: int) -> str:
            with requests.Session() as session:
                return session.get(f"{base}/work/{n}", headers={"User-Agent": f"agent-{n}"}).text

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            assert list(pool.map(call, range(total))) == [str(n) for n in range(total)]
    logs = usage.logs
    assert len(logs) == total
    for log in logs:
        n = log["request"]["view_args"]["n"]
        assert log["user"] == f"user{n}" and log["job"] == n
        assert log["request"]["user_agent"]["string"] == f"agent-{n}"
        assert [r["params"] for r in log["data"][1:]] == [{"note_id": n}]
    assert len({log["trace_id"] for log in logs}) == total


# --- instrumentor ----------------------------------------------------------------------------------------


def test_instrument_app_and_uninstrument_app(usage: CapturedUsage, http: requests.Session) -> None:
    """``FlaskUsageInstrumentor().instrument_app`` returns the extension; ``uninstrument_app`` stops logs."""
    app = Flask(__name__)
    instrumentor = FlaskUsageInstrumentor()
    tracking = instrumentor.instrument_app(app, tracer_provider=usage.tracer_provider)

    @tracking.exclude
    @app.route("/a")
    def a() -> str:
        return "a"

    @app.route("/b")
    def b() -> str:
        return "b"

    with serve(app) as base:
        assert http.get(f"{base}/a").ok and http.get(f"{base}/b").ok
        assert paths(usage) == ["/b"]
        instrumentor.uninstrument_app(app)
        assert http.get(f"{base}/b").ok
    assert paths(usage) == ["/b"]


def test_instrument_tracks_apps_created_afterwards(usage: CapturedUsage, http: requests.Session) -> None:
    """``instrument()`` (what ``opentelemetry-instrument`` calls) tracks every app created afterwards."""
    instrumentor = FlaskUsageInstrumentor()
    instrumentor.instrument(tracer_provider=usage.tracer_provider, mode="exclude")
    try:
        app = Flask(__name__)

        @app.route("/auto")
        def auto() -> str:
            return "auto"

        with serve(app) as base:
            assert http.get(f"{base}/auto").text == "auto"
    finally:
        instrumentor.uninstrument()
    assert paths(usage) == ["/auto"]
    assert "otel_usage" not in Flask(__name__).extensions
    assert "otel_usage" not in app.extensions  # untracked by uninstrument()
    with serve(app) as base:
        assert http.get(f"{base}/auto").text == "auto"
    assert paths(usage) == ["/auto"]


def test_before_request_answers_are_logged(usage: CapturedUsage, http: requests.Session) -> None:
    """A request answered by the app's own ``before_request`` hook (a 401) still has its log."""
    app = Flask(__name__)

    @app.before_request
    def guard() -> Any:
        if flask.request.path.startswith("/private"):
            return "login first", 401
        return None

    @app.route("/private/x")
    def private() -> str:
        return "secret"

    UsageTracking(app, tracer_provider=usage.tracer_provider)
    with serve(app) as base:
        assert http.get(f"{base}/private/x").status_code == 401
    assert only(usage.logs)["request"]["status"] == 401


def test_in_process_calls_never_touch_the_callers_log(usage: CapturedUsage) -> None:
    """An app called in-process from a probe: a URL the stock instrumentation skips, or an excluded
    view, neither writes a request field into the caller's log nor discards it."""
    app, tracking = make_app(usage, excluded_urls="notes/9")

    @tracking.exclude
    @app.route("/quiet")
    def quiet() -> str:
        return "quiet"

    @traced_usage
    def job() -> list[int]:
        client = app.test_client()
        return [client.get("/notes/9").status_code, client.get("/quiet").status_code]

    assert job() == [200, 200]
    log = only(usage.logs)
    assert "request" not in log
    assert log["data"][0]["function"].endswith("<locals>.job")


def test_with_flask_test_client(usage: CapturedUsage) -> None:
    """The README's testing snippet: Flask's test client works as well as a real server."""
    app, _ = make_app(usage)
    assert app.test_client().get("/notes/1?x=1").status_code == 200
    request = only(usage.logs)["request"]
    assert request["route"] == "/notes/<int:note_id>"
    assert request["url"] == "http://localhost/notes/1?x=1"
    assert request["url_args"] == {"x": ["1"]}


def test_request_hook_adds_fields_safely(usage: CapturedUsage, http: requests.Session) -> None:
    """``request_hook`` may add or change fields; its values are serialized and sensitive names redacted."""
    import datetime

    def hook(request: Any, fields: dict[str, Any]) -> None:
        fields["tenant"] = request.headers.get("X-Tenant")
        fields["seen_at"] = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        fields["api_key"] = "k-123"
        fields["path"] = {"normalized": fields["path"].lower()}

    app, _ = make_app(usage, request_hook=hook)
    with serve(app) as base:
        assert http.get(f"{base}/notes/1", headers={"X-Tenant": "acme"}).ok
    request = only(usage.logs)["request"]
    assert request["tenant"] == "acme"
    assert isinstance(request["seen_at"], str) and request["seen_at"].startswith("2026-01-02")
    assert request["api_key"] == "[REDACTED]"
    assert request["path"] == {"normalized": "/notes/1"}
    assert request["authorization"] is False


def test_init_app_later_with_app_config(usage: CapturedUsage, http: requests.Session) -> None:
    """Extension style: ``UsageTracking()`` first, ``init_app`` later; ``app.config`` keys set the settings."""
    tracking = UsageTracking(tracer_provider=usage.tracer_provider)
    app = Flask(__name__)
    app.config["OTEL_USAGE_FLASK_MODE"] = "include"
    app.config["OTEL_USAGE_FLASK_TRUSTED_PROXIES"] = 1

    @tracking.include
    @app.route("/in")
    def tracked() -> str:
        return "in"

    @app.route("/out")
    def untracked() -> str:
        return "out"

    tracking.init_app(app)
    tracking.init_app(app)  # again: the same hooks, no second log per request
    with serve(app) as base:
        for path in ("/in", "/out"):
            assert http.get(base + path, headers={"X-Forwarded-For": "198.51.100.4"}).ok
    assert only(usage.logs)["request"]["client_ip"] == "198.51.100.4"


def test_info_does_not_outlive_its_request_on_a_reused_thread(usage: CapturedUsage, http: requests.Session) -> None:
    """On a server that handles every request on the same thread, info set by one request (and its
    baggage) is gone for the next."""
    app, _ = make_app(usage)

    @app.route("/as/<name>")
    def as_user(name: str) -> str:
        add_info("user", name)
        return name

    @app.route("/anonymous")
    def anonymous() -> str:
        from opentelemetry import baggage

        return ",".join(sorted(baggage.get_all()))

    with serve(app, threaded=False) as base:
        assert http.get(f"{base}/as/alice").text == "alice"
        assert http.get(f"{base}/anonymous").text == ""
        assert http.get(f"{base}/as/bob").text == "bob"
    users = [log.get("user") for log in sorted(usage.logs, key=lambda log: log["start"])]
    assert users == ["alice", None, "bob"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_forked_worker_parses_user_agents(usage: CapturedUsage) -> None:
    """A pre-fork worker forked while the warm-up thread loads the user-agent rules: the fork waits for the
    warm-up (a child must not inherit an import lock held by a thread it does not have), then the worker
    parses user agents."""
    import os
    import threading
    import warnings

    from otel_usage.instrumentors import _flask_request

    loading, release = threading.Event(), threading.Event()

    def warm_up() -> None:  # as the warm-up thread does: the lock held while ua_parser loads
        with _flask_request._parser_lock:
            loading.set()
            release.wait(10)

    thread = threading.Thread(target=warm_up)
    thread.start()
    assert loading.wait(10)
    threading.Timer(0.3, release.set).start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a threaded process (3.12+)
        pid = os.fork()
    if pid == 0:  # the worker
        ok = release.is_set() and _flask_request.parse_user_agent.__wrapped__(IPHONE)[0] == "Mobile Safari"
        os._exit(0 if ok else 1)
    thread.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_view_arguments_are_redacted_and_cut(usage: CapturedUsage, http: requests.Session) -> None:
    """A view argument with a sensitive name is redacted; a long one is cut to the serialization limit."""
    app, _ = make_app(usage)

    @app.route("/reset/<token>/<path:rest>")
    def reset(token: str, rest: str) -> str:
        return "ok"

    with serve(app) as base:
        assert http.get(f"{base}/reset/abc123/{'x' * 2000}").ok
    view_args = only(usage.logs)["request"]["view_args"]
    assert view_args["token"] == "[REDACTED]"
    assert len(view_args["rest"]) < 1100 and view_args["rest"].startswith("xxx")


@pytest.mark.parametrize("stock_first", [True, False], ids=["stock-first", "usage-first"])
def test_with_the_stock_instrument_in_either_order(
    usage: CapturedUsage, http: requests.Session, stock_first: bool
) -> None:
    """Both instrumentors' ``instrument()`` (as ``opentelemetry-instrument`` calls them, in either order):
    one server span per request, and it is the root of the request's log."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    spans = InMemorySpanExporter()
    usage.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    stock, ours = FlaskInstrumentor(), FlaskUsageInstrumentor()
    steps = [
        lambda: stock.instrument(tracer_provider=usage.tracer_provider),
        lambda: ours.instrument(tracer_provider=usage.tracer_provider),
    ]
    for step in steps if stock_first else reversed(steps):
        step()
    try:
        app = flask.Flask(__name__)

        @app.route("/x/<int:n>")
        def x(n: int) -> str:
            load_note(n)
            return str(n)

        with serve(app) as base:
            assert http.get(f"{base}/x/1").text == "1"
            assert http.get(f"{base}/x/2").text == "2"
    finally:
        ours.uninstrument()
        stock.uninstrument()
    logs = usage.logs
    server = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert len(server) == 2 and len(logs) == 2
    assert sorted(format(s.context.span_id, "016x") for s in server) == sorted(log["span_id"] for log in logs)
    assert sorted(log["request"]["view_args"]["n"] for log in logs) == [1, 2]


def test_geoip_database_from_the_environment_that_is_missing(
    usage: CapturedUsage, http: requests.Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing database named by OTEL_USAGE_FLASK_GEOIP_DATABASE is an error in the log, not a lost app;
    the same file passed explicitly raises."""
    missing = "/nonexistent/GeoLite2-City.mmdb"
    monkeypatch.setenv("OTEL_USAGE_FLASK_GEOIP_DATABASE", missing)
    with caplog.at_level(logging.ERROR, logger="otel_usage"):
        app, _ = make_app(usage)
    assert missing in caplog.text
    with serve(app) as base:
        assert http.get(f"{base}/notes/1").ok
    assert "geo" not in only(usage.logs)["request"]
    with pytest.raises(ValueError, match="does not exist"):
        UsageTracking(Flask(__name__), tracer_provider=usage.tracer_provider, geoip_database=missing)


def test_threshold_none_records_no_request(http: requests.Session) -> None:
    """A request counts as a DEFAULT-level unit of work: with the threshold at NONE nothing is recorded."""
    with capture_usage(level="NONE") as usage:
        app, _ = make_app(usage)
        with serve(app) as base:
            assert http.get(f"{base}/notes/1").text == "note 1"
        assert usage.logs == []
    with capture_usage(level="INFO") as usage:
        app, _ = make_app(usage)
        with serve(app) as base:
            assert http.get(f"{base}/notes/1").text == "note 1"
        assert len(usage.logs) == 1


def test_visitor_cookie_is_secure_over_https(usage: CapturedUsage) -> None:
    """Over HTTPS the visitor cookie is also ``Secure``."""
    app, _ = make_app(usage, visitor_cookie=True)
    response = app.test_client().get("/notes/1", base_url="https://notes.example")
    assert "Secure" in response.headers["Set-Cookie"]
    assert only(usage.logs)["request"]["visitor"]


@pytest.mark.parametrize(
    ("database_type", "record", "expected"),
    [
        (
            "GeoLite2-Country",
            {"country": {"iso_code": "JP", "names": {"en": "Japan"}}, "continent": {"code": "AS"}},
            {"country": "JP", "country_name": "Japan", "continent": "AS"},
        ),
        (
            "GeoLite2-ASN",
            {"autonomous_system_number": 64500, "autonomous_system_organization": "Example Net"},
            {"asn": 64500, "organization": "Example Net"},
        ),
    ],
)
def test_maxmind_country_and_asn_databases(tmp_path: Any, database_type: str, record: Any, expected: Any) -> None:
    """Country and ASN databases are understood too; the resolver's answers are copies."""
    pytest.importorskip("geoip2")
    mmdb_writer = pytest.importorskip("mmdb_writer")
    from netaddr import IPSet

    from otel_usage.instrumentors.flask import MaxMindGeoResolver

    path = tmp_path / f"{database_type}.mmdb"
    writer = mmdb_writer.MMDBWriter(ip_version=6, database_type=database_type, ipv4_compatible=True)
    writer.insert_network(IPSet(["198.51.100.0/24"]), record)
    writer.to_db_file(str(path))
    resolver = MaxMindGeoResolver(path, memory=True)
    try:
        first = resolver("198.51.100.20")
        assert first == expected
        first["country"] = "changed"
        assert resolver("198.51.100.20") == expected
        assert resolver("192.0.2.1") is None
        assert resolver("not an address") is None
    finally:
        resolver.close()


def test_explicit_tracking_takes_over_an_auto_tracked_app(usage: CapturedUsage, http: requests.Session) -> None:
    """An app tracked by ``instrument()`` and then given its own ``UsageTracking``: the explicit settings and
    marks apply, and each request still has exactly one log."""
    instrumentor = FlaskUsageInstrumentor()
    instrumentor.instrument(tracer_provider=usage.tracer_provider)
    try:
        app = Flask(__name__)
        tracking = UsageTracking(app, mode="include")

        @tracking.include
        @app.route("/in")
        def tracked() -> str:
            return "in"

        @app.route("/out")
        def untracked() -> str:
            return "out"

        with serve(app) as base:
            assert http.get(f"{base}/in").ok and http.get(f"{base}/out").ok and http.get(f"{base}/in").ok
    finally:
        instrumentor.uninstrument()
    assert paths(usage) == ["/in", "/in"]


def test_skip_request_at_run_time(usage: CapturedUsage, http: requests.Session) -> None:
    """``skip_request()`` in a view drops that request's log (what it called before included)."""
    from otel_usage.instrumentors.flask import skip_request

    app, _ = make_app(usage)

    @app.route("/page")
    def page() -> str:
        load_note(1)
        if "bot" in flask.request.headers.get("User-Agent", ""):
            assert skip_request() is True
        load_note(2)
        return "page"

    with serve(app) as base:
        assert http.get(f"{base}/page", headers={"User-Agent": "crawler-bot/1.0"}).text == "page"
        assert http.get(f"{base}/page", headers={"User-Agent": "Mozilla/5.0"}).text == "page"
    log = only(usage.logs)
    assert log["request"]["user_agent"]["string"] == "Mozilla/5.0"
    assert skip_request() is False  # outside a request


def test_a_tracked_app_can_be_garbage_collected(usage: CapturedUsage) -> None:
    """The tracking keeps no app alive (many apps in a test session do not pile up)."""
    import gc
    import weakref

    app, _ = make_app(usage)
    assert app.test_client().get("/notes/1").status_code == 200
    ref = weakref.ref(app)
    del app
    gc.collect()
    assert ref() is None
