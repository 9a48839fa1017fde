"""The machinery of :mod:`otel_usage.instrumentors.flask` (documented there)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_usage._errors import handle_internal_errors
from otel_usage.instrumentors._flask_geo import MaxMindGeoResolver
from otel_usage.instrumentors._flask_hooks import EXTENSION_KEY, AppState, ensure_server_span, skip_request
from otel_usage.instrumentors._flask_request import GeoResolver, VisitorCookie, warm_up_user_agent_parser
from otel_usage.instrumentors._flask_settings import FIELDS, FlaskUsageSettings, resolve_settings, strict

if TYPE_CHECKING:
    from flask import Flask, Request
    from opentelemetry.trace import TracerProvider

__all__ = [
    "FlaskUsageInstrumentor",
    "FlaskUsageSettings",
    "MaxMindGeoResolver",
    "UsageTracking",
    "resolve_settings",
    "skip_request",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
                strict(name, FIELDS[name].parse, value, "argument")
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
            ValueError: an invalid ``app.config`` value, a visitor cookie without any signing key, or an
                explicit ``geoip_database`` that is not a readable MaxMind database (one from the
                environment or ``app.config`` is logged as an error, and the app tracked without ``geo``).
            ImportError: an explicit ``geoip_database`` and geoip2 is not installed.
        """
        settings = resolve_settings(self._explicit, app.config)
        explicit_visitor = settings.visitor_cookie and self._explicit.get("visitor_cookie")
        if explicit_visitor and not self.visitor_secret and not app.secret_key:
            raise ValueError(
                "visitor_cookie needs a key to sign the cookie: set app.secret_key first or pass visitor_secret="
            )
        geo: GeoResolver | None = self.geo_resolver
        if geo is None and settings.geoip_database:
            try:
                geo = MaxMindGeoResolver(settings.geoip_database)
            except (ImportError, ValueError) as exc:
                if self._explicit.get("geoip_database") is not None:
                    raise
                # From the environment or app.config (under opentelemetry-instrument, inside Flask()):
                # the app is still tracked, without geography, and the reason is logged loudly.
                logger.error("otel_usage: no request.geo for this Flask app: %s", exc)
        state = app.extensions.get(EXTENSION_KEY)
        if isinstance(state, AppState):
            state.tracking, state.settings, state.geo = self, settings, geo
            return
        instrumented_here = ensure_server_span(app, self.tracer_provider, self.excluded_urls)
        state = AppState(app, self, settings, geo, instrumented_here)
        app.extensions[EXTENSION_KEY] = state
        app.after_request(state.after_request)
        from flask import got_request_exception

        got_request_exception.connect(state.on_exception, app)  # weak: gone with the app
        warm_up_user_agent_parser()


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
    ``uninstrument()`` stops that and untracks the apps it tracked.
    """

    _options: dict[str, Any] = {}
    _auto_apps: weakref.WeakSet[Any] = weakref.WeakSet()

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
        self._auto_apps = weakref.WeakSet()
        wrapt.wrap_function_wrapper(flask.app.Flask, "__init__", self._after_flask_init)

    def _uninstrument(self, **kwargs: Any) -> None:
        try:
            import flask.app
        except ImportError:
            return
        from opentelemetry.instrumentation.utils import unwrap

        unwrap(flask.app.Flask, "__init__")
        for app in list(self._auto_apps):
            self.uninstrument_app(app)

    def _after_flask_init(self, wrapped: Callable[..., None], instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        with handle_internal_errors("FlaskUsageInstrumentor (Flask app creation)"):
            if EXTENSION_KEY not in instance.extensions:
                UsageTracking(**self._options).init_app(instance)
                self._auto_apps.add(instance)

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
        if not isinstance(state, AppState):
            return
        state.detach()
        if state.instrumented_here:
            from opentelemetry.instrumentation.flask import FlaskInstrumentor

            FlaskInstrumentor.uninstrument_app(app)  # type: ignore[no-untyped-call]
