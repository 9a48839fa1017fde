"""The baggage form of info values: what ``add_info`` puts in baggage and what inbound baggage gives back.

Baggage values are strings on the wire. A plain string travels as itself; anything else (and a string
that would not survive the trip: leading or trailing spaces, the prefix itself) travels as ``j:`` + JSON.
"""

from __future__ import annotations

import json
from typing import Any

from otel_usage import _serialize

__all__ = ["JSON_PREFIX", "decode_info_value", "encode_info_value"]

JSON_PREFIX = "j:"


def encode_info_value(value: Any) -> str:
    """The baggage form of an info value (already JSON-native)."""
    if isinstance(value, str) and not value.startswith(JSON_PREFIX) and value == value.strip():
        return value
    return JSON_PREFIX + json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode_info_value(raw: str) -> Any:
    """Inverse of :func:`encode_info_value`; a malformed encoded value stays the raw string.

    Inbound baggage is untrusted: a decoded value is made JSON-safe (``j:NaN``, ``j:1e400``, nesting past
    the recursion limit, lone surrogates) by :func:`~otel_usage._serialize.serialize_decoded`.
    """
    if raw.startswith(JSON_PREFIX):
        try:
            return _serialize.serialize_decoded(json.loads(raw[len(JSON_PREFIX) :]))
        except (ValueError, RecursionError):
            return raw
    return raw
