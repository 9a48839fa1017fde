"""Shared fixtures: internal errors re-raise under the test suite so bugs are not hidden."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_usage import _config, _errors

_errors.RAISE = True


@pytest.fixture(autouse=True)
def _fresh_configuration_warnings() -> Iterator[None]:
    """A bad variable is reported once per process: each test starts as a new process would."""
    _config._warned.clear()
    yield
