"""``python -m otel_usage``: the ``otel-usage`` command."""

from otel_usage.cli import main

raise SystemExit(main())
