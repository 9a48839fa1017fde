"""Shared fixtures: internal errors re-raise under the test suite so bugs are not hidden."""

from __future__ import annotations

from otel_usage import _errors

_errors.RAISE = True
