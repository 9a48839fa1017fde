"""Hostile info keys, promoted column names and table prefixes against the SQL exporter, on a real SQLite file
and a real PostgreSQL server.

Info keys may be any string (quotes, semicolons, spaces, unicode): they are only ever JSON keys and bound
values, so they must round-trip and the tables must survive. Column names and table prefixes become SQL
identifiers: a name that cannot be one is a one-line configuration error naming the setting and the rule.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor

from otel_usage import add_info, traced_usage
from otel_usage import environment_variables as ev
from otel_usage._schema import RESERVED_KEYS
from otel_usage.exporters.sql import SqlUsageExporter
from otel_usage.testing import capture_usage
from tests.exporters.conftest import make_log, make_record

SUCCESS = LogRecordExportResult.SUCCESS
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
RULE = "expected an SQL identifier of at most 63 characters (letters, digits and '_', not starting with a digit)"

EVIL_KEYS = [
    "it's",
    'say "hi"',
    "a; DROP TABLE usage_logs; --",
    "x'); DELETE FROM usage_calls; --",
    "with space",
    "tab\tand\nnewline",
    "名前",
    "émoji 😀",
    "back\\slash",
    "$1",
    "?",
    ":name",
    "%s",
    "a.b",
    "--",
    "/* c */",
    "\u2028",
]
EVIL_VALUES = [
    "x'; DROP TABLE usage_logs; --",
    "'; DELETE FROM usage_calls WHERE ''='",
    '"); DROP TABLE usage_schema; --',
    "1 OR 1=1",
    "%s %s",
    ":param",
    "?",
    "名前 😀",
    "\\x00",
]
#: Valid column names that are reserved words in SQL (quoted by SQLAlchemy where needed).
KEYWORD_COLUMNS = ["select", "order", "group", "table", "user_", "limit", "where", "from", "Desc_", "desc"]

_numbers = itertools.count(1000)


@pytest.fixture
def exporter_factory() -> Iterator[Callable[..., SqlUsageExporter]]:
    """Build exporters and shut them all down after the test."""
    made: list[SqlUsageExporter] = []

    def make(*args: Any, **kwargs: Any) -> SqlUsageExporter:
        made.append(SqlUsageExporter(*args, **kwargs))
        return made[-1]

    yield make
    for exporter in made:
        exporter.shutdown()


def _table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    finally:
        engine.dispose()


def test_hostile_info_keys_and_values_round_trip(db_url: str, exporter_factory: Any) -> None:
    """Info keys and values full of quotes, semicolons, SQL and unicode, some promoted to columns named
    with SQL keywords, are stored verbatim, read back equal, filter exactly, and every table survives."""
    columns = dict(zip(EVIL_KEYS, [f"c_{i}" for i in range(len(EVIL_KEYS))], strict=True))
    columns.update({f"kw{i}": name for i, name in enumerate(KEYWORD_COLUMNS)})
    exporter = exporter_factory(db_url, columns=columns)
    info = {key: EVIL_VALUES[i % len(EVIL_VALUES)] for i, key in enumerate(EVIL_KEYS)}
    info.update({f"kw{i}": f"{name} * FROM usage_logs" for i, name in enumerate(KEYWORD_COLUMNS)})
    log = make_log(1, **info)
    log["data"][0]["params"] = {key: value for key, value in zip(EVIL_KEYS, itertools.cycle(EVIL_VALUES))}
    assert exporter.export([make_record(log), make_record(make_log(2))]) == SUCCESS
    tables = _table_names(db_url)
    assert {"usage_logs", "usage_calls", "usage_schema"} <= tables
    assert _count(db_url, "usage_logs") == 2 and _count(db_url, "usage_calls") == 4
    (stored,) = exporter.get_usage(trace_id=log["trace_id"])
    assert {key: stored[key] for key in info} == info
    assert stored["data"][0]["params"] == log["data"][0]["params"]
    for key, value in info.items():  # by info key and by column name: exact, never a pattern
        assert [found["trace_id"] for found in exporter.get_usage(**{key: value})] == [log["trace_id"]]
        assert exporter.get_usage(**{key: value + "' OR '1'='1"}) == []
    for key in EVIL_KEYS:  # (a column named like a get_usage parameter, "limit", is filtered by its info key)
        assert [found["trace_id"] for found in exporter.get_usage(**{columns[key]: info[key]})] == [log["trace_id"]]


def test_hostile_info_keys_through_the_pipeline(tmp_path: Any) -> None:
    """add_info with hostile keys, through probes and the real pipeline, lands in SQLite and reads back."""

    @traced_usage
    def checkout() -> None:
        for key, value in zip(EVIL_KEYS, itertools.cycle(EVIL_VALUES)):
            add_info(key, value)

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    with capture_usage() as usage:
        exporter = SqlUsageExporter(url, columns={EVIL_KEYS[2]: "evil"})
        usage.pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))
        checkout()
    reader = SqlUsageExporter(url, columns={EVIL_KEYS[2]: "evil"})
    try:
        (stored,) = reader.get_usage(evil=EVIL_VALUES[2])
    finally:
        reader.shutdown()
    assert {key: stored[key] for key in EVIL_KEYS} == dict(zip(EVIL_KEYS, itertools.cycle(EVIL_VALUES)))


@pytest.mark.parametrize(
    ("kwargs", "env", "setting", "bad"),
    [
        ({"columns": {"user": "user name"}}, {}, "in columns", "user name"),
        ({"columns": {"user": "x; DROP TABLE usage_logs"}}, {}, "in columns", "x; DROP TABLE usage_logs"),
        ({"columns": {"user": 'a"b'}}, {}, "in columns", 'a"b'),
        ({"columns": {"user": "a'b"}}, {}, "in columns", "a'b"),
        ({"columns": {"user": "名前"}}, {}, "in columns", "名前"),
        ({"columns": {"user": "\u017felect"}}, {}, "in columns", "\u017felect"),  # long s: upper() is S
        ({"columns": {"user": "\uff21\uff22"}}, {}, "in columns", "\uff21\uff22"),  # full-width AB
        ({"columns": {"user": "a\nb"}}, {}, "in columns", "a\nb"),
        ({"columns": {"user": "a\x00"}}, {}, "in columns", "a\x00"),
        ({"columns": {"user": "9lives"}}, {}, "in columns", "9lives"),
        ({"columns": {"user": "\u0663"}}, {}, "in columns", "\u0663"),  # an Arabic-Indic digit
        ({}, {ev.OTEL_USAGE_SQL_COLUMNS: "user=user-name"}, "in OTEL_USAGE_SQL_COLUMNS", "user-name"),
        ({"table_prefix": "usage logs_"}, {}, "(table_prefix)", "usage logs_"),
        ({"table_prefix": "u;drop_"}, {}, "(table_prefix)", "u;drop_"),
        ({"table_prefix": "préfixe_"}, {}, "(table_prefix)", "préfixe_"),
        ({"table_prefix": '"'}, {}, "(table_prefix)", '"'),
        ({}, {ev.OTEL_USAGE_SQL_TABLE_PREFIX: "app-"}, "(OTEL_USAGE_SQL_TABLE_PREFIX)", "app-"),
    ],
)  # fmt: skip
def test_names_that_cannot_be_identifiers_are_one_line_errors(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], env: dict[str, str], setting: str, bad: str
) -> None:
    """The error is one line: what (column or prefix, with the offending value), which setting, what is allowed."""
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as caught:
        SqlUsageExporter(f"sqlite:///{tmp_path / 'x.db'}", **kwargs)
    message = str(caught.value)
    assert "\n" not in message and setting in message and repr(bad) in message and message.endswith(RULE), message
    assert not (tmp_path / "x.db").exists()  # refused before anything was created


@pytest.mark.parametrize("prefix", ["sqlite_", "SQLite_app_", "sqlite_x"])
def test_sqlite_reserved_prefix_is_refused_at_construction(tmp_path: Any, prefix: str) -> None:
    """A prefix SQLite cannot create tables with (``sqlite_...``) is refused at construction; it was accepted
    and then failed every export, so no usage log was ever stored."""
    with pytest.raises(ValueError) as caught:
        SqlUsageExporter(f"sqlite:///{tmp_path / 'x.db'}", table_prefix=prefix)
    message = str(caught.value)
    assert "\n" not in message and "(table_prefix)" in message
    assert "reserves table names starting with 'sqlite_'" in message


@pytest.mark.parametrize("prefix", ["", "_", "select_", "Usage_", "a" * 40 + "_"])
def test_unusual_but_valid_prefixes_work(db_url: str, exporter_factory: Any, prefix: str) -> None:
    """Empty, keyword and mixed-case prefixes are identifiers: the tables are created and logs round-trip."""
    exporter = exporter_factory(db_url, table_prefix=prefix, columns={"user": "order"})
    assert exporter.export([make_record(make_log(1, user="o'brien"))]) == SUCCESS
    assert [log["user"] for log in exporter.get_usage(user="o'brien")] == ["o'brien"]
    assert {f"{prefix}logs", f"{prefix}calls", f"{prefix}schema"} <= _table_names(db_url)


# --- properties -------------------------------------------------------------------------------------------

names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,62}", fullmatch=True),
    st.text(min_size=1, max_size=70),
    st.sampled_from(["a" * 63, "a" * 64, "_", "9a", "a-b", "a b", "é", "A1_", "sqlite_"]),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None, phases=(Phase.generate,))
@given(column=names, prefix=names | st.just(""))
def test_a_name_is_accepted_exactly_when_it_is_an_identifier(tmp_path_factory: Any, column: str, prefix: str) -> None:
    """Column names and prefixes are accepted exactly when they are (with the table and index names made from
    them) SQL identifiers, never clash with the built-in columns and stay clear of SQLite's reserved names;
    otherwise a one-line ValueError."""
    builtin = {"id", "trace_id", "span_id", "parent_span_id", "service", "start", "duration", "status",
               "schema_version", "info", "data", "extra"}  # fmt: skip
    made = [f"{prefix}logs", f"{prefix}calls", f"{prefix}schema", f"ix_{prefix}logs_{column}",
            f"ix_{prefix}logs_service_start", f"ix_{prefix}calls_function", f"ix_{prefix}calls_tracker"]  # fmt: skip
    valid = (
        IDENTIFIER.match(column) is not None
        and column.lower() not in builtin
        and (prefix == "" or IDENTIFIER.match(prefix) is not None)
        and all(IDENTIFIER.match(name) for name in made)
        and not prefix.lower().startswith("sqlite_")
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'x.db'}"
    try:
        exporter = SqlUsageExporter(url, columns={"user": column}, table_prefix=prefix)
    except ValueError as exc:
        assert not valid and "\n" not in str(exc), (column, prefix, exc)
        return
    assert valid, (column, prefix)
    try:
        assert exporter.export([make_record(make_log(1, user="u"))]) == SUCCESS
        assert [log["user"] for log in exporter.get_usage(user="u")] == ["u"]
    finally:
        exporter.shutdown()


info_keys = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=30)
info_values = st.recursive(
    # floats of 1e16 and more are left out: PostgreSQL's JSONB reads 3.7e+16 back as the int 37...450
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(-1e15, 1e15)
    | st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=50),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(info_keys, children, max_size=3),
    max_leaves=8,
)  # fmt: skip


def test_any_info_round_trips(db_url: str, exporter_factory: Any) -> None:
    """Any info keys and JSON values (no NUL: PostgreSQL refuses it in text, a log with one is counted as
    rejected) are stored and read back equal; the first key's value, promoted, filters exactly."""
    exporter = exporter_factory(db_url, columns={"promoted": "promoted"})

    @settings(max_examples=100, deadline=None, derandomize=True, database=None, phases=(Phase.generate,))
    @given(info=st.dictionaries(info_keys.filter(lambda key: key not in {*RESERVED_KEYS, "promoted"}), info_values))
    def round_trip(info: dict[str, Any]) -> None:
        first = next(iter(info), None)
        promoted = info[first] if first is not None else None
        log = make_log(next(_numbers))  # the info as a dict: a key may be any string, "i" too
        log.update(info)
        log["promoted"] = promoted
        assert exporter.export([make_record(log)]) == SUCCESS
        (stored,) = exporter.get_usage(trace_id=log["trace_id"])
        assert {key: stored[key] for key in info} == info
        if promoted is not None and not isinstance(promoted, list):  # a list filter means "any of its items"
            found = exporter.get_usage(promoted=promoted, limit=1000)
            assert log["trace_id"] in [other["trace_id"] for other in found]

    round_trip()
