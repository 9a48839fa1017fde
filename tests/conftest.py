"""Shared fixtures: internal errors re-raise under the test suite so bugs are not hidden; spools stay in tmp."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_usage import _errors, _settings
from otel_usage import environment_variables as ev

_errors.RAISE = True


@pytest.fixture(autouse=True)
def _fresh_configuration_warnings() -> Iterator[None]:
    """A bad variable is reported once per process: each test starts as a new process would."""
    _settings.WARNED.clear()
    yield


@pytest.fixture(autouse=True)
def _spool_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The spool is in a fresh temporary directory, never the user's real data directory: through
    OTEL_USAGE_SPOOL_DIR, and through XDG_DATA_HOME for tests that clear the OTEL_USAGE_* variables."""
    spool = tmp_path_factory.mktemp("spool")
    monkeypatch.setenv(ev.OTEL_USAGE_SPOOL_DIR, str(spool))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    yield spool
