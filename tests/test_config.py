"""Every ``OTEL_USAGE_*`` variable: a valid value is used, an invalid one warns (or fails where falling back
would lose data), an empty one means the default. One case per constant, checked against the module so a
new variable needs its case here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otel_usage import environment_variables as ev
from otel_usage._config import CoreSettings
from otel_usage._levels import Level

RAISES = object()  # the invalid value is an error at start-up, not a fallback


@dataclasses.dataclass
class Case:
    variable: str
    read: Callable[[Path], Any]  # the effective setting, read now from the environment
    valid: str
    expected: Any
    invalid: str | None  # None: every string is valid
    default: Any  # what unset, empty and (unless RAISES) invalid give
    invalid_gives: Any = None  # the fallback when it differs from default, or RAISES


def core(field: str) -> Callable[[Path], Any]:
    return lambda tmp: getattr(CoreSettings.from_env(), field)


def exporters(tmp: Path) -> list[str]:
    from otel_usage._resolve import exporters_from_env

    built = exporters_from_env()
    try:
        return [type(e).__name__ for e in built]
    finally:
        for exporter in built:
            exporter.shutdown()


def delivery(attribute: str) -> Callable[[Path], Any]:
    def read(tmp: Path) -> Any:
        from otel_usage.exporters._delivery import UsageBatchProcessor
        from otel_usage.exporters.memory import InMemoryUsageExporter

        processor = UsageBatchProcessor(InMemoryUsageExporter(), name="cfg")
        try:
            value = getattr(processor, attribute)
            if attribute == "_spool":
                return None if value is None else Path(value.path).parent.parent.name  # <root>/<sink>/<name>.jsonl
            return value
        finally:
            processor.shutdown()

    return read


def spool_max_bytes(tmp: Path) -> int:
    os.environ[ev.OTEL_USAGE_SPOOL_DIR] = str(tmp / "spool")
    try:
        from otel_usage.exporters._delivery import UsageBatchProcessor
        from otel_usage.exporters.memory import InMemoryUsageExporter

        processor = UsageBatchProcessor(InMemoryUsageExporter(), name="cfg")
        try:
            assert processor._spool is not None
            return processor._spool.max_bytes
        finally:
            processor.shutdown()
    finally:
        del os.environ[ev.OTEL_USAGE_SPOOL_DIR]


def file_exporter(attribute: str) -> Callable[[Path], Any]:
    def read(tmp: Path) -> Any:
        from otel_usage.exporters.file import FileUsageExporter

        exporter = FileUsageExporter()
        try:
            value = getattr(exporter, attribute)
            if attribute == "_formatter":
                return value.__name__
            return Path(value).name if attribute == "path" else value
        finally:
            exporter.shutdown()

    return read


def sql_exporter(read_value: Callable[[Any], Any]) -> Callable[[Path], Any]:
    def read(tmp: Path) -> Any:
        from otel_usage.exporters.sql import SqlUsageExporter

        exporter = SqlUsageExporter()
        try:
            return read_value(exporter)
        finally:
            exporter.shutdown()

    return read


def flask(field: str) -> Callable[[Path], Any]:
    def read(tmp: Path) -> Any:
        from otel_usage.instrumentors.flask import resolve_settings

        return getattr(resolve_settings({}), field)

    return read


def exit_timeout(tmp: Path) -> int:
    from otel_usage._exit import exit_timeout_millis

    return exit_timeout_millis()


def debug(tmp: Path) -> bool:
    from otel_usage._exit import debug_tracebacks

    return debug_tracebacks()


def raise_errors(tmp: Path) -> bool:
    from otel_usage import _errors

    saved, _errors.RAISE = _errors.RAISE, False  # the test suite raises whatever the variable says
    try:
        return _errors.raise_internal_errors()
    finally:
        _errors.RAISE = saved


def probes(tmp: Path) -> list[str]:
    from otel_usage.instrumentors._probe_targets import targets_from_env

    return [t.text for t in targets_from_env()]


CASES = [
    Case(ev.OTEL_USAGE_LEVEL, core("level"), "info", Level.INFO, "LOUD", Level.DEFAULT),
    Case(ev.OTEL_USAGE_EXPORTERS, exporters, "console, none", ["ConsoleUsageExporter"], "file,bogus",
         ["FileUsageExporter"], RAISES),
    Case(ev.OTEL_USAGE_EXIT_TIMEOUT_MILLIS, exit_timeout, "0", 0, "-1", 5000),
    Case(ev.OTEL_USAGE_DEBUG, debug, "true", True, "verbose", False),
    Case(ev.OTEL_USAGE_RAISE_INTERNAL_ERRORS, raise_errors, "true", True, "perhaps", False),
    Case(ev.OTEL_USAGE_MAX_PENDING_LOGS, core("max_pending_logs"), "10", 10, "0", 4096),
    Case(ev.OTEL_USAGE_MAX_QUEUED_SPANS, core("max_queued_spans"), "100", 100, "0", 65536),
    Case(ev.OTEL_USAGE_MAX_RECORDS_PER_LOG, core("max_records_per_log"), "5", 5, "many", 1000),
    Case(ev.OTEL_USAGE_MAX_LOG_AGE_MILLIS, core("max_log_age_millis"), "1000", 1000, "-5", 600_000),
    Case(ev.OTEL_USAGE_GRACE_MILLIS, core("grace_millis"), "0", 0, "-1", 2000),
    Case(ev.OTEL_USAGE_SCHEDULE_DELAY_MILLIS, core("schedule_delay_millis"), "50", 50, "1.5", 200),
    Case(ev.OTEL_USAGE_BAGGAGE_ALLOW, core("baggage_allow"), "user, tenant,,", ("user", "tenant"), None, ()),
    Case(ev.OTEL_USAGE_REDACT, core("redact"), "iban,ssn", ("iban", "ssn"), None, ()),
    Case(ev.OTEL_USAGE_REDACT_DEFAULTS, core("redact_defaults"), "false", False, "maybe", True),
    Case(ev.OTEL_USAGE_PARAM_MAX_DEPTH, core("param_max_depth"), "3", 3, "0", 6),
    Case(ev.OTEL_USAGE_PARAM_MAX_LENGTH, core("param_max_length"), "100", 100, "7", 1024),
    Case(ev.OTEL_USAGE_PARAM_MAX_ITEMS, core("param_max_items"), "5", 5, "none", 100),
    Case(ev.OTEL_USAGE_PARAM_MAX_SIZE, core("param_max_size"), "100", 100, "63", 8192),
    Case(ev.OTEL_USAGE_RECORD_UNSAMPLED, core("record_unsampled"), "off", False, "2", True),
    Case(ev.OTEL_USAGE_LOG_VERBOSITY, core("log_verbosity"), "10", 10, "loud", 30),
    Case(ev.OTEL_USAGE_LOG_BRIDGE, core("log_bridge"), "yes", True, "perhaps", False),
    Case(ev.OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE, delivery("_max_queue_size"), "100", 100, "0", 65536),
    Case(ev.OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES, delivery("_max_queue_bytes"), "1000", 1000, "0", 16 << 20),
    Case(ev.OTEL_USAGE_EXPORT_BATCH_SIZE, delivery("_batch_size"), "10", 10, "-1", 512),
    Case(ev.OTEL_USAGE_EXPORT_DELAY_MILLIS, delivery("_delay"), "250", 0.25, "soon", 1.0),
    Case(ev.OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS, delivery("_max_retry"), "0", 0.0, "-1", 30.0),
    Case(ev.OTEL_USAGE_SPOOL_DIR, delivery("_spool"), "{tmp}/spool", "spool", "{tmp}/afile/spool", "spool", RAISES),
    Case(ev.OTEL_USAGE_SPOOL_MAX_BYTES, spool_max_bytes, "4096", 4096, "0", 256 * 1024 * 1024),
    Case(ev.OTEL_USAGE_DURABILITY, delivery("_durable"), "disk", True, "sometimes", False),
    Case(ev.OTEL_USAGE_FILE_PATH, file_exporter("path"), "{tmp}/logs/u.jsonl", "u.jsonl", "{tmp}/afile/u.jsonl",
         "usage.jsonl", RAISES),
    Case(ev.OTEL_USAGE_FILE_MAX_BYTES, file_exporter("_max_bytes"), "1000", 1000, "-1", 0),
    Case(ev.OTEL_USAGE_FILE_BACKUP_COUNT, file_exporter("_backup_count"), "2", 2, "x", 5),
    Case(ev.OTEL_USAGE_FILE_FSYNC, file_exporter("_fsync"), "batch", True, "sometimes", False),
    Case(ev.OTEL_USAGE_FILE_FORMAT, file_exporter("_formatter"), "LogDefer", "format_logdefer", "xml", "json_line"),
    Case(ev.OTEL_USAGE_SQL_URL, sql_exporter(lambda e: e._url.database), "sqlite:///{tmp}/u.db", "{tmp}/u.db",
         "::not a url::", "usage.db", RAISES),
    Case(ev.OTEL_USAGE_SQL_TABLE_PREFIX, sql_exporter(lambda e: e._tables.prefix), "app_", "app_", "bad-prefix!",
         "usage_", RAISES),
    Case(ev.OTEL_USAGE_SQL_COLUMNS, sql_exporter(lambda e: dict(e._tables.columns)), "user=user_name,tenant",
         {"user": "user_name", "tenant": "tenant"}, "user=bad name", {}, RAISES),
    Case(ev.OTEL_USAGE_SQL_BUSY_TIMEOUT_MILLIS, sql_exporter(lambda e: e._busy_timeout_millis), "50", 50, "-3", 10000),
    Case(ev.OTEL_USAGE_PROBES, probes, "a:f, b:*", ["a:f", "b:*"], "a:f, nonsense", [], ["a:f"]),
    Case(ev.OTEL_USAGE_PROBES_FILE, probes, "{tmp}/probes.toml", ["from:file"], "{tmp}/missing.toml", []),
    Case(ev.OTEL_USAGE_FLASK_MODE, flask("mode"), "include", "include", "sideways", "exclude"),
    Case(ev.OTEL_USAGE_FLASK_TRUSTED_PROXIES, flask("trusted_proxies"), "2", 2, "-1", 0),
    Case(ev.OTEL_USAGE_FLASK_VISITOR_COOKIE, flask("visitor_cookie"), "true", True, "perhaps", False),
    Case(ev.OTEL_USAGE_FLASK_TRACK_STATIC, flask("track_static"), "1", True, "sometimes", False),
    Case(ev.OTEL_USAGE_FLASK_GEOIP_DATABASE, flask("geoip_database"), "{tmp}/geo.mmdb", "{tmp}/geo.mmdb", None, None),
]  # fmt: skip

BY_NAME = {case.variable: case for case in CASES}


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean OTEL_USAGE_* environment, cwd in a temporary directory (defaults write there)."""
    for name in list(os.environ):
        if name.startswith("OTEL_USAGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file where a directory is needed")
    (tmp_path / "probes.toml").write_text('probes = ["from:file"]\n')

    def set_var(name: str, value: str) -> None:
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp_path)))

    return set_var


def expand(value: Any, tmp: Path) -> Any:
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


def test_every_variable_has_a_case():
    """Each OTEL_USAGE_* constant (whoever adds it) has its valid / invalid / empty case here."""
    constants = sorted(name for name in vars(ev) if name.startswith("OTEL_USAGE_"))
    assert sorted(BY_NAME) == constants


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.variable)
def test_valid_value_is_used(case, env, tmp_path, caplog):
    """A valid value is the setting, without a warning."""
    env(case.variable, case.valid)
    assert case.read(tmp_path) == expand(case.expected, tmp_path)
    assert case.variable not in caplog.text


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.variable)
@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_value_means_the_default(case, env, tmp_path, caplog, raw):
    """An empty (or blank) variable is the same as an unset one: the default, no warning."""
    env(case.variable, raw)
    assert case.read(tmp_path) == expand(case.default, tmp_path)
    assert case.variable not in caplog.text


#: Variables whose invalid value is rejected without naming the variable yet (owner's module to fix).
UNNAMED_IN_ERROR: dict[str, str] = {}


def _invalid_cases() -> list[Any]:
    return [
        pytest.param(c, id=c.variable, marks=[pytest.mark.xfail(reason=UNNAMED_IN_ERROR[c.variable], strict=False)])
        if c.variable in UNNAMED_IN_ERROR
        else pytest.param(c, id=c.variable)
        for c in CASES
        if c.invalid is not None
    ]


@pytest.mark.parametrize("case", _invalid_cases())
def test_invalid_value_warns_or_fails(case, env, tmp_path, caplog):
    """An invalid value warns naming the variable and uses the fallback, or fails where that would lose data."""
    env(case.variable, case.invalid)
    if case.invalid_gives is RAISES:
        with pytest.raises(ValueError) as info:
            case.read(tmp_path)
        assert case.variable in str(info.value) or case.variable in caplog.text
        return
    with caplog.at_level(logging.WARNING):
        value = case.read(tmp_path)
    fallback = case.default if case.invalid_gives is None else case.invalid_gives
    assert value == expand(fallback, tmp_path)
    assert case.variable in caplog.text


def test_explicit_arguments_win_over_the_environment(env):
    """configure()-style explicit settings win over OTEL_USAGE_* and are validated strictly."""
    env(ev.OTEL_USAGE_LEVEL, "DEBUG")
    env(ev.OTEL_USAGE_MAX_PENDING_LOGS, "5")
    settings = CoreSettings.from_env(level="NONE", max_pending_logs=7)
    assert (settings.level, settings.max_pending_logs) == (Level.NONE, 7)
    with pytest.raises(ValueError, match="max_pending_logs"):
        CoreSettings.from_env(max_pending_logs=0)


def test_variables_are_read_when_used_not_at_import(env):
    """Changing a variable after import changes the next settings built."""
    assert CoreSettings.from_env().level is Level.DEFAULT
    env(ev.OTEL_USAGE_LEVEL, "INFO")
    assert CoreSettings.from_env().level is Level.INFO


# --- OTEL_TRACES_SAMPLER=usage_level and its argument --------------------------------------------------


@pytest.fixture
def threshold():
    from otel_usage import get_level, set_level

    saved = get_level()
    set_level("DEFAULT")
    yield get_level
    set_level(saved)


@pytest.mark.parametrize(
    ("arg", "level_env", "threshold_after", "level_env_after", "warns"),
    [
        ("INFO", None, "INFO", "INFO", False),  # the argument becomes the threshold, for later readers too
        (" debug ", None, "DEBUG", "DEBUG", False),
        (None, None, "DEFAULT", None, False),  # unset: the process threshold as it is
        ("", None, "DEFAULT", None, False),
        ("LOUD", None, "DEFAULT", None, True),  # invalid: a warning, the threshold untouched
        ("INFO", "DEBUG", "DEFAULT", "DEBUG", True),  # OTEL_USAGE_LEVEL set: it wins
        ("INFO", "info", "DEFAULT", "info", False),  # same level: nothing to say
    ],
)
def test_usage_level_sampler_argument(
    monkeypatch, caplog, threshold, arg, level_env, threshold_after, level_env_after, warns
):
    """OTEL_TRACES_SAMPLER_ARG of the usage_level sampler: valid, empty, invalid, and against OTEL_USAGE_LEVEL."""
    from otel_usage._sampling import LevelSampler, usage_level_sampler

    monkeypatch.delenv(ev.OTEL_USAGE_LEVEL, raising=False)
    if level_env is not None:
        monkeypatch.setenv(ev.OTEL_USAGE_LEVEL, level_env)
    else:
        monkeypatch.setenv(ev.OTEL_USAGE_LEVEL, "")  # restored (removed) at teardown
        monkeypatch.delenv(ev.OTEL_USAGE_LEVEL)
    sampler = usage_level_sampler(arg)
    assert isinstance(sampler, LevelSampler)
    assert "threshold=current" in sampler.get_description()
    assert threshold().name == threshold_after
    assert os.environ.get(ev.OTEL_USAGE_LEVEL) == level_env_after
    assert ("OTEL_TRACES_SAMPLER_ARG" in caplog.text) is warns


def test_usage_level_sampler_honours_record_unsampled(monkeypatch):
    """OTEL_USAGE_RECORD_UNSAMPLED=false reaches the sampler built from OTEL_TRACES_SAMPLER=usage_level."""
    from opentelemetry.sdk.trace.sampling import Decision
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from otel_usage._sampling import usage_level_sampler

    parent = set_span_in_context(NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0))))
    monkeypatch.setenv(ev.OTEL_USAGE_RECORD_UNSAMPLED, "false")
    assert usage_level_sampler(None).should_sample(parent, 1, "s").decision is Decision.DROP
    monkeypatch.setenv(ev.OTEL_USAGE_RECORD_UNSAMPLED, "true")
    assert usage_level_sampler(None).should_sample(parent, 1, "s").decision is Decision.RECORD_ONLY


SAMPLER_THEN_CONFIGURE = """
import otel_usage
otel_usage.configure(exporters=[]{arg})
print(otel_usage.get_level().name, type(otel_usage.get_pipeline().tracer_provider.sampler).__name__)
"""


@pytest.mark.parametrize(("arg", "expected"), [("", "INFO"), (", level='DEBUG'", "DEBUG")])
def test_configure_with_the_usage_level_sampler(arg, expected):
    """configure() under OTEL_TRACES_SAMPLER=usage_level: the argument is the threshold; level= still wins."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST"))}
    env.update({"OTEL_TRACES_SAMPLER": "usage_level", "OTEL_TRACES_SAMPLER_ARG": "info"})
    proc = subprocess.run(
        [sys.executable, "-c", SAMPLER_THEN_CONFIGURE.format(arg=arg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [expected, "LevelSampler"]
    assert "OTEL_TRACES_SAMPLER_ARG" not in proc.stderr
