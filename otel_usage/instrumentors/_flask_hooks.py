"""Request-time side of the Flask usage tracking: the hooks of one tracked app.

``after_request`` (and ``got_request_exception``, for errors that propagate) find the request's server
span in the WSGI environ, decide whether the request is tracked, and either discard its usage log or write
the ``request`` info key on the span's record. Everything here runs on the request thread, never raises
into the app (the internal-error guard), and leaves the response as the view produced it, the visitor
cookie aside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from otel_usage import _counters
from otel_usage._errors import internal_error, never_raises
from otel_usage._levels import THRESHOLD, Level
from otel_usage._record import Entry
from otel_usage._runtime import ENTRY_ATTR
from otel_usage._warnings import RateLimitedLog
from otel_usage.instrumentors._flask_request import (
    GeoResolver,
    flask_login_user,
    redacted_query,
    request_fields,
    scrub_span_query,
)
from otel_usage.instrumentors._flask_settings import FlaskUsageSettings

if TYPE_CHECKING:
    from flask import Flask, Request, Response
    from opentelemetry.trace import TracerProvider

    from otel_usage.instrumentors.flask import UsageTracking

__all__ = [
    "AppState",
    "EXTENSION_KEY",
    "SPAN_ENVIRON_KEY",
    "call_user",
    "ensure_server_span",
    "skip_request",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "otel_usage"
#: Where the stock Flask instrumentation keeps the request's server span in the WSGI environ.
SPAN_ENVIRON_KEY = "opentelemetry-flask.span_key"
_VISITOR_ENVIRON_KEY = "otel_usage.visitor"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_REQUEST_LEVEL = int(Level.DEFAULT)


_failures = RateLimitedLog(60.0)  # per kind of callable


def call_user(kind: str, func: Callable[..., T], *args: Any) -> T | None:
    """Run one of the application's callables (resolver, getter, hook): a failure is logged and counted."""
    try:
        return func(*args)
    except Exception:
        _counters.count(f"flask_{kind}_errors")
        if not _failures.allow(kind):
            return None
        logger.warning("otel_usage: the Flask %s failed (the response is not affected)", kind, exc_info=True)
        return None


def ensure_server_span(app: Flask, tracer_provider: TracerProvider | None, excluded_urls: str | None) -> bool:
    """Instrument ``app`` with the stock Flask instrumentation unless it is (or is being) already.

    Its ``before_request`` then runs first, so that requests answered by the app's own ``before_request``
    hooks (a login redirect, a 401) have a span, and so a usage log, too. True when instrumented here.
    """
    from opentelemetry.instrumentation.flask import FlaskInstrumentor, _InstrumentedFlask

    if getattr(app, "_is_instrumented_by_opentelemetry", False) or isinstance(app, _InstrumentedFlask):
        return False
    FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
        app, tracer_provider=tracer_provider, excluded_urls=excluded_urls
    )
    hook = getattr(app, "_before_request", None)
    funcs = app.before_request_funcs.get(None)
    if hook is not None and funcs and hook in funcs:
        funcs.remove(hook)
        funcs.insert(0, hook)
    return True


def skip_request() -> bool:
    """Leave the current Flask request out of the usage logs, decided at run time (a bot, a probe).

    Like an excluded view: its log is discarded whole, whatever it called before or calls after.

    Returns:
        True when the request's log was discarded; False outside a tracked request.
    """
    from flask import has_request_context, request

    if not has_request_context():
        return False
    entry = getattr(request.environ.get(SPAN_ENVIRON_KEY), ENTRY_ATTR, None)
    if not isinstance(entry, Entry) or entry.root is not entry:
        return False
    return entry.discard()


def _hooked(hook: Callable[..., Any], request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    """Let the app's ``request_hook`` adjust the fields; what it added or changed is serialized (and
    redacted by name when added) like any info value, so that nothing unencodable reaches an exporter."""
    from otel_usage._serialize import serialize, serialize_named

    before = dict(fields)
    call_user("request_hook", hook, request, fields)
    if not isinstance(fields, dict):
        return before
    for key, value in list(fields.items()):
        if key not in before:
            fields[str(key)] = serialize_named(str(key), value)
        elif value is not before[key]:
            fields[key] = serialize(value)
    return fields


_request_proxy: Any = None


def _current_request() -> Request:
    """Flask's request of this context (the proxy is imported once: an import per request costs)."""
    global _request_proxy
    proxy = _request_proxy
    if proxy is None:
        from flask import request as proxy

        _request_proxy = proxy
    current: Request = proxy._get_current_object()
    return current


class AppState:
    """What one tracked app needs at request time; its bound methods are the app's hooks."""

    def __init__(
        self,
        app: Flask,
        tracking: UsageTracking,
        settings: FlaskUsageSettings,
        geo: GeoResolver | None,
        instrumented_here: bool,
    ) -> None:
        self.app = app
        self.tracking = tracking
        self.settings = settings
        self.geo = geo
        self.instrumented_here = instrumented_here
        self._secret_warned = False

    def after_request(self, response: Response) -> Response:
        try:
            self.record(response.status_code, response)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "Flask usage tracking (after_request)")
        return response

    @never_raises("Flask usage tracking (got_request_exception)")
    def on_exception(self, sender: Any, exception: BaseException | None = None, **extra: Any) -> None:
        """An unhandled error: record status 500 now, in case it propagates (debug, testing) and no
        ``after_request`` follows; when it does follow, it records the final response."""
        self.record(500, None)

    def record(self, status: int, response: Response | None) -> None:
        request = _current_request()
        environ = request.environ
        # The server span of this very request (never "the current span": with an excluded URL there is
        # none, and the current one may then be a caller's, for an app called in-process).
        span: Any = environ.get(SPAN_ENVIRON_KEY)
        entry = getattr(span, ENTRY_ATTR, None)
        if not isinstance(entry, Entry) or entry.owner is None:
            return  # not recorded: no usage pipeline, a hidden subtree, or a dropped unit of work
        tracking, settings = self.tracking, self.settings
        # A request is a unit of work at the DEFAULT level: a threshold above it (NONE) records no request.
        if THRESHOLD.value > _REQUEST_LEVEL or not tracking.is_tracked(self.app, request, settings):
            if entry.root is entry:
                entry.discard()
            return
        if request.url_rule is None:
            method = request.method
            span.update_name(method if method in _METHODS else "HTTP")
        if environ.get("QUERY_STRING"):
            query = redacted_query(request)
            if query is not None:
                scrub_span_query(span, request, query)
        getter = tracking.user_getter
        username = call_user("user_getter", getter) if getter is not None else flask_login_user()
        fields = request_fields(request, status, settings.trusted_proxies, username)
        # The body's length sent back (for transfer statistics); None when streamed or unknown.
        fields["response_length"] = response.content_length if response is not None else None
        cookie = None
        if settings.visitor_cookie:
            cookie = self._visitor(request, environ, fields)
        if self.geo is not None:
            ip = fields["client_ip"]
            found = call_user("geo_resolver", self.geo, ip) if ip else None
            from otel_usage._serialize import serialize

            fields["geo"] = serialize(dict(found)) if isinstance(found, Mapping) else None
        if tracking.request_hook is not None:
            fields = _hooked(tracking.request_hook, request, fields)
        entry.add_info("request", fields)
        if cookie is not None and response is not None:
            visitor = tracking.visitor
            response.set_cookie(
                visitor.name,
                cookie,
                max_age=visitor.max_age_seconds,
                httponly=True,
                samesite=visitor.same_site,
                secure=request.is_secure,
            )

    def _visitor(self, request: Request, environ: dict[str, Any], fields: dict[str, Any]) -> str | None:
        known = environ.get(_VISITOR_ENVIRON_KEY)
        if known is None:
            secret = self.tracking.visitor_secret or self.app.secret_key
            if not secret:
                if not self._secret_warned:
                    self._secret_warned = True
                    logger.warning("otel_usage: visitor cookie enabled but the app has no secret_key; not recorded")
                return None
            known = self.tracking.visitor.read(request, secret)
            environ[_VISITOR_ENVIRON_KEY] = known
        fields["visitor"] = known[0]
        cookie: str | None = known[1]
        return cookie

    def detach(self) -> None:
        """Remove this state's hooks from the app."""
        from flask import got_request_exception

        funcs = self.app.after_request_funcs.get(None)
        if funcs and self.after_request in funcs:
            funcs.remove(self.after_request)
        got_request_exception.disconnect(self.on_exception, self.app)
        self.app.extensions.pop(EXTENSION_KEY, None)
