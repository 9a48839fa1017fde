"""The ``otel_usage`` distro: OpenTelemetry defaults for tracking usage, set before anything is built.

Loaded by ``opentelemetry-instrument`` from the ``opentelemetry_distro`` entry point ``otel_usage``
(``OTEL_PYTHON_DISTRO=otel_usage`` selects it when several distros are installed). Each default is
``os.environ.setdefault``: whatever the user set wins.

========================== ============== ==========================================================
variable                   default        why
========================== ============== ==========================================================
OTEL_PYTHON_CONFIGURATOR   ``otel_usage`` the configurator that adds the usage pipeline wins over any
                                          other installed one, whatever the entry-point order
OTEL_USAGE_EXPORTERS       ``file``       usage logs go to ``usage.jsonl`` (``OTEL_USAGE_FILE_PATH``)
OTEL_TRACES_EXPORTER       ``none``       no trace export unless asked (``otlp``, ``console`` ...)
OTEL_METRICS_EXPORTER      ``none``       no metrics export unless asked
OTEL_LOGS_EXPORTER         ``none``       the stock logs pipeline stays off: usage logs are delivered by
                                          the usage exporters (``OTEL_USAGE_EXPORTERS=otlp`` sends them
                                          to an OTLP backend); setting ``otlp`` here ships every log
                                          record, usage logs included, through the stock pipeline
========================== ============== ==========================================================
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined,unused-ignore]

from otel_usage import environment_variables as ev

__all__ = ["DEFAULTS", "UsageDistro"]

#: The defaults the distro sets (only where the variable is unset).
DEFAULTS = {
    "OTEL_PYTHON_CONFIGURATOR": "otel_usage",
    ev.OTEL_USAGE_EXPORTERS: "file",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}

_ran = [False]


def ran() -> bool:
    """Whether this distro configured the process (the configurator warns when another one did)."""
    return _ran[0]


class UsageDistro(BaseDistro):  # type: ignore[misc,unused-ignore]
    """Sets the defaults above; the ``otel_usage`` configurator and instrumentors do the rest."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)
        _ran[0] = True
