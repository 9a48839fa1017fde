"""The notes app's blueprints: sign-in, the wiki pages, a JSON API with Bearer tokens, and admin pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template_string, request, session, url_for

from otel_usage import add_info

from . import services

auth = Blueprint("auth", __name__)
notes = Blueprint("notes", __name__, url_prefix="/notes")
api = Blueprint("api", __name__, url_prefix="/api")
admin = Blueprint("admin", __name__, url_prefix="/admin")

PAGE = """<!doctype html><title>{{ title }}</title>
<link rel="stylesheet" href="{{ url_for('static', filename='notes.css') }}">
<h1>{{ title }}</h1>{{ content | safe }}"""


def db() -> services.Database:
    return current_app.extensions["notes_db"]  # type: ignore[no-any-return]


def page(title: str, content: str, status: int = 200) -> tuple[str, int]:
    return render_template_string(PAGE, title=title, content=content), status


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


@auth.before_app_request
def load_user() -> None:
    """Who is asking: the session's user, or the API token's."""
    g.user = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        g.user = services.user_for_token(db(), header[len("Bearer ") :])
    elif "user" in session:
        g.user = session["user"]
    if g.user is not None:
        add_info("role", g.user["role"])


@auth.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        user = services.check_password(db(), request.form.get("name", ""), request.form.get("password", ""))
        if user is None:
            return page("Sign in", "<p>Wrong name or password.</p>", 401)
        session["user"] = user
        g.user = user
        return redirect(request.args.get("next") or url_for("notes.index"))
    return page("Sign in", "<form method=post><input name=name><input name=password type=password></form>")


@auth.route("/logout", methods=["POST"])
def logout() -> Any:
    session.pop("user", None)
    return redirect(url_for("auth.login"))


@notes.route("/")
@login_required
def index() -> Any:
    tag = request.args.get("tag")
    rows = services.list_notes(db(), tag=tag)
    items = "".join(f"<li><a href='/notes/{n['id']}'>{n['title']}</a> by {n['author']}</li>" for n in rows)
    return page("Notes", f"<ul>{items}</ul>")


@notes.route("/<int:note_id>")
@login_required
def show(note_id: int) -> Any:
    try:
        note = services.get_note(db(), note_id)
    except services.NotFound:
        abort(404)
    comments = "".join(f"<li>{c['author']}: {c['body']}</li>" for c in note["comments"])
    return page(note["title"], services.render(note["body"]) + f"<ul>{comments}</ul>")


@notes.route("/new", methods=["POST"])
@login_required
def create() -> Any:
    tags = [t for t in request.form.get("tags", "").split(",") if t]
    try:
        note_id = services.create_note(db(), g.user["name"], request.form["title"], request.form["body"], tags)
    except ValueError as exc:
        return page("New note", f"<p>{exc}</p>", 400)
    return redirect(url_for("notes.show", note_id=note_id))


@notes.route("/<int:note_id>/edit", methods=["POST"])
@login_required
def edit(note_id: int) -> Any:
    try:
        services.update_note(db(), g.user["name"], note_id, request.form["body"])
    except services.NotFound:
        abort(404)
    return redirect(url_for("notes.show", note_id=note_id))


@notes.route("/<int:note_id>/comments", methods=["POST"])
@login_required
def comment(note_id: int) -> Any:
    try:
        services.add_comment(db(), g.user["name"], note_id, request.form["body"])
    except services.NotFound:
        abort(404)
    return redirect(url_for("notes.show", note_id=note_id))


@notes.route("/<int:note_id>/history")
@login_required
def history(note_id: int) -> Any:
    try:
        rows = services.history(db(), note_id)
    except services.NotFound:
        abort(404)
    return page("History", "".join(f"<p>v{r['version']} by {r['editor']}</p>" for r in rows))


@notes.route("/search")
@login_required
def search() -> Any:
    rows = services.search(db(), request.args.get("q", ""))
    return page("Search", "".join(f"<p><a href='/notes/{r['id']}'>{r['title']}</a></p>" for r in rows))


def api_user() -> dict[str, Any]:
    if g.get("user") is None:
        abort(401)
    user: dict[str, Any] = g.user
    return user


@api.route("/notes")
def api_list() -> Any:
    api_user()
    return jsonify(services.list_notes(db(), tag=request.args.get("tag"), limit=int(request.args.get("limit", 20))))


@api.route("/notes/<int:note_id>")
def api_get(note_id: int) -> Any:
    api_user()
    try:
        return jsonify(services.get_note(db(), note_id))
    except services.NotFound:
        abort(404)


@api.route("/notes", methods=["POST"])
def api_create() -> Any:
    user = api_user()
    data = request.get_json(force=True)
    note_id = services.create_note(db(), user["name"], data["title"], data.get("body", ""), data.get("tags", []))
    return jsonify({"id": note_id}), 201


@api.route("/notes/<int:note_id>", methods=["DELETE"])
def api_delete(note_id: int) -> Any:
    user = api_user()
    try:
        services.delete_note(db(), user, note_id)
    except services.NotFound:
        abort(404)
    except services.Forbidden:
        abort(403)
    return "", 204


@admin.route("/export")
@login_required
def export() -> Any:
    try:
        document = services.export_workspace(db(), g.user)
    except services.Forbidden:
        abort(403)
    return jsonify({"notes": len(document["notes"])})


@admin.route("/crash")
@login_required
def crash() -> Any:
    """A bug on purpose: the usage log says status "error" and names the exception."""
    return {"ratio": len(services.list_notes(db(), tag="nothing-has-this-tag")) / 0}
