"""The same kind of Flask app under ``opentelemetry-instrument`` in a subprocess: no otel_usage import in it.

The ``otel_usage_flask`` instrumentor entry point tracks every Flask app; probes come from
``OTEL_USAGE_PROBES``; the usage logs land in the JSON Lines file of the ``otel_usage`` configurator.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"

SERVICE = """
def load_note(note_id):
    return {"id": note_id, "text": "note %d" % note_id}


def save_note(note_id, text):
    load_note(note_id)
    return len(text)
"""

APP = """
import threading
import urllib.error
import urllib.request

from flask import Flask, request
from werkzeug.serving import make_server

import notes_service

app = Flask(__name__)


@app.route("/notes/<int:note_id>", methods=["GET", "POST"])
def note(note_id):
    if request.method == "POST":
        return str(notes_service.save_note(note_id, request.get_data(as_text=True)))
    return notes_service.load_note(note_id)["text"]


@app.route("/boom")
def boom():
    notes_service.load_note(0)
    raise RuntimeError("boom")


server = make_server("127.0.0.1", 0, app, threaded=True)
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()
base = "http://127.0.0.1:%d" % server.server_port
calls = [
    ("GET", "/notes/1?access_token=s3cr3t", None, {"X-Forwarded-For": "203.0.113.9"}),
    ("POST", "/notes/2", b"hello", {"Authorization": "Bearer abc.def.ghi"}),
    ("GET", "/missing", None, {}),
    ("GET", "/boom", None, {}),
]
for method, path, body, headers in calls:
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as response:
            print(method, path, response.status, response.read().decode())
    except urllib.error.HTTPError as err:
        print(method, path, err.code)
server.shutdown()
"""

EXPECTED_OUTPUT = "GET /notes/1?access_token=s3cr3t 200 note 1\nPOST /notes/2 200 5\nGET /missing 404\nGET /boom 500\n"


def _has_entry_point(group: str, name: str) -> bool:
    return any(ep.name == name for ep in importlib.metadata.entry_points(group=group))


pytestmark = [
    pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument is not installed"),
    pytest.mark.skipif(
        not _has_entry_point("opentelemetry_instrumentor", "otel_usage_flask"),
        reason="otel-usage is not installed with its entry points (pip install -e .)",
    ),
]


def run_app(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "notes_service.py").write_text(textwrap.dedent(SERVICE))
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST", "COV_"))}
    full["PATH"] = f"{BIN}{os.pathsep}{full.get('PATH', '')}"
    full.pop("PYTHONPATH", None)
    full.update(
        {
            "OTEL_PYTHON_DISTRO": "otel_usage",
            "OTEL_PYTHON_CONFIGURATOR": "otel_usage",
            "OTEL_SERVICE_NAME": "notes",
            "OTEL_USAGE_PROBES": "notes_service:*",
            "OTEL_USAGE_FILE_PATH": str(tmp_path / "usage.jsonl"),
            **env,
        }
    )
    return subprocess.run(
        [str(INSTRUMENT), "python", "app.py"],
        cwd=tmp_path,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_logs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("semconv", ["default", "http", "http/dup"])
def test_flask_app_under_opentelemetry_instrument(tmp_path: Path, semconv: str) -> None:
    """Without code change: one log per request with the request fields, probes nested, 404 and 500 logged,
    a secret query argument redacted from the fields and from the span attributes of either HTTP convention."""
    env = {"OTEL_USAGE_FLASK_TRUSTED_PROXIES": "1"}
    if semconv != "default":
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = semconv
    proc = run_app(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_OUTPUT, proc.stderr
    assert "otel_usage internal error" not in proc.stderr, proc.stderr
    assert "s3cr3t" not in (tmp_path / "usage.jsonl").read_text()
    logs = {log["request"]["path"]: log for log in read_logs(tmp_path / "usage.jsonl")}
    assert sorted(logs) == ["/boom", "/missing", "/notes/1", "/notes/2"]
    first = logs["/notes/1"]
    assert first["request"]["url_args"] == {"access_token": "[REDACTED]"}
    attributes = first["data"][0]["attributes"]
    queries = [attributes.get(key) for key in ("http.target", "url.query") if key in attributes]
    assert queries and all("REDACTED" in query for query in queries)
    assert first["request"]["route"] == "/notes/<int:note_id>"
    assert first["request"]["client_ip"] == "203.0.113.9"
    assert first["request"]["user_agent"]["browser"] == "Python-urllib"
    assert first["service"] == "notes"
    assert [(r["function"], r["depth"]) for r in first["data"]] == [
        ("GET /notes/<int:note_id>", 0),
        ("notes_service.load_note", 1),
    ]
    second = logs["/notes/2"]
    assert second["request"]["authorization"] is True and second["request"]["username"] is None
    assert [r["function"] for r in second["data"]] == [
        "POST /notes/<int:note_id>",
        "notes_service.save_note",
        "notes_service.load_note",
    ]
    assert logs["/missing"]["request"]["status"] == 404 and logs["/missing"]["data"][0]["function"] == "GET"
    boom = logs["/boom"]
    assert boom["request"]["status"] == 500 and boom["status"] == "error"
    assert boom["error"]["type"] == "RuntimeError"


def test_include_mode_from_the_environment(tmp_path: Path) -> None:
    """OTEL_USAGE_FLASK_MODE=include with nothing included: the app runs the same and nothing is logged."""
    proc = run_app(tmp_path, {"OTEL_USAGE_FLASK_MODE": "include"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_OUTPUT, proc.stderr
    assert read_logs(tmp_path / "usage.jsonl") == []


def test_disabling_the_flask_usage_instrumentation(tmp_path: Path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_usage_flask: no request field (the stock server spans
    still group each request's probes into one log)."""
    proc = run_app(tmp_path, {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_usage_flask"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_OUTPUT, proc.stderr
    logs = read_logs(tmp_path / "usage.jsonl")
    assert len(logs) == 4
    assert all("request" not in log for log in logs)
