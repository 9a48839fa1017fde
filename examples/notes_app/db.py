"""The notes app's data layer: SQLite through the standard library, one connection per thread.

Queries are probes at DEBUG level: below the default threshold they cost almost nothing and are not
recorded; ``OTEL_USAGE_LEVEL=DEBUG`` shows every query in the usage logs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import Any

from otel_usage import DEBUG, get_tracker

tr = get_tracker(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL DEFAULT 'member'
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author TEXT NOT NULL REFERENCES users(name),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 1,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    note_id INTEGER NOT NULL REFERENCES notes(id),
    version INTEGER NOT NULL,
    editor TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (note_id, version)
);
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    note_id INTEGER NOT NULL REFERENCES notes(id),
    author TEXT NOT NULL,
    body TEXT NOT NULL
);
"""


class Database:
    """A SQLite file shared by the request threads (WAL journal, a busy timeout, a connection per thread)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @tr.probe(level=DEBUG, exc=["params"])
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT, as dicts."""
        return [dict(row) for row in self._conn().execute(sql, tuple(params)).fetchall()]

    @tr.probe(level=DEBUG, exc=["params"])
    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a write in its own transaction; the new row id (or the rows changed)."""
        conn = self._conn()
        with conn:
            cursor = conn.execute(sql, tuple(params))
        return cursor.lastrowid or cursor.rowcount

    def seed(self, users: Iterable[tuple[str, str, str, str]], notes: Iterable[tuple[str, str, str, str]]) -> None:
        """Start-up data (users, and notes when there are none), written directly: not a user action."""
        conn = self._conn()
        with conn:
            conn.executemany("INSERT OR IGNORE INTO users (name, password, token, role) VALUES (?, ?, ?, ?)", users)
            if conn.execute("SELECT id FROM notes LIMIT 1").fetchone() is None:
                for author, title, body, tags in notes:
                    note_id = conn.execute(
                        "INSERT INTO notes (author, title, body, tags, updated) VALUES (?, ?, ?, ?, ?)",
                        (author, title, body, tags, time.time()),
                    ).lastrowid
                    conn.execute(
                        "INSERT INTO revisions (note_id, version, editor, body) VALUES (?, 1, ?, ?)",
                        (note_id, author, body),
                    )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
