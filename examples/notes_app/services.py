"""What the notes app does, as probed service functions: each call becomes a record of the request's log."""

from __future__ import annotations

import hashlib
import html
import re
import time
from typing import Any

from otel_usage import DEFAULT, INFO, add_data, get_tracker

from .db import Database

tr = get_tracker("notes_app.services")


class NotFound(LookupError):
    """No such note."""


class Forbidden(PermissionError):
    """The user may not do that."""


def hash_password(password: str) -> str:
    return hashlib.sha256(("notes-demo:" + password).encode()).hexdigest()


@tr.probe(level=INFO, exc=["password"])
def check_password(db: Database, name: str, password: str) -> dict[str, Any] | None:
    rows = db.query("SELECT name, password, role FROM users WHERE name = ?", (name,))
    if rows and rows[0]["password"] == hash_password(password):
        return {"name": rows[0]["name"], "role": rows[0]["role"]}
    return None


@tr.probe(level=INFO, exc=["token"])
def user_for_token(db: Database, token: str) -> dict[str, Any] | None:
    rows = db.query("SELECT name, role FROM users WHERE token = ?", (token,))
    return rows[0] if rows else None


@tr.probe(level=DEFAULT, exc=["db"])
def list_notes(db: Database, tag: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    if tag:
        rows = db.query(
            "SELECT id, author, title, tags FROM notes WHERE ',' || tags || ',' LIKE ? ORDER BY updated DESC LIMIT ?",
            (f"%,{tag},%", limit),
        )
    else:
        rows = db.query("SELECT id, author, title, tags FROM notes ORDER BY updated DESC LIMIT ?", (limit,))
    add_data("found", len(rows))
    return rows


@tr.probe(level=DEFAULT, exc=["db"])
def get_note(db: Database, note_id: int) -> dict[str, Any]:
    rows = db.query("SELECT * FROM notes WHERE id = ?", (note_id,))
    if not rows:
        raise NotFound(f"note {note_id}")
    note = rows[0]
    note["comments"] = db.query("SELECT author, body FROM comments WHERE note_id = ? ORDER BY id", (note_id,))
    return note


@tr.probe(level=INFO, exc=["body"])
def render(body: str) -> str:
    """A tiny wiki markup: ``**bold**``, ``[[links]]``, paragraphs."""
    text = html.escape(body)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"\[\[(.+?)\]\]", r'<a href="/notes/search?q=\1">\1</a>', text)
    return "".join(f"<p>{part}</p>" for part in text.split("\n\n"))


@tr.probe(level=DEFAULT, exc=["db"])
def create_note(db: Database, author: str, title: str, body: str, tags: list[str]) -> int:
    if not title.strip():
        raise ValueError("a note needs a title")
    note_id = db.execute(
        "INSERT INTO notes (author, title, body, tags, updated) VALUES (?, ?, ?, ?, ?)",
        (author, title, body, ",".join(tags), time.time()),
    )
    db.execute("INSERT INTO revisions (note_id, version, editor, body) VALUES (?, 1, ?, ?)", (note_id, author, body))
    return note_id


@tr.probe(level=DEFAULT, exc=["db"])
def update_note(db: Database, editor: str, note_id: int, body: str) -> int:
    note = get_note(db, note_id)
    version = note["version"] + 1
    db.execute(
        "UPDATE notes SET body = ?, version = ?, updated = ? WHERE id = ?", (body, version, time.time(), note_id)
    )
    db.execute(
        "INSERT INTO revisions (note_id, version, editor, body) VALUES (?, ?, ?, ?)", (note_id, version, editor, body)
    )
    add_data("version", version)
    return version


@tr.probe(level=DEFAULT, exc=["db"])
def delete_note(db: Database, user: dict[str, Any], note_id: int) -> None:
    note = get_note(db, note_id)
    if note["author"] != user["name"] and user["role"] != "admin":
        raise Forbidden(f"{user['name']} may not delete note {note_id}")
    db.execute("DELETE FROM comments WHERE note_id = ?", (note_id,))
    db.execute("DELETE FROM revisions WHERE note_id = ?", (note_id,))
    db.execute("DELETE FROM notes WHERE id = ?", (note_id,))


@tr.probe(level=DEFAULT, exc=["db"])
def add_comment(db: Database, author: str, note_id: int, body: str) -> int:
    get_note(db, note_id)
    return db.execute("INSERT INTO comments (note_id, author, body) VALUES (?, ?, ?)", (note_id, author, body))


@tr.probe(level=DEFAULT, exc=["db"])
def search(db: Database, query: str, limit: int = 20) -> list[dict[str, Any]]:
    words = [w for w in re.split(r"\W+", query.lower()) if w][:5]
    if not words:
        return []
    clause = " AND ".join("(lower(title) LIKE ? OR lower(body) LIKE ?)" for _ in words)
    params: list[Any] = [p for w in words for p in (f"%{w}%", f"%{w}%")]
    sql = f"SELECT id, author, title FROM notes WHERE {clause} ORDER BY updated DESC LIMIT ?"  # placeholders only
    rows = db.query(sql, [*params, limit])
    add_data("hits", len(rows))
    return rows


@tr.probe(level=DEFAULT, exc=["db"])
def history(db: Database, note_id: int) -> list[dict[str, Any]]:
    get_note(db, note_id)
    return db.query("SELECT version, editor FROM revisions WHERE note_id = ? ORDER BY version", (note_id,))


@tr.probe(level=DEFAULT, exc=["db"])
def export_workspace(db: Database, user: dict[str, Any]) -> dict[str, Any]:
    """Admin only: everything, as one document (the slow call of the app)."""
    if user["role"] != "admin":
        raise Forbidden("export is for admins")
    notes = db.query("SELECT * FROM notes ORDER BY id")
    for note in notes:
        note["html"] = render(note["body"])
        note["revisions"] = len(db.query("SELECT version FROM revisions WHERE note_id = ?", (note["id"],)))
    add_data("notes", len(notes))
    return {"notes": notes}
