"""Hostile inbound requests against a tracked Flask app, over a real Werkzeug server and a raw HTTP client.

Every request goes to the tracked app and to an untracked twin: the responses must be the same (status,
headers, body), never a 500. The request's usage log must be strict JSON, of bounded size, with info from
baggage only for allow-listed keys, and its metadata (``trace_id``, ``status``, ``schema``, ``data`` ...)
never taken from the client. Header values beyond the server's 64 KB line limit are sent as repeated
headers, which WSGI joins (``baggage`` of 1 MB, ``User-Agent`` of 100 KB, ``X-Forwarded-For`` of
10,000 entries).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote_plus

import pytest
from flask import Flask, request
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from otel_usage import traced_usage
from otel_usage._config import CoreSettings
from otel_usage._schema import RESERVED_KEYS
from otel_usage.instrumentors.flask import UsageTracking
from otel_usage.testing import CapturedUsage, capture_usage
from tests.instrumentors._flask_server import serve

ALLOWED = ("tenant", "user", "request", "note")
#: The usage log of one hostile request, JSON-encoded, stays under this many characters.
MAX_LOG_CHARS = 40_000
#: A client-controlled string field of ``request`` stays under this (1024 characters and the cut marker).
MAX_FIELD_CHARS = 1024 + 32
HEX32 = re.compile(r"[0-9a-f]{32}\Z")
HEX16 = re.compile(r"[0-9a-f]{16}\Z")
LINE = 60_000  # below the server's 64 KB header line limit
FORGED_TRACE, FORGED_PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@traced_usage
def lookup(item: int) -> int:
    """A probe inside the view."""
    return item * 2


def make_app(usage: CapturedUsage | None) -> Flask:
    """The same app, tracked (with ``usage``'s provider, one trusted proxy) or not (None: no probe either)."""
    app = Flask(f"hostile_{'tracked' if usage else 'plain'}")
    if usage is not None:
        UsageTracking(app, tracer_provider=usage.tracer_provider, trusted_proxies=1)

    work = lookup if usage is not None else lookup.__wrapped__  # type: ignore[attr-defined]

    @app.route("/items/<int:item>", methods=["GET", "POST"])
    def item(item: int) -> dict[str, Any]:
        return {"item": work(item), "agent_length": len(request.headers.get("User-Agent", ""))}

    return app


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[CapturedUsage, str, str]]:
    """One capture, a tracked app and its untracked twin, each on its own real server (module-wide)."""
    with (
        capture_usage(baggage_allow=ALLOWED) as usage,
        serve(make_app(usage)) as tracked,
        serve(make_app(None)) as plain,
    ):
        yield usage, tracked, plain


def send(base: str, method: str, path: str, headers: list[tuple[str, str]]) -> tuple[int, list[Any], bytes]:
    """One raw HTTP request (repeated headers allowed); the status, the headers but Date and Server, the body."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    kept = sorted((k.lower(), v) for k, v in response.getheaders() if k.lower() not in ("date", "server"))
    return response.status, kept, body


def one_log(usage: CapturedUsage) -> dict[str, Any]:
    """The usage log of the request just answered (waits for it: it is assembled off the request thread)."""
    deadline = time.monotonic() + 10
    while True:
        logs = usage.exporter.get_logs() if usage.flush() else []
        if logs or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    usage.clear()
    assert len(logs) == 1, [log.get("request", {}).get("path") for log in logs]
    return logs[0]


def check_log(log: dict[str, Any], sent: dict[str, str]) -> None:
    """What every hostile request's log must be, whatever was sent (``sent``: the baggage as decoded)."""
    text = json.dumps(log, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # strict
    assert len(text) <= MAX_LOG_CHARS, len(text)
    info = set(log) - RESERVED_KEYS
    assert info <= {"request", *ALLOWED}, info
    assert info - {"request"} <= set(sent), (info, sent)
    assert HEX32.match(log["trace_id"]) and log["trace_id"] != "0" * 32
    assert HEX16.match(log["span_id"])
    assert log["parent_span_id"] is None or HEX16.match(log["parent_span_id"])
    assert log["schema"] == 1 and log["status"] in ("ok", "error") and log["service"] == "test"
    assert isinstance(log["data"], list) and log["data"][0]["depth"] == 0
    fields = log["request"]
    assert set(fields) >= {"method", "url", "path", "status", "user_agent", "xforwardedfor", "username"}
    for value in [*fields.values(), *fields["user_agent"].values()]:
        if isinstance(value, str):
            assert len(value) <= MAX_FIELD_CHARS, (len(value), value[:80])


def exchange(servers: tuple[CapturedUsage, str, str], method: str, path: str, headers: list[tuple[str, str]]) -> Any:
    """Send to both apps: same response, no 500; the tracked one's log, checked."""
    usage, tracked, plain = servers
    usage.clear()
    answer = send(tracked, method, path, headers)
    assert answer == send(plain, method, path, headers)
    assert answer[0] != 500
    return answer, one_log(usage)


def repeated(name: str, value: str) -> list[tuple[str, str]]:
    """``value`` as ``name`` headers of at most LINE characters each (WSGI joins them with commas)."""
    return [(name, value[i : i + LINE]) for i in range(0, len(value), LINE)]


# --- baggage -------------------------------------------------------------------------------------------


def test_one_megabyte_of_baggage_gives_no_info(servers: tuple[CapturedUsage, str, str]) -> None:
    """1 MB of baggage (17 headers, joined by the server) is ignored whole: no info, the response as usual."""
    entries = ",".join(f"tenant{i}={'x' * 1000}" for i in range(1000))
    header = f"tenant=acme,user=mallory,{entries}"
    assert len(header) > 1_000_000
    (status, _, body), log = exchange(servers, "GET", "/items/2", repeated("baggage", header))
    assert status == 200 and json.loads(body)["item"] == 4
    check_log(log, {})
    assert set(log) - RESERVED_KEYS == {"request"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("tenant=j:NaN,user=j:-Infinity,note=j:1e400", {"tenant": "NaN", "user": "-Infinity", "note": "Infinity"}),
        (f"note=j:{'[' * 2000}{']' * 2000}", {"note": f"j:{'[' * 2000}{']' * 2000}"}),
        ("note=j:" + quote('{"password":"hunter2","deep":[[[[[[[[1]]]]]]]]}'),
         {"note": {"password": "[REDACTED]", "deep": [[[[["…[depth]"]]]]]}}),
        ("note=j:" + quote('"\\udcff"'), {"note": "\\udcff"}),
        ("note=j:{broken", {"note": "j:{broken"}),
        (f"note={'n' * 4000}", {"note": "n" * 4000}),
        ("tenant=%E9t%C3%A9%00,user=a%2Cb%3Dc", {"tenant": "\ufffdté\x00", "user": "a,b=c"}),
        ("tenant", {}),
        ("=,==,tenant=,;;;,user==x", {"tenant": "", "user": "=x"}),
        ("tenant=acme;prop=1;x,user=bob", {"tenant": "acme;prop=1;x", "user": "bob"}),
        ("TENANT=upper,tenant =spaced", {"tenant": "spaced"}),
        ("tenant=" + "t" * 5000, {}),
        ("note=\u00e9", {}),
    ],
    ids=["nan-inf", "nesting-past-recursion-limit", "redacted-and-cut", "lone-surrogate", "broken-json",
         "near-entry-limit", "percent-junk", "no-value", "empty-parts", "properties", "case-and-space",
         "entry-too-long", "not-ascii"],
)  # fmt: skip
def test_malformed_baggage_values_become_json_safe_info(
    servers: tuple[CapturedUsage, str, str], header: str, expected: dict[str, Any]
) -> None:
    """Allow-listed baggage that decodes to NaN, nests 2000 deep, holds secrets or junk becomes strict,
    bounded JSON (nesting past the recursion limit used to answer 500, NaN used to break the log)."""
    (status, _, _), log = exchange(servers, "GET", "/items/1", [("baggage", header)])
    assert status == 200
    check_log(log, dict(expected))
    assert {key: log[key] for key in set(log) & set(ALLOWED) - {"request"}} == expected


def test_baggage_cannot_forge_metadata_or_the_request(servers: tuple[CapturedUsage, str, str]) -> None:
    """Baggage keys named like the log's own keys never reach the log; an allow-listed ``request`` loses to
    the server's fields; keys that are not allow-listed are dropped."""
    reserved = ",".join(f"{key}=forged" for key in sorted(RESERVED_KEYS))
    header = f"{reserved},request=forged,role=admin,user=mallory"
    (status, _, _), log = exchange(servers, "GET", "/items/3", [("baggage", header)])
    assert status == 200
    check_log(log, {"user": "mallory", "request": "forged"})
    assert set(log) - RESERVED_KEYS == {"request", "user"} and log["user"] == "mallory"
    assert log["request"]["path"] == "/items/3" and "role" not in log
    assert all(log[key] != "forged" for key in RESERVED_KEYS & set(log))


@pytest.mark.parametrize("name", sorted(RESERVED_KEYS))
def test_reserved_keys_cannot_be_allow_listed(name: str) -> None:
    """Allowing a reserved key in from baggage is a one-line configuration error naming setting and rule."""
    with pytest.raises(ValueError) as caught:
        CoreSettings.from_env(baggage_allow=("tenant", name))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"baggage_allow: {name!r} is a reserved key") and "allowed: any other info key" in message


def test_reserved_keys_in_the_environment_are_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In OTEL_USAGE_BAGGAGE_ALLOW a reserved key is a warning and is left out; the other keys stay."""
    monkeypatch.setenv("OTEL_USAGE_BAGGAGE_ALLOW", "tenant, trace_id ,user,data")
    with caplog.at_level(logging.WARNING, logger="otel_usage"):
        assert CoreSettings.from_env().baggage_allow == ("tenant", "user")
    warned = [r.getMessage() for r in caplog.records if "OTEL_USAGE_BAGGAGE_ALLOW" in r.getMessage()]
    assert len(warned) == 2 and "'trace_id' is a reserved key" in warned[0] and "'data'" in warned[1]


# --- trace context -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("traceparent", "continues"),
    [
        (f"00-{FORGED_TRACE}-{FORGED_PARENT}-01", True),
        (f"00-{FORGED_TRACE}-{FORGED_PARENT}-00", True),  # not sampled upstream: still recorded
        (f"00-{'0' * 32}-{FORGED_PARENT}-01", False),
        (f"00-{FORGED_TRACE}-{'0' * 16}-01", False),
        (f"ff-{FORGED_TRACE}-{FORGED_PARENT}-01", False),
        (f"00-{FORGED_TRACE.upper()}-{FORGED_PARENT}-01", False),
        (f"00-{FORGED_TRACE}-{FORGED_PARENT}-01-{'x' * LINE}", False),
        ("garbage", False),
        ("\x00\xff" * 1000, False),
    ],
    ids=["valid", "unsampled", "zero-trace", "zero-parent", "version-ff", "upper-case", "trailing-junk",
         "garbage", "binary"],
)  # fmt: skip
def test_forged_traceparent(servers: tuple[CapturedUsage, str, str], traceparent: str, continues: bool) -> None:
    """A valid traceparent is continued (ids are hex the log writes itself); anything else starts a new
    trace; a 60 KB tracestate is harmless."""
    headers = [("traceparent", traceparent), ("tracestate", ",".join(f"k{i}=v" for i in range(5000))[:LINE])]
    (status, _, _), log = exchange(servers, "GET", "/items/5", headers)
    assert status == 200
    check_log(log, {})
    if continues:
        assert (log["trace_id"], log["parent_span_id"]) == (FORGED_TRACE, FORGED_PARENT)
    else:
        assert log["trace_id"] != FORGED_TRACE and log["parent_span_id"] is None


# --- headers -------------------------------------------------------------------------------------------


def test_hundred_kilobyte_user_agent(servers: tuple[CapturedUsage, str, str]) -> None:
    """A 100 KB User-Agent is cut in the log and parsed from its beginning; the app sees it whole."""
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/120.0 " + "z" * 100_000
    (status, _, body), log = exchange(servers, "GET", "/items/1", repeated("User-Agent", agent))
    assert status == 200 and json.loads(body)["agent_length"] == len(agent) + len(repeated("User-Agent", agent)) - 1
    check_log(log, {})
    user_agent = log["request"]["user_agent"]
    assert user_agent["string"].startswith("Mozilla/5.0") and user_agent["string"].endswith(" chars]")
    assert user_agent["browser"] == "Firefox"


def test_ten_thousand_forwarded_for_entries(servers: tuple[CapturedUsage, str, str]) -> None:
    """10,000 X-Forwarded-For entries: the trusted hop is read from the right, the header is cut in the log."""
    hops = [f"198.51.100.{i % 250}" for i in range(9_999)] + ["203.0.113.77"]
    (status, _, _), log = exchange(servers, "GET", "/items/1", repeated("X-Forwarded-For", ", ".join(hops)))
    assert status == 200
    check_log(log, {})
    assert log["request"]["client_ip"] == "203.0.113.77"
    assert log["request"]["xforwardedfor"].startswith("198.51.100.0, 198.51.100.1,")


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize(
    ("authorization", "username"),
    [
        ("Basic", None),
        ("Basic ", None),
        ("Basic !!!not-base64!!!", None),
        ("Basic ====", None),
        (_basic(b"no-colon"), "no-colon"),
        (_basic(b"\xff\xfe:pw"), None),
        (_basic(b"alice\x00:pw"), "alice\x00"),
        (_basic(b":only-password"), None),
        (_basic(b"u" * 40_000 + b":p"), "u" * 1024 + "…[+38976 chars]"),
        ("Bearer " + "t" * LINE, None),
        ('Digest username="bob", realm="', None),
        ("basic " + base64.b64encode(b"carol:pw").decode(), "carol"),
        ("\x00\xff\t", None),
        ("Basic \xa1QX\x96", None),
        ("Basic " + "QUJD" * 15_000, "ABC" * 341 + "A…[+43976 chars]"),
    ],
    ids=["scheme-only", "empty", "not-base64", "padding", "no-colon", "not-utf8", "nul", "no-user", "40k-user",
         "60k-bearer", "broken-digest", "lower-case", "binary", "not-ascii", "60k-no-colon"],
)  # fmt: skip
def test_malformed_authorization(servers: tuple[CapturedUsage, str, str], authorization: str, username: Any) -> None:
    """Malformed Authorization headers never fail the request; the user is read only from well-formed Basic."""
    (status, _, _), log = exchange(servers, "GET", "/items/1", [("Authorization", authorization)])
    assert status == 200
    check_log(log, {})
    assert log["request"]["authorization"] is True
    assert log["request"]["username"] == username


def test_sixty_kilobyte_method_is_cut(servers: tuple[CapturedUsage, str, str]) -> None:
    """An unknown 60 KB method gets the app's 405; the log's method is cut (it was kept whole)."""
    (status, _, _), log = exchange(servers, "X" * LINE, "/items/1", [])
    assert status == 405
    check_log(log, {})
    assert log["request"]["method"] == f"{'X' * 1024}…[+{LINE - 1024} chars]"


# --- property: any mix of hostile headers ---------------------------------------------------------------

header_text = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF, blacklist_characters="\r\n"), max_size=40)
baggage_keys = st.sampled_from([*ALLOWED, *sorted(RESERVED_KEYS), "role", "Tenant", "ten%61nt", ""]) | header_text
baggage_values = st.one_of(
    header_text,
    st.sampled_from(["j:NaN", "j:1e999", 'j:{"a":[1,2]}', "j:" + "[" * 3000, "j:", "%FF%FE", "a;b=c"]),
    st.integers(0, 5000).map(lambda n: "v" * n),
)
baggage_headers = st.lists(
    st.tuples(baggage_keys, baggage_values).map(lambda kv: f"{kv[0]}={kv[1]}") | header_text, max_size=30
).map(",".join)
traceparents = st.one_of(
    st.just(f"00-{FORGED_TRACE}-{FORGED_PARENT}-01"),
    st.builds(lambda t, p, f: f"00-{t}-{p}-{f}", st.text("0123456789abcdefABCDEF", min_size=32, max_size=32),
              st.text("0123456789abcdef", min_size=16, max_size=16), st.sampled_from(["00", "01", "ff", "zz"])),
    header_text,
)  # fmt: skip
big_header = st.builds(lambda unit, n: unit * n, header_text.filter(bool), st.integers(1, 100_000 // 40))
forwarded = st.builds(
    lambda hop, n: ", ".join([hop] * n),
    st.sampled_from(["203.0.113.9", "[2001:db8::1]:80", "unknown", "999.1.1.1", ""]) | header_text,
    st.integers(1, 10_000),
)
authorizations = st.one_of(
    header_text,
    st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=200)),
    st.builds("{} {}".format, st.sampled_from(["Basic", "Bearer", "Digest", "basic"]), header_text),
)  # fmt: skip
hostile_headers = st.fixed_dictionaries(
    {},
    optional={
        "baggage": baggage_headers,
        "traceparent": traceparents,
        "User-Agent": big_header,
        "X-Forwarded-For": forwarded,
        "Authorization": authorizations,
        "Accept-Language": big_header,
        "Referer": big_header,
        "Cookie": big_header,
        "Content-Length": st.sampled_from(["-1", "abc", "", "0", " 7 "]),
    },
)
paths = st.one_of(
    st.just("/items/7"),
    st.builds(lambda s: "/items/7?" + s, st.text("abc=&%;+/?#~!$()*,:@[]", max_size=300)),
    st.builds(lambda n: "/items/7?" + "&".join(f"k{i}=v" for i in range(n)), st.integers(0, 5000)),
    st.sampled_from(["/items/%FF%FE", "/items/%00", "/nope/" + "p" * 5000, "/items/99999999999999999999999", "*"]),
)
methods = st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "DELETE", "BREW", "get", "M" * 5000])


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.generate,),
    suppress_health_check=list(HealthCheck),
)
@given(headers=hostile_headers, method=methods, path=paths)
def test_any_mix_of_hostile_headers(
    servers: tuple[CapturedUsage, str, str], headers: dict[str, str], method: str, path: str
) -> None:
    """Any mix of hostile baggage, traceparent, 100 KB headers, 10,000 forwarded hops, junk Authorization,
    methods and paths: the same response as the untracked app, never a 500, one checked log."""
    sent = [pair for name, value in headers.items() for pair in repeated(name, value)]
    answer, log = exchange(servers, method, path, sent)
    assert answer[0] in (200, 204, 400, 404, 405)
    check_log(log, _allowed_baggage(headers.get("baggage", "")))


def _allowed_baggage(header: str) -> dict[str, str]:
    """What a client could have sent for the allow-listed keys (an upper bound of the info keys)."""
    decoded = unquote_plus(header)
    return {key: "" for key in ALLOWED if key in decoded}
