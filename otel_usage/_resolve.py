"""What names and the environment select: the sampler and the usage exporters.

:func:`resolve_sampler` wraps a given sampler, or the one ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG`` name (``usage_level``, a sampler of the SDK, or one of the
``opentelemetry_traces_sampler`` entry points), in a :class:`~otel_usage.LevelSampler`.
:func:`exporters_from_env` builds the exporters ``OTEL_USAGE_EXPORTERS`` names, :func:`build_exporter` the
one a name (``file``, ``sql``, ``otlp``, ``console``, ``none``) stands for.
"""

from __future__ import annotations

import logging
import os

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.trace.sampling import Sampler

from otel_usage import environment_variables as ev
from otel_usage._config import EXPORTERS, CoreSettings
from otel_usage._exit import debug_tracebacks
from otel_usage._sampling import LevelSampler, usage_level_sampler

__all__ = ["build_exporter", "exporters_from_env", "resolve_sampler"]

logger = logging.getLogger("otel_usage")


def resolve_sampler(sampler: Sampler | None, settings: CoreSettings) -> Sampler:
    if isinstance(sampler, LevelSampler):
        return sampler
    if sampler is not None:
        return LevelSampler(sampler, record_unsampled=settings.record_unsampled)

    name = (os.environ.get("OTEL_TRACES_SAMPLER") or "").strip().lower()
    arg = os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    if name == "usage_level":
        return usage_level_sampler(arg)
    if not name:
        return LevelSampler(record_unsampled=settings.record_unsampled)
    from opentelemetry.sdk.trace import sampling

    try:
        delegate = sampling._get_from_env_or_default()
        if name not in sampling._KNOWN_SAMPLERS:
            delegate = _sampler_from_entry_point(name, arg) or delegate
    except Exception as exc:  # noqa: BLE001
        logger.warning("Ignoring OTEL_TRACES_SAMPLER=%r (%s); sampling everything", name, exc)
        delegate = None
    return LevelSampler(delegate, record_unsampled=settings.record_unsampled)


def _sampler_from_entry_point(name: str, arg: str | None) -> Sampler | None:
    from opentelemetry.util._importlib_metadata import entry_points

    for ep in entry_points(group="opentelemetry_traces_sampler", name=name):
        factory = ep.load()
        sampler = factory(arg)
        if isinstance(sampler, Sampler):
            return sampler
    logger.warning("Ignoring OTEL_TRACES_SAMPLER=%r: no such sampler; sampling everything", name)
    return None


def exporters_from_env(strict: bool = True) -> list[LogRecordExporter]:
    """The exporters ``OTEL_USAGE_EXPORTERS`` names.

    With ``strict`` a sink that cannot start raises; without (under ``opentelemetry-instrument``) it is one
    warning naming the sink and the reason, and the others are built.
    """
    names = EXPORTERS.from_env()
    built: list[LogRecordExporter] = []
    for name in names:
        try:
            built.extend(build_exporter(name, ev.OTEL_USAGE_EXPORTERS))
        except (ValueError, ImportError) as exc:
            if strict:
                raise
            logger.warning(
                "otel_usage: the %r usage sink cannot start, its usage logs are not recorded: %s",
                name,
                exc,
                exc_info=debug_tracebacks(),
            )
    if names and not built and any(n.strip().lower() != "none" for n in names):
        logger.warning("otel_usage: no usage sink could start; usage logs are recorded nowhere in this process")
    return built


def build_exporter(name: str, source: str = "exporters") -> list[LogRecordExporter]:
    """The usage exporter called ``name`` (``file``, ``sql``, ``otlp``, ``console``, ``none``).

    Raises:
        ValueError: unknown name (falling back would lose the logs meant for it).
    """
    key = name.strip().lower()
    if key == "none":
        return []
    if key == "console":
        from otel_usage.exporters.console import ConsoleUsageExporter

        return [ConsoleUsageExporter()]
    if key == "file":
        from otel_usage.exporters.file import FileUsageExporter  # type: ignore[import-not-found,unused-ignore]

        return [FileUsageExporter()]
    if key == "sql":
        from otel_usage.exporters.sql import SqlUsageExporter

        return [SqlUsageExporter()]
    if key == "otlp":
        from otel_usage.exporters.otlp import otlp_usage_exporter  # type: ignore[import-not-found,unused-ignore]

        return [otlp_usage_exporter()]
    raise ValueError(f"{source}: unknown usage exporter {name!r} (expected file, sql, otlp, console or none)")
