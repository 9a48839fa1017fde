"""What a Flask request's usage log says about the request: the ``request`` info value, built from Flask.

Pure functions of the request (and the response status), used by :mod:`otel_usage.instrumentors.flask`
on the request thread once the view has answered. They read the request only: no session access, no user
loading, no I/O (the user agent is parsed by ``ua-parser`` with a cache; a geo resolver is the caller's).

Values travel as JSON-native data; anything the client controls is cut to the serialization limits, and
query arguments and view arguments whose names look sensitive are redacted like probe parameters.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from otel_usage import _redact, _serialize
from otel_usage._fork import at_fork

if TYPE_CHECKING:
    from flask import Request

__all__ = [
    "VisitorCookie",
    "client_ip",
    "flask_login_user",
    "parse_user_agent",
    "redacted_query",
    "request_fields",
    "scrub_span_query",
    "warm_up_user_agent_parser",
]

logger = logging.getLogger(__name__)

#: Resolves a client IP address to a JSON-native dict (or None when unknown).
GeoResolver = Callable[[str], "Mapping[str, Any] | None"]

_UA_CACHE_SIZE = 2048
_VERIFIED_CACHE_SIZE = 8192


def _text(value: Any) -> str | None:
    """A client-controlled string, cut to the serialization limits; None stays None."""
    if value is None:
        return None
    if type(value) is str:
        limits = _serialize.get_policy()[0]
        if len(value) <= limits.max_length and len(value) <= limits.max_size and value.isascii():
            return value
    cut: str = _serialize.serialize(str(value))
    return cut


_PLAIN = (str, int, float, bool, type(None))
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def _arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """View arguments as JSON-native values, sensitive names redacted (plain short values without a walk)."""
    limits, redactor = _serialize.get_policy()
    longest = min(limits.max_length, limits.max_size)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if type(key) is not str or type(value) not in _PLAIN or (type(value) is str and len(value) > longest):
            return dict(_serialize.serialize(values))
        out[key] = _redact.REDACTED if redactor.is_sensitive(key) else value
    return out


def _ip(value: str) -> str | None:
    """``value`` as a normalized IP address, accepting ``a.b.c.d:port`` and ``[v6]:port``; else None."""
    candidate = value.strip().strip('"')
    if candidate.startswith("[") and "]" in candidate:
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1 and "." in candidate:
        candidate = candidate.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int) -> str | None:
    """The client's address, trusting ``X-Forwarded-For`` only as far as ``trusted_proxies`` hops.

    With ``n`` trusted proxies in front of the application, each appends the address it received the
    request from, so the client is the ``n``-th entry from the right (like Werkzeug's ``ProxyFix``).
    With no trusted proxy, or a header shorter than ``n`` (so not written by all of them), or an entry
    that is not an IP address, the header is ignored and the peer address is the client.
    """
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [hop for hop in forwarded_for.split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        return remote_addr
    address = _ip(hops[-trusted_proxies])
    return address if address is not None else remote_addr


# --- user agent --------------------------------------------------------------------------------------

_parser_lock = threading.Lock()
_parse: Callable[[str], Any] | None = None
_parser_missing = False


def _ua_parse() -> Callable[[str], Any] | None:
    """``ua_parser.parse`` (loaded once: its rules take a while to compile), or None if not installed."""
    global _parse, _parser_missing
    if _parse is not None or _parser_missing:
        return _parse
    with _parser_lock:
        if _parse is None and not _parser_missing:
            try:
                import ua_parser

                ua_parser.parse("Mozilla/5.0")  # compiles the rules now, under the lock
                _parse = ua_parser.parse
            except ImportError:
                _parser_missing = True
                logger.warning("otel_usage: ua-parser is not installed; user agents are recorded unparsed")
    return _parse


def warm_up_user_agent_parser() -> None:
    """Load the user-agent rules in a background thread, so that the first request does not wait."""
    if _parse is None and not _parser_missing:
        threading.Thread(target=_ua_parse, name="otel_usage.ua_parser", daemon=True).start()


# A fork while the warm-up thread is importing ua_parser would leave the module's import lock held by a
# thread the child does not have: the child's first request would hang on it (a pre-fork server with the
# app preloaded). So a fork waits for a warm-up in progress to finish (it holds the parser lock meanwhile).
at_fork(before=_parser_lock.acquire, after_in_parent=_parser_lock.release, after_in_child=_parser_lock.release)


def _version(*parts: str | None) -> str | None:
    kept = []
    for part in parts:
        if not part:
            break
        kept.append(part)
    return ".".join(kept) or None


@functools.lru_cache(maxsize=_UA_CACHE_SIZE)
def parse_user_agent(string: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``(browser, version, os, device)`` of a User-Agent header (cached; None where unknown)."""
    parse = _ua_parse()
    if parse is None or not string:
        return None, None, None, None
    result = parse(string)
    agent, system, device = result.user_agent, result.os, result.device
    browser = agent.family if agent is not None else None
    version = _version(agent.major, agent.minor, agent.patch) if agent is not None else None
    os_name = system.family if system is not None else None
    device_name = device.family if device is not None else None
    return browser, version, os_name, device_name


@functools.lru_cache(maxsize=_UA_CACHE_SIZE)
def _language(header: str) -> str | None:
    """The preferred language of an Accept-Language header (cached per header value)."""
    if not header:
        return None
    from werkzeug.datastructures import LanguageAccept
    from werkzeug.http import parse_accept_header

    return _text(parse_accept_header(header, LanguageAccept).best)


def _user_agent(environ: Mapping[str, Any]) -> dict[str, Any]:
    raw = environ.get("HTTP_USER_AGENT", "")
    browser, version, os_name, device = parse_user_agent(raw[:512])
    return {
        "string": _text(raw),
        "browser": browser,
        "version": version,
        "os": os_name,
        "device": device,
        "language": _language(environ.get("HTTP_ACCEPT_LANGUAGE", "")[:256]),
    }


# --- user --------------------------------------------------------------------------------------------


def flask_login_user() -> str | None:
    """The user Flask-Login loaded during this request, if authenticated (never loads one itself).

    Loading it here would read the session (adding ``Vary: Cookie`` to the response) and may query a
    database: the response must stay what the view produced.
    """
    from flask import g

    user = g.get("_login_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    name = getattr(user, "username", None)
    if name is None:
        get_id = getattr(user, "get_id", None)
        name = get_id() if callable(get_id) else None
    return None if name is None else str(name)


def _basic_user(header: str) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header; None when there is none or it is malformed.

    Decoded here, not by Werkzeug's ``request.authorization``, which raises on non-ASCII credentials.
    """
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    credentials = credentials.strip(" \t")
    if not credentials.isascii():
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None
    return decoded.partition(":")[0] or None


# --- the request field ---------------------------------------------------------------------------------


def redacted_query(request: Request) -> str | None:
    """The query string with the values of sensitive arguments redacted; None when none is sensitive."""
    args = request.args
    if not args:
        return None
    redactor = _serialize.get_policy()[1]
    if not any(redactor.is_sensitive(key) for key in args):
        return None
    pairs = [(key, _redact.REDACTED if redactor.is_sensitive(key) else value) for key, value in args.items(multi=True)]
    return urlencode(pairs)


def scrub_span_query(span: Any, request: Request, query: str) -> None:
    """Put the redacted query in the server span's URL attributes (old and new HTTP conventions)."""
    attributes = span.attributes or {}
    if "http.target" in attributes:
        span.set_attribute("http.target", f"{request.path}?{query}")
    if "url.query" in attributes:
        span.set_attribute("url.query", query)
    for key in ("http.url", "url.full"):
        if key in attributes:
            span.set_attribute(key, f"{request.base_url}?{query}")


def _url(request: Request, environ: Mapping[str, Any], query: str | None) -> str:
    """The full URL: as the client sent it when the server says (``RAW_URI``/``REQUEST_URI``), else rebuilt."""
    if query is not None:
        return f"{request.base_url}?{query}"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        return f"{environ.get('wsgi.url_scheme', 'http')}://{request.host}{raw}"
    return request.url


def _content_length(environ: Mapping[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def request_fields(request: Request, status: int, trusted_proxies: int, username: str | None) -> dict[str, Any]:
    """The ``request`` info value (without ``visitor`` and ``geo``) for a request answered with ``status``.

    ``request`` is the request object itself (not Flask's proxy); cheap ``environ`` reads are preferred to
    request properties that parse.
    """
    environ = request.environ
    rule = request.url_rule
    remote_addr = environ.get("REMOTE_ADDR")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    authorization = environ.get("HTTP_AUTHORIZATION")
    view_args = request.view_args
    query = url_args = None
    if environ.get("QUERY_STRING"):
        args = request.args
        query = redacted_query(request)
        url_args = _serialize.serialize({key: args.getlist(key) for key in args})
    if username is None and authorization:
        username = _basic_user(authorization)
    return {
        "method": request.method if request.method in _METHODS else _text(request.method),
        "url": _text(_url(request, environ, query)),
        "path": _text(request.path),
        "route": rule.rule if rule is not None else None,
        "endpoint": request.endpoint,
        "blueprint": request.blueprint,
        "view_args": _arguments(view_args) if view_args else {},
        "url_args": url_args or {},
        "status": status,
        "remote_addr": remote_addr,
        "xforwardedfor": _text(forwarded),
        "client_ip": client_ip(remote_addr, forwarded, trusted_proxies),
        "authorization": authorization is not None,
        "username": _text(username),
        "user_agent": _user_agent(environ),
        "content_length": _content_length(environ),
        "referrer": _text(environ.get("HTTP_REFERER")),
    }


# --- unique visitors -------------------------------------------------------------------------------------


def _cookie(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a Cookie header (our values are never quoted), without parsing the rest."""
    if name not in header:
        return None
    for item in header.split(";"):
        key, sep, value = item.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return None


class VisitorCookie:
    """A random visitor id kept in a signed, HttpOnly, SameSite cookie.

    Args:
        name: the cookie's name.
        max_age_seconds: how long the browser keeps it.
        same_site: ``Lax`` (default) or ``Strict``.
    """

    def __init__(self, name: str, max_age_seconds: int, same_site: str = "Lax") -> None:
        self.name = name
        self.max_age_seconds = max_age_seconds
        self.same_site = same_site
        from itsdangerous import BadSignature

        self._bad_signature = BadSignature
        self._signers: dict[bytes, Any] = {}
        #: (key, cookie value) -> visitor id, for cookies whose signature was checked already.
        self._verified: dict[tuple[str | bytes, str], str] = {}

    def _signer(self, secret: str | bytes) -> Any:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        signer = self._signers.get(key)
        if signer is None:
            import hashlib

            from itsdangerous import Signer

            signer = Signer(key, salt="otel_usage.visitor", digest_method=hashlib.sha256)
            if len(self._signers) < 8:
                self._signers[key] = signer
        return signer

    def read(self, request: Request, secret: str | bytes) -> tuple[str, str | None]:
        """``(visitor id, cookie value to set or None)``: the cookie's id if its signature holds, else a new one."""
        signer = self._signer(secret)
        raw = _cookie(request.environ.get("HTTP_COOKIE", ""), self.name)
        if raw:
            known = self._verified.get((secret, raw))
            if known is not None:
                return known, None
            try:
                visitor: str = signer.unsign(raw).decode("ascii")
            except (self._bad_signature, UnicodeDecodeError):
                pass
            else:
                if len(visitor) == 32 and all(c in "0123456789abcdef" for c in visitor):
                    if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                        self._verified.clear()
                    self._verified[(secret, raw)] = visitor
                    return visitor, None
        visitor = secrets.token_hex(16)
        return visitor, signer.sign(visitor).decode("ascii")
