"""Flask: one usage log per request, on opentelemetry-instrumentation-flask's server span.

    from otel_usage.instrumentors.flask import UsageTracking

    tracking = UsageTracking(app)          # or FlaskUsageInstrumentor().instrument_app(app)

    @tracking.exclude                      # either decorator order; the view is returned unchanged
    @app.route("/health")
    def health(): ...

    tracking.exclude_blueprint(admin_bp)   # before or after registration

Under ``opentelemetry-instrument`` every Flask app is tracked without code change (entry point
``otel_usage_flask``). The server span of the stock Flask instrumentation is the local root of each
request's usage log (no second span per request); the app is instrumented with it here when it is not
yet. Once the view has answered (``after_request``, or ``got_request_exception`` when exceptions
propagate), the info key ``request`` is written on that span's record: method, url, path, route,
endpoint, blueprint, view and query arguments, status, addresses, user, user agent, and optionally a
visitor id and a geography. An excluded request's log is discarded whole, whatever probes it called.

Settings: an explicit argument, else the ``app.config`` key named like the variable, else the variable:
``OTEL_USAGE_FLASK_MODE``, ``OTEL_USAGE_FLASK_TRUSTED_PROXIES``, ``OTEL_USAGE_FLASK_VISITOR_COOKIE``,
``OTEL_USAGE_FLASK_TRACK_STATIC``, ``OTEL_USAGE_FLASK_GEOIP_DATABASE`` (see
:mod:`otel_usage.environment_variables`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_usage import _stats
from otel_usage import environment_variables as ev
from otel_usage._config import env_parsed
from otel_usage._errors import internal_error
from otel_usage._processor import Entry
from otel_usage._runtime import ENTRY_ATTR
from otel_usage.instrumentors._flask_geo import MaxMindGeoResolver
from otel_usage.instrumentors._flask_request import (
    GeoResolver,
    VisitorCookie,
    flask_login_user,
    redacted_query,
    request_fields,
    scrub_span_query,
    warm_up_user_agent_parser,
)

if TYPE_CHECKING:
    from flask import Flask, Request, Response
    from opentelemetry.trace import TracerProvider

__all__ = ["FlaskUsageInstrumentor", "FlaskUsageSettings", "MaxMindGeoResolver", "UsageTracking"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "otel_usage"
#: Where the stock Flask instrumentation keeps the request's server span in the WSGI environ.
SPAN_ENVIRON_KEY = "opentelemetry-flask.span_key"
_VISITOR_ENVIRON_KEY = "otel_usage.visitor"
_MODES = ("include", "exclude")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_WARNING_INTERVAL_SECONDS = 60.0


# --- settings ------------------------------------------------------------------------------------------


def _parse_mode(raw: Any) -> str:
    mode = str(raw).strip().lower()
    if mode not in _MODES:
        raise ValueError(f"expected 'include' or 'exclude', got {raw!r}")
    return mode


def _parse_count(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer >= 0, got {raw!r}")
    value = int(raw)
    if value < 0:
        raise ValueError(f"expected an integer >= 0, got {raw!r}")
    return value


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_path(raw: Any) -> str | None:
    text = str(raw).strip()
    return text or None


@dataclasses.dataclass(frozen=True)
class FlaskUsageSettings:
    """The settings of one tracked app.

    Attributes:
        mode: ``exclude`` (default): every request is tracked except excluded views and blueprints;
            ``include``: only included views and blueprints are tracked.
        trusted_proxies: reverse proxies in front of the app whose ``X-Forwarded-For`` entries are
            trusted to find ``client_ip`` (0: the peer address is the client).
        visitor_cookie: keep a random visitor id in a signed cookie and record it as ``visitor``.
        track_static: also track static files (``static`` endpoints); default False.
        geoip_database: a local MaxMind database file to resolve ``geo`` from ``client_ip``.
    """

    mode: str = "exclude"
    trusted_proxies: int = 0
    visitor_cookie: bool = False
    track_static: bool = False
    geoip_database: str | None = None


#: field -> (environment variable / app.config key, parser)
_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "mode": (ev.OTEL_USAGE_FLASK_MODE, _parse_mode),
    "trusted_proxies": (ev.OTEL_USAGE_FLASK_TRUSTED_PROXIES, _parse_count),
    "visitor_cookie": (ev.OTEL_USAGE_FLASK_VISITOR_COOKIE, _parse_bool),
    "track_static": (ev.OTEL_USAGE_FLASK_TRACK_STATIC, _parse_bool),
    "geoip_database": (ev.OTEL_USAGE_FLASK_GEOIP_DATABASE, _parse_path),
}


def _strict(name: str, parse: Callable[[Any], T], value: Any, source: str) -> T:
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: invalid {name}: {exc}") from None


def resolve_settings(explicit: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> FlaskUsageSettings:
    """Explicit arguments (not None) > ``config`` keys (``app.config``) > environment > defaults.

    Raises:
        ValueError: an invalid explicit argument or config value (a bad environment value only warns).
    """
    defaults = FlaskUsageSettings()
    values: dict[str, Any] = {}
    for field, (variable, parse) in _FIELDS.items():
        value = explicit.get(field)
        if value is not None:
            values[field] = _strict(field, parse, value, "argument")
        elif config is not None and config.get(variable) is not None:
            values[field] = _strict(field, parse, config[variable], f"app.config[{variable!r}]")
        else:
            values[field] = env_parsed(variable, getattr(defaults, field), parse)
    return FlaskUsageSettings(**values)


# --- failures of the user's callables ------------------------------------------------------------------

_warned_lock = threading.Lock()
_warned_at: dict[str, float] = {}


def _call_user(kind: str, func: Callable[..., T], *args: Any) -> T | None:
    """Run one of the application's callables (resolver, getter, hook): a failure is logged and counted."""
    try:
        return func(*args)
    except Exception:
        _stats.count(f"flask_{kind}_errors")
        now = time.monotonic()
        with _warned_lock:
            last = _warned_at.get(kind)
            if last is not None and now - last < _WARNING_INTERVAL_SECONDS:
                return None
            _warned_at[kind] = now
        logger.warning("otel_usage: the Flask %s failed (the response is not affected)", kind, exc_info=True)
        return None


# --- the extension -------------------------------------------------------------------------------------


class UsageTracking:
    """Flask extension: one usage log per request of the apps it is initialised on.

    Args:
        app: the app (or call :meth:`init_app` later, once per app).
        mode: ``exclude`` (track all but excluded) or ``include`` (track only included).
        trusted_proxies: how many reverse proxies' ``X-Forwarded-For`` entries to trust.
        visitor_cookie: record a visitor id kept in a signed, HttpOnly, SameSite cookie.
        visitor_secret: key that signs the visitor cookie; default the app's ``secret_key``.
        visitor_cookie_name: the cookie's name.
        visitor_max_age_seconds: the cookie's lifetime (default two years).
        track_static: also track static files.
        geoip_database: a local MaxMind ``.mmdb`` file for ``geo`` (needs the ``geo`` extra).
        geo_resolver: any ``ip -> dict | None`` function for ``geo`` (wins over ``geoip_database``); it
            runs on the request thread: keep it local and fast (no network).
        user_getter: ``() -> str | None`` returning the request's user name; default Flask-Login's
            loaded user, else the HTTP Basic user.
        request_hook: ``(request, fields) -> None``, may change the ``request`` fields before they are
            recorded.
        tracer_provider: for the server span when the app is instrumented here.
        excluded_urls: the stock Flask instrumentation's excluded URLs (no span, no log) when the app is
            instrumented here; default ``OTEL_PYTHON_FLASK_EXCLUDED_URLS``.

    Raises:
        ValueError: an invalid argument.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        mode: str | None = None,
        trusted_proxies: int | None = None,
        visitor_cookie: bool | None = None,
        visitor_secret: str | bytes | None = None,
        visitor_cookie_name: str = "otel_usage_visitor",
        visitor_max_age_seconds: int = 2 * 365 * 24 * 3600,
        track_static: bool | None = None,
        geoip_database: str | None = None,
        geo_resolver: GeoResolver | None = None,
        user_getter: Callable[[], str | None] | None = None,
        request_hook: Callable[[Request, dict[str, Any]], None] | None = None,
        tracer_provider: TracerProvider | None = None,
        excluded_urls: str | None = None,
    ) -> None:
        self._explicit: dict[str, Any] = {
            "mode": mode,
            "trusted_proxies": trusted_proxies,
            "visitor_cookie": visitor_cookie,
            "track_static": track_static,
            "geoip_database": geoip_database,
        }
        for name, value in self._explicit.items():
            if value is not None:
                _strict(name, _FIELDS[name][1], value, "argument")
        callables = {"geo_resolver": geo_resolver, "user_getter": user_getter, "request_hook": request_hook}
        for name, func in callables.items():
            if func is not None and not callable(func):
                raise ValueError(f"{name} must be callable, got {func!r}")
        if not visitor_cookie_name or not isinstance(visitor_cookie_name, str):
            raise ValueError(f"visitor_cookie_name must be a non-empty string, got {visitor_cookie_name!r}")
        if isinstance(visitor_max_age_seconds, bool) or not isinstance(visitor_max_age_seconds, int):
            raise ValueError(f"visitor_max_age_seconds must be an integer, got {visitor_max_age_seconds!r}")
        self.visitor_secret = visitor_secret
        self.visitor = VisitorCookie(visitor_cookie_name, visitor_max_age_seconds)
        self.geo_resolver = geo_resolver
        self.user_getter = user_getter
        self.request_hook = request_hook
        self.tracer_provider = tracer_provider
        self.excluded_urls = excluded_urls
        self._views: dict[Any, bool] = {}
        self._endpoints: dict[str, bool] = {}
        self._blueprints: dict[Any, bool] = {}
        self._blueprint_names: dict[str, bool] = {}
        if app is not None:
            self.init_app(app)

    # --- choosing what is tracked ---------------------------------------------------------------------

    def include(self, view: T) -> T:
        """Track this view (a view function, a view class, or an endpoint name); returns it unchanged."""
        self._mark(view, True)
        return view

    def exclude(self, view: T) -> T:
        """Do not track this view (a view function, a view class, or an endpoint name); returns it unchanged."""
        self._mark(view, False)
        return view

    def include_blueprint(self, blueprint: T) -> T:
        """Track every view of this blueprint (a ``Blueprint`` or its registered name), nested ones too."""
        self._mark_blueprint(blueprint, True)
        return blueprint

    def exclude_blueprint(self, blueprint: T) -> T:
        """Do not track the views of this blueprint (a ``Blueprint`` or its registered name), nested ones too."""
        self._mark_blueprint(blueprint, False)
        return blueprint

    def _mark(self, view: Any, tracked: bool) -> None:
        if isinstance(view, str):
            self._endpoints[view] = tracked
        elif callable(view):
            self._views[view] = tracked
        else:
            raise TypeError(f"include/exclude take a view function, a view class or an endpoint name, got {view!r}")

    def _mark_blueprint(self, blueprint: Any, tracked: bool) -> None:
        if isinstance(blueprint, str):
            self._blueprint_names[blueprint] = tracked
            return
        from flask import Blueprint

        if not isinstance(blueprint, Blueprint):
            raise TypeError(f"include_blueprint/exclude_blueprint take a Blueprint or a name, got {blueprint!r}")
        self._blueprints[blueprint] = tracked

    def _view_decision(self, view: Any) -> bool | None:
        hops = 0
        while view is not None and hops < 8:
            decision = self._views.get(view)
            if decision is not None:
                return decision
            view_class = getattr(view, "view_class", None)
            if view_class is not None:
                decision = self._views.get(view_class)
                if decision is not None:
                    return decision
            view = getattr(view, "__wrapped__", None)
            hops += 1
        return None

    def is_tracked(self, app: Flask, request: Request, settings: FlaskUsageSettings) -> bool:
        """Whether ``request`` is tracked: the view's mark, else its blueprints' (innermost first), else
        static files are not (unless ``track_static``), else the mode. A request that matched no route
        is tracked in ``exclude`` mode only."""
        endpoint = request.endpoint
        if endpoint is None:
            return settings.mode == "exclude"
        decision = self._endpoints.get(endpoint)
        if decision is None and self._views:
            try:
                decision = self._view_decision(app.view_functions.get(endpoint))
            except TypeError:  # an unhashable view object
                decision = None
        if decision is not None:
            return decision
        if not settings.track_static and (endpoint == "static" or endpoint.endswith(".static")):
            return False
        if self._blueprints or self._blueprint_names:
            for name in request.blueprints:
                decision = self._blueprint_names.get(name)
                if decision is None:
                    blueprint = app.blueprints.get(name)
                    decision = None if blueprint is None else self._blueprints.get(blueprint)
                if decision is not None:
                    return decision
        return settings.mode == "exclude"

    # --- apps -----------------------------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Track ``app``: instrument it with the stock Flask instrumentation if needed, add the hooks.

        Calling it again (or on an app tracked under ``opentelemetry-instrument``) makes this object
        and its settings the ones in force for ``app``.

        Raises:
            ValueError: an invalid ``app.config`` value, or a visitor cookie without any signing key.
            ImportError: ``geoip_database`` is set and geoip2 is not installed.
        """
        settings = resolve_settings(self._explicit, app.config)
        explicit_visitor = settings.visitor_cookie and self._explicit.get("visitor_cookie")
        if explicit_visitor and not self.visitor_secret and not app.secret_key:
            raise ValueError(
                "visitor_cookie needs a key to sign the cookie: set app.secret_key first or pass visitor_secret="
            )
        geo: GeoResolver | None = self.geo_resolver
        if geo is None and settings.geoip_database:
            geo = MaxMindGeoResolver(settings.geoip_database)
        state = app.extensions.get(EXTENSION_KEY)
        if isinstance(state, _AppState):
            state.tracking, state.settings, state.geo = self, settings, geo
            return
        instrumented_here = _ensure_server_span(app, self.tracer_provider, self.excluded_urls)
        state = _AppState(app, self, settings, geo, instrumented_here)
        app.extensions[EXTENSION_KEY] = state
        app.after_request(state.after_request)
        from flask import got_request_exception

        got_request_exception.connect(state.on_exception, app, weak=False)
        warm_up_user_agent_parser()


def _ensure_server_span(app: Flask, tracer_provider: TracerProvider | None, excluded_urls: str | None) -> bool:
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


class _AppState:
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

    def on_exception(self, sender: Any, exception: BaseException | None = None, **extra: Any) -> None:
        """An unhandled error: record status 500 now, in case it propagates (debug, testing) and no
        ``after_request`` follows; when it does follow, it records the final response."""
        try:
            self.record(500, None)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "Flask usage tracking (got_request_exception)")

    def record(self, status: int, response: Response | None) -> None:
        from flask import request as request_proxy

        request: Request = request_proxy._get_current_object()  # type: ignore[attr-defined]
        environ = request.environ
        # The server span of this very request (never "the current span": with an excluded URL there is
        # none, and the current one may then be a caller's, for an app called in-process).
        span: Any = environ.get(SPAN_ENVIRON_KEY)
        entry = getattr(span, ENTRY_ATTR, None)
        if not isinstance(entry, Entry) or entry.owner is None:
            return  # not recorded: no usage pipeline, a hidden subtree, or a dropped unit of work
        tracking, settings = self.tracking, self.settings
        if not tracking.is_tracked(self.app, request, settings):
            if entry.root is entry:
                entry.owner.discard(entry)
            return
        if request.url_rule is None:
            method = request.method
            span.update_name(method if method in _METHODS else "HTTP")
        if environ.get("QUERY_STRING"):
            query = redacted_query(request)
            if query is not None:
                scrub_span_query(span, request, query)
        getter = tracking.user_getter
        username = _call_user("user_getter", getter) if getter is not None else flask_login_user()
        fields = request_fields(request, status, settings.trusted_proxies, username)
        cookie = None
        if settings.visitor_cookie:
            cookie = self._visitor(request, environ, fields)
        if self.geo is not None:
            ip = fields["client_ip"]
            found = _call_user("geo_resolver", self.geo, ip) if ip else None
            from otel_usage._params import serialize

            fields["geo"] = serialize(dict(found)) if isinstance(found, Mapping) else None
        if tracking.request_hook is not None:
            _call_user("request_hook", tracking.request_hook, request, fields)
        if entry.info is None:
            entry.info = {}
        entry.info["request"] = fields
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


# --- the instrumentor ------------------------------------------------------------------------------------

_OPTION_NAMES = (
    "mode",
    "trusted_proxies",
    "visitor_cookie",
    "visitor_secret",
    "track_static",
    "geoip_database",
    "geo_resolver",
    "user_getter",
    "request_hook",
    "tracer_provider",
    "excluded_urls",
)


class FlaskUsageInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """One usage log per Flask request: per app (:meth:`instrument_app`) or for every app (``instrument()``,
    done by ``opentelemetry-instrument`` through the ``otel_usage_flask`` entry point).

    ``instrument(**options)`` takes the keyword arguments of :class:`UsageTracking` and applies them to
    every app created afterwards; nothing happens (a debug message) when Flask is not installed.
    """

    _options: dict[str, Any] = {}

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("flask >= 2.2",)

    def _instrument(self, **kwargs: Any) -> None:
        try:
            import flask.app
        except ImportError:
            logger.debug("otel_usage: Flask is not installed; the Flask usage instrumentation does nothing")
            return
        import wrapt

        self._options = {key: value for key, value in kwargs.items() if key in _OPTION_NAMES}
        UsageTracking(**self._options)  # validates the options now
        wrapt.wrap_function_wrapper(flask.app.Flask, "__init__", self._after_flask_init)

    def _uninstrument(self, **kwargs: Any) -> None:
        try:
            import flask.app
        except ImportError:
            return
        from opentelemetry.instrumentation.utils import unwrap

        unwrap(flask.app.Flask, "__init__")

    def _after_flask_init(self, wrapped: Callable[..., None], instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        try:
            if EXTENSION_KEY not in instance.extensions:
                UsageTracking(**self._options).init_app(instance)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "FlaskUsageInstrumentor (Flask app creation)")

    def instrument_app(self, app: Flask, **options: Any) -> UsageTracking:
        """Track ``app``; ``options`` are :class:`UsageTracking`'s keyword arguments.

        Returns:
            The extension object (for ``include``/``exclude``).
        """
        tracking = UsageTracking(**options)
        tracking.init_app(app)
        return tracking

    def uninstrument_app(self, app: Flask) -> None:
        """Stop tracking ``app`` (and remove the stock instrumentation if it was added here)."""
        state = app.extensions.get(EXTENSION_KEY)
        if not isinstance(state, _AppState):
            return
        state.detach()
        if state.instrumented_here:
            from opentelemetry.instrumentation.flask import FlaskInstrumentor

            FlaskInstrumentor.uninstrument_app(app)  # type: ignore[no-untyped-call]
