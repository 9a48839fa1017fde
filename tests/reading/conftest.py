"""Fixtures of the reading-side tests: one deterministic set of usage logs written to every kind of store
through the real exporters (a SQLite file, a database on a real PostgreSQL server, a rotated JSONL file)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._postgres import PostgresServer, running_server
from tests.exporters.conftest import iso, make_record
from tests.test_demo import run_demo

#: 2026-10-25 01:00 UTC: Europe/Paris leaves summer time in the middle of the data.
BASE = dt.datetime(2026, 10, 23, 20, 0, tzinfo=dt.timezone.utc)
ENDPOINTS = [
    ("notes.show", "/notes/<int:note_id>", "notes"),
    ("notes.index", "/notes/", "notes"),
    ("api.list", "/api/notes", "api"),
    (None, None, None),
]
BROWSERS = [("Chrome", "Windows", "en-US"), ("Firefox", "Linux", "de-DE"), ("Safari", "Mac OS X", "fr-FR")]
FUNCTIONS = ["notes_app.services.get_note", "notes_app.services.list_notes", "notes_app.render"]


def make_logs(n: int = 240, seed: int = 3) -> list[dict[str, Any]]:
    """``n`` varied usage logs over three days: users, visitors, browsers, statuses, calls, transfer."""
    rng = random.Random(seed)
    logs = []
    for i in range(n):
        endpoint, route, blueprint = rng.choice(ENDPOINTS)
        browser, system, language = rng.choice(BROWSERS)
        code = rng.choice([200] * 8 + [404, 500])
        duration = round(rng.uniform(0.001, 0.5), 6)
        calls = []
        offset = 0.0
        for depth in range(rng.randint(0, 3)):
            d = round(rng.uniform(0.0001, duration), 6)
            calls.append(
                {
                    "function": rng.choice(FUNCTIONS),
                    "tracker": "notes_app",
                    "depth": depth,
                    "level": "DEFAULT",
                    "start": offset,
                    "duration": d,
                    "params": {"i": i},
                    "exception": rng.random() < 0.1,
                }
            )
            offset += d / 10
        request = {
            "method": rng.choice(["GET", "POST"]),
            "url": f"http://127.0.0.1/notes/{i % 7}",
            "path": f"/notes/{i % 7}",
            "route": route,
            "endpoint": endpoint,
            "blueprint": blueprint,
            "status": code,
            "remote_addr": "127.0.0.1",
            "client_ip": f"203.0.113.{i % 5}",
            "username": rng.choice(["alice", "bob", "carol", None]),
            "visitor": f"{rng.randrange(12):032x}",
            "user_agent": {"browser": browser, "os": system, "language": language},
            "response_length": rng.choice([None, rng.randrange(100, 5000)]),
        }
        log: dict[str, Any] = {
            "request": request,
            "tenant": rng.choice(["acme", "globex"]),
            "data": calls,
            "trace_id": f"{i + 1:032x}",
            "span_id": f"{i + 1:016x}",
            "parent_span_id": None,
            "service": rng.choice(["notes", "api"]),
            "start": iso(BASE + dt.timedelta(seconds=rng.randrange(3 * 86400))),
            "duration": None if rng.random() < 0.03 else duration,
            "status": "error" if code == 500 or rng.random() < 0.05 else "ok",
            "schema": 1,
        }
        if rng.random() < 0.2:
            log["user"] = "service-account"
        logs.append(log)
    return logs


def write_sql(url: str, logs: list[dict[str, Any]]) -> None:
    """Store ``logs`` through the real SQL exporter."""
    from otel_usage.exporters.sql import SqlUsageExporter

    exporter = SqlUsageExporter(url)
    try:
        for i in range(0, len(logs), 50):
            assert exporter.export([make_record(log) for log in logs[i : i + 50]]).name == "SUCCESS"
    finally:
        exporter.shutdown()


def write_jsonl(path: Path, logs: list[dict[str, Any]], max_bytes: int = 0) -> None:
    """Store ``logs`` through the real file exporter (rotating at ``max_bytes``)."""
    from otel_usage.exporters.file import FileUsageExporter

    exporter = FileUsageExporter(path, max_bytes=max_bytes, backup_count=50)
    try:
        for i in range(0, len(logs), 20):
            assert exporter.export([make_record(log) for log in logs[i : i + 20]]).name == "SUCCESS"
    finally:
        exporter.shutdown()


@pytest.fixture(scope="session")
def logs() -> list[dict[str, Any]]:
    return make_logs()


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory, logs: list[dict[str, Any]]) -> str:
    """A SQLite file holding :func:`logs`."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'usage.db'}"
    write_sql(url, logs)
    return url


@pytest.fixture(scope="session")
def jsonl_store(tmp_path_factory: pytest.TempPathFactory, logs: list[dict[str, Any]]) -> str:
    """A JSON Lines file (rotated into several files) holding :func:`logs`."""
    path = tmp_path_factory.mktemp("jsonl") / "usage.jsonl"
    write_jsonl(path, logs, max_bytes=40_000)
    assert (path.parent / "usage.jsonl.1").exists() and (path.parent / "usage.jsonl.2").exists()
    return str(path)


@pytest.fixture(scope="session")
def reading_postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the reading tests."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_store(reading_postgres: PostgresServer, logs: list[dict[str, Any]]) -> str:
    """A PostgreSQL database holding :func:`logs`."""
    url = reading_postgres.create_database("reading")
    write_sql(url, logs)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "jsonl"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each kind of store, holding the same logs."""
    return str(request.getfixturevalue(f"{request.param}_store"))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real demo run (the notes app on a local server under simulated users): its output dir and stdout."""
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = run_demo(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout
