"""capture_usage: a read-only sequence of every usage log the process records while it is open."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import requests
from flask import Flask

from otel_usage import traced_usage
from otel_usage.instrumentors.flask import UsageTracking
from otel_usage.testing import CapturedUsage, capture_usage
from tests.instrumentors._flask_server import serve
from tests.test_pipeline import run


@traced_usage
def double(n: int) -> int:
    return n * 2


def test_the_capture_is_a_read_only_sequence_flushed_on_every_read() -> None:
    with capture_usage() as usage:
        assert isinstance(usage, Sequence)
        assert len(usage) == 0
        double(1)
        assert len(usage) == 1  # read right after the call: the flush emitted it
        double(2)
        double(3)
        assert [log["data"][0]["params"]["n"] for log in usage] == [1, 2, 3]
        assert usage[0]["data"][0]["params"] == {"n": 1}
        assert usage[-1]["data"][0]["params"] == {"n": 3}
        assert [log["data"][0]["params"]["n"] for log in usage[1:]] == [2, 3]
        assert usage.logs == list(usage)
        with pytest.raises(IndexError):
            usage[3]
        with pytest.raises(TypeError):
            usage[0] = {}  # type: ignore[index]
        assert not hasattr(usage, "append")
        usage.clear()
        assert len(usage) == 0
    assert repr(usage) == "<CapturedUsage: 0 usage log(s)>"


def test_nested_captures_each_get_their_own_block() -> None:
    with capture_usage() as outer:
        double(1)
        with capture_usage() as inner:
            double(2)
        double(3)
    assert [log["data"][0]["params"]["n"] for log in outer] == [1, 3]
    assert [log["data"][0]["params"]["n"] for log in inner] == [2]


def test_an_app_instrumented_against_the_global_providers_before_the_capture_is_captured() -> None:
    """No provider passed anywhere: UsageTracking(app) made before the block, requests made inside it."""
    app = Flask("shop")

    @app.get("/notes/<int:note_id>")
    def note(note_id: int) -> str:
        return f"note {note_id}"

    UsageTracking(app)
    with serve(app) as base, requests.Session() as http:
        assert http.get(f"{base}/notes/7", timeout=10).text == "note 7"  # before: not captured
        with capture_usage() as usage:
            assert http.get(f"{base}/notes/8", timeout=10).text == "note 8"
            assert http.get(f"{base}/notes/9", timeout=10).status_code == 200
            logs = list(usage)
    assert [log["request"]["path"] for log in logs] == ["/notes/8", "/notes/9"]
    assert all(log["request"]["route"] == "/notes/<int:note_id>" for log in logs)


def test_the_explicit_provider_form_still_works() -> None:
    app = Flask("shop")

    @app.get("/")
    def home() -> str:
        return "home"

    with capture_usage() as usage:
        UsageTracking(app, tracer_provider=usage.tracer_provider)
        with serve(app) as base:
            assert requests.get(f"{base}/", timeout=10).text == "home"
        assert [log["request"]["path"] for log in usage] == ["/"]


def test_with_a_configured_pipeline_the_block_goes_to_the_capture_and_nowhere_else(tmp_path: Path) -> None:
    """configure() before the capture (the usual pytest set-up): inside the block nothing reaches the file;
    before and after, everything does; the app's usage processors still run on captured logs."""
    code = """
import json, os, otel_usage
from otel_usage.testing import capture_usage

def tag(log):
    log["tagged"] = True
    return log

otel_usage.configure(exporters=["file"], processors=[tag])

@otel_usage.traced_usage
def work(n):
    return n

work(1)
with capture_usage() as usage:
    work(2)
    with capture_usage() as inner:
        work(3)
    work(4)
work(5)
otel_usage.shutdown()
print(json.dumps({
    "captured": [[log["data"][0]["params"]["n"], log.get("tagged")] for log in usage],
    "inner": [log["data"][0]["params"]["n"] for log in inner],
    "file": [json.loads(line)["data"][0]["params"]["n"] for line in open(os.environ["OTEL_USAGE_FILE_PATH"])],
}))
"""
    proc = run(code, env={"OTEL_USAGE_FILE_PATH": str(tmp_path / "usage.jsonl")})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["captured"] == [[2, True], [4, True]]
    assert result["inner"] == [3]
    assert result["file"] == [1, 5]


def test_the_fixture_yields_a_capture(usage_capture: CapturedUsage) -> None:
    double(21)
    assert [log["data"][0]["params"] for log in usage_capture] == [{"n": 21}]


def test_configure_after_a_capture_gets_the_provider_it_would_have_built(tmp_path: Path) -> None:
    """A capture with no SDK provider installs one (to relay global-provider spans); a later configure()
    still gives it its service name and sampler, as if it had built it."""
    code = """
import json, os, otel_usage
from otel_usage.testing import capture_usage

@otel_usage.traced_usage
def work(n):
    return n

with capture_usage() as usage:
    work(1)
otel_usage.configure(exporters=["file"], service_name="shop", level="INFO")
work(2)
otel_usage.shutdown()
logs = map(json.loads, open(os.environ["OTEL_USAGE_FILE_PATH"]))
print(json.dumps([[log["service"], log["data"][0]["params"]["n"]] for log in logs]))
"""
    proc = run(code, env={"OTEL_USAGE_FILE_PATH": str(tmp_path / "u.jsonl")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == '[["shop", 2]]'


def test_a_capture_puts_back_every_piece_of_process_state() -> None:
    """What the block changes (threshold, limits, redaction, verbosity, logging bridge) is as before after it."""
    from otel_usage._runtime_state import STATE

    before = STATE.snapshot()
    with capture_usage(level="DEBUG", param_max_length=7, redact=["pin"], log_verbosity=40, log_bridge=True):
        inside = STATE.snapshot()
        assert inside != before
        assert (inside.threshold, inside.verbosity, inside.log_bridge) == (10, 40, True)
        assert inside.policy[0].max_length == 7
    assert STATE.snapshot() == before
