"""A small collaborative notes wiki: users, blueprints, probed service functions, a SQLite data layer.

It is the app ``otel-usage demo`` runs and drives; run it on its own with ``python examples/notes_app``.
The usage tracking is one line (:func:`create_app`); everything else is an ordinary Flask app whose
service functions carry probes.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, g

from otel_usage.instrumentors.flask import UsageTracking

from . import services, views
from .db import Database

#: The demo's users: name -> (password, API token, role).
USERS: dict[str, tuple[str, str, str]] = {
    "alice": ("wonderland", "tok-alice", "admin"),
    "bob": ("builder", "tok-bob", "member"),
    "carol": ("singer", "tok-carol", "member"),
    "dave": ("diver", "tok-dave", "member"),
    "erin": ("explorer", "tok-erin", "member"),
    "frank": ("farmer", "tok-frank", "member"),
}

SEED_NOTES = [
    ("alice", "Welcome", "Start here. See [[Onboarding]] and the **team rules**.", ["intro"]),
    ("bob", "Onboarding", "Laptop, accounts, and the **first week**.", ["intro", "hr"]),
    ("carol", "Release checklist", "Tag, build, publish. Ask [[Welcome]] for help.", ["ops"]),
    ("dave", "Diving log", "Blue hole, 30 m.\n\nNext: the reef.", ["personal"]),
]

STATIC = os.path.join(os.path.dirname(__file__), "static")


def create_app(db_path: str, *, tracking: dict[str, Any] | None = None, track: bool = True) -> Flask:
    """The notes app on the SQLite file ``db_path``, with usage tracking (``tracking``: its options) unless
    ``track`` is false (the probes stay: they are plain OpenTelemetry spans then)."""
    app = Flask(__name__, static_folder=STATIC)
    app.secret_key = os.environ.get("NOTES_SECRET_KEY", "notes-demo-secret")
    database = Database(db_path)
    app.extensions["notes_db"] = database
    database.seed(
        [(name, services.hash_password(password), token, role) for name, (password, token, role) in USERS.items()],
        [(author, title, body, ",".join(tags)) for author, title, body, tags in SEED_NOTES],
    )
    database.close()

    @app.teardown_appcontext
    def close_connection(exc: BaseException | None) -> None:
        database.close()  # this thread's connection (the server may end the thread with the request)

    @app.route("/health")
    def health() -> str:
        database.query("SELECT 1")
        return "ok"

    if track:
        usage = UsageTracking(app, user_getter=current_user_name, visitor_cookie=True, **(tracking or {}))
        usage.exclude(health)  # probes and load balancers poll it: not user activity

    @app.route("/")
    def home() -> Any:
        return views.redirect(views.url_for("notes.index"))

    app.register_blueprint(views.auth)
    app.register_blueprint(views.notes)
    app.register_blueprint(views.api)
    app.register_blueprint(views.admin)
    return app


def current_user_name() -> str | None:
    """The signed-in user (session or API token), for the usage logs' ``request.username``."""
    user = g.get("user")
    return None if user is None else str(user["name"])
