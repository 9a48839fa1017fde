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
visitor id and a geography. An excluded request's log is discarded whole, whatever probes it called;
:func:`skip_request` does the same from a view, decided at run time.

Settings: an explicit argument, else the ``app.config`` key named like the variable, else the variable:
``OTEL_USAGE_FLASK_MODE``, ``OTEL_USAGE_FLASK_TRUSTED_PROXIES``, ``OTEL_USAGE_FLASK_VISITOR_COOKIE``,
``OTEL_USAGE_FLASK_TRACK_STATIC``, ``OTEL_USAGE_FLASK_GEOIP_DATABASE`` (see
:mod:`otel_usage.environment_variables`).
"""

from otel_usage.instrumentors._flask import (
    FlaskUsageInstrumentor,
    FlaskUsageSettings,
    MaxMindGeoResolver,
    UsageTracking,
    resolve_settings,
    skip_request,
)

__all__ = [
    "FlaskUsageInstrumentor",
    "FlaskUsageSettings",
    "MaxMindGeoResolver",
    "UsageTracking",
    "resolve_settings",
    "skip_request",
]
