"""Instrumentors: :mod:`otel_usage.instrumentors.flask` (one usage log per request) and
:mod:`otel_usage.instrumentors.probes` (functions named in ``OTEL_USAGE_PROBES``, no code change)."""

__all__: list[str] = []
