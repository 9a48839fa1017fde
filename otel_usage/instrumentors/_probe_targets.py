"""Probe targets: which functions :class:`~otel_usage.instrumentors.probes.ProbeInstrumentor` records.

A target names functions by module and qualified name, with an optional level and parameter filter::

    module:qualname[=LEVEL][[params]]

    shop.cart:add_item                    one function, level DEFAULT, every parameter
    shop.cart:Cart.checkout=INFO          one method at level INFO (the class is recorded as class_name)
    shop.cart:Cart.*                      every method defined in class Cart
    shop.orders:*                         every function defined in module shop.orders
    shop.orders:*.*                       every method of every class defined in shop.orders
    shop.orders:place_*=DEBUG             fnmatch-style: ``*`` any run of characters, ``?`` one
    shop.cart:add_item=INFO[item_id,qty]  record only these parameters
    shop.pay:charge[-card_number,-cvv]    record every parameter except these
    shop.pay:charge[]                     record the call, no parameter at all
    shop.pay:quote[return]                also record the return value (``return`` is never a parameter)

Rules:

- Targets are separated by ``,`` ``;`` or newlines (commas inside ``[...]`` belong to the parameter list).
- A glob matches one dotted part. It does not match names starting with ``_`` (private helpers, dunder
  methods) unless the pattern itself starts with ``_``; it matches only functions and classes *defined*
  in the module (not names it imported) and only methods defined in the class itself (not inherited).
- A name without glob is taken as written: an imported function, an inherited method (wrapped on the
  named class only) or a builtin all work.
- ``[a,b]`` includes, ``[-c]`` excludes (exclude wins), both may be mixed; with a glob, names a function
  lacks are ignored for it; without one, naming a parameter the function does not have is a warning and
  the target is left alone (a typo in an exclude list must not leak the value it meant to hide).
- From the environment, an unknown level is a warning and the probe records at ``DEFAULT``; a target that
  cannot be parsed is a warning naming it and is skipped: nothing here ever raises into the application.
  Explicit Python arguments (``instrument(probes=...)``) are validated strictly: ``ValueError``.

The file form (:envvar:`OTEL_USAGE_PROBES_FILE`) is TOML, read with :mod:`tomllib` (``tomli`` on Python
3.10). Its top level, or its ``[tool.otel_usage]`` table (so ``pyproject.toml`` works), may hold::

    probes = ["shop.cart:Cart.*", "shop.orders:*=INFO[-card_number]"]

    [[probe]]
    target = "shop.pay:charge"          # the same syntax; the keys below win over its suffixes
    level = "INFO"
    include = ["amount", "currency"]
    exclude = ["card_number"]
    record_return = true

Reads :envvar:`OTEL_USAGE_PROBES` and :envvar:`OTEL_USAGE_PROBES_FILE` (in :func:`targets_from_env`, called
when the instrumentor is instrumented, never at import).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from otel_usage import environment_variables as ev
from otel_usage._levels import DEFAULT, Level, parse_level

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["ProbeTarget", "load_probes_file", "match_name", "parse_target", "parse_targets", "targets_from_env"]

logger = logging.getLogger(__name__)

_NAME = r"[A-Za-z_]\w*"
_PATTERN = r"[\w*?]+"
_TARGET = re.compile(
    rf"^(?P<module>{_NAME}(?:\.{_NAME})*)\s*:\s*(?P<qualname>{_PATTERN}(?:\.{_PATTERN})*)\s*(?P<rest>.*)$", re.S
)
_LEVEL_SUFFIX = re.compile(r"^=\s*(?P<level>[^\s\[\]=]+)\s*(?P<rest>.*)$", re.S)
_PARAMS_SUFFIX = re.compile(r"^\[(?P<params>[^\[\]]*)\]\s*(?P<rest>.*)$", re.S)
_PARAM = re.compile(rf"^(?P<minus>-?)\s*(?P<name>{_NAME})$")


@dataclasses.dataclass(frozen=True)
class ProbeTarget:
    """One parsed target.

    Attributes:
        module: the module's dotted name.
        qualname: the dotted path inside the module; parts may be globs.
        level: the probes' level.
        include: only these parameters are recorded (None: all of them).
        exclude: these parameters are never recorded.
        record_return: also record the return value.
        text: the target as written, for messages.
        source: where it came from (a variable name or a file path), for messages.
    """

    module: str
    qualname: str
    level: Level = DEFAULT
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    record_return: bool = False
    text: str = ""
    source: str = ""

    @property
    def is_glob(self) -> bool:
        """True when some part of the qualname is a pattern."""
        return any(c in self.qualname for c in "*?")

    def describe(self) -> str:
        """``'text' (source)`` for warnings."""
        text = self.text or f"{self.module}:{self.qualname}"
        return f"{text!r} ({self.source})" if self.source else repr(text)


def _problem(strict: bool, message: str, *args: object) -> None:
    """A configuration problem: a warning, or with ``strict`` (explicit arguments) a ValueError.

    The error is the warning without its "Ignoring " and its "; what happens instead" tail.
    """
    if strict:
        text = message % args
        text = text.removeprefix("Ignoring ").split("; ")[0]
        raise ValueError(text[:1].upper() + text[1:])
    logger.warning(message, *args)


def match_name(name: str, pattern: str) -> bool:
    """Whether ``name`` matches one glob part; ``*`` and ``?`` never match a leading ``_``."""
    if not any(c in pattern for c in "*?"):
        return name == pattern
    if name.startswith("_") and not pattern.startswith("_"):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _split(text: str) -> list[str]:
    """Split on ``,`` ``;`` and newlines outside ``[...]``."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if depth == 0 and ch in ",;\n":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _parse_params(spec: str) -> tuple[tuple[str, ...] | None, tuple[str, ...], bool]:
    include: list[str] = []
    exclude: list[str] = []
    record_return = False
    only = False
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        m = _PARAM.match(item)
        if m is None:
            raise ValueError(f"bad parameter name {item!r}")
        name = m.group("name")
        if name == "return":
            if m.group("minus"):
                raise ValueError("'-return' means nothing; leave 'return' out to not record the return value")
            record_return = True
        elif m.group("minus"):
            exclude.append(name)
        else:
            include.append(name)
            only = True
    if not spec.strip():  # ``[]``: the call, no parameter
        return (), (), False
    return (tuple(include) if only else None), tuple(exclude), record_return


def parse_target(text: str, source: str = "", strict: bool = False) -> ProbeTarget:
    """Parse one target (see the module docstring).

    An unknown level logs a warning naming the target and falls back to ``DEFAULT`` (an error if ``strict``).

    Raises:
        ValueError: the text is not a target.
    """
    raw = text.strip()
    m = _TARGET.match(raw)
    if m is None:
        if ":" not in raw:
            raise ValueError("expected module:qualname, e.g. shop.cart:add_item or shop.orders:*")
        raise ValueError("expected module:qualname[=LEVEL][[params]]")
    rest = m.group("rest").strip()
    level_text: str | None = None
    params: str | None = None
    while rest:
        lm = _LEVEL_SUFFIX.match(rest)
        pm = _PARAMS_SUFFIX.match(rest)
        if lm is not None and level_text is None:
            level_text, rest = lm.group("level"), lm.group("rest").strip()
        elif pm is not None and params is None:
            params, rest = pm.group("params"), pm.group("rest").strip()
        else:
            raise ValueError(f"unexpected {rest!r} after the qualname (expected =LEVEL and/or [params])")
    level = DEFAULT
    if level_text is not None:
        try:
            level = parse_level(level_text)
        except ValueError as exc:
            where = f" ({source})" if source else ""
            if strict:
                raise
            logger.warning("Probe target %r%s: %s; recording it at DEFAULT", raw, where, exc)
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    record_return = False
    if params is not None:
        include, exclude, record_return = _parse_params(params)
    return ProbeTarget(
        module=m.group("module"),
        qualname=m.group("qualname"),
        level=level,
        include=include,
        exclude=exclude,
        record_return=record_return,
        text=raw,
        source=source,
    )


def parse_targets(text: str, source: str = ev.OTEL_USAGE_PROBES, strict: bool = False) -> list[ProbeTarget]:
    """Parse a list of targets; each bad one is a warning naming it and ``source``, and is skipped.

    Raises:
        ValueError: with ``strict`` (explicit arguments), the first bad target.
    """
    targets: list[ProbeTarget] = []
    for item in _split(text):
        try:
            targets.append(parse_target(item, source, strict))
        except ValueError as exc:
            _problem(strict, "Ignoring probe target %r in %s: %s", item, source, exc)
    return targets


_TABLE_KEYS = frozenset({"target", "level", "include", "exclude", "record_return"})


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and re.fullmatch(_NAME, v.strip()) for v in value):
        raise ValueError(f"expected a list of parameter names, got {value!r}")
    return tuple(v.strip() for v in value)


def _from_table(entry: Mapping[str, Any], source: str, strict: bool) -> ProbeTarget:
    unknown = set(entry) - _TABLE_KEYS
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))} (expected {', '.join(sorted(_TABLE_KEYS))})")
    text = entry.get("target")
    if not isinstance(text, str):
        raise ValueError("missing 'target' (a string module:qualname)")
    target = parse_target(text, source, strict)
    changes: dict[str, Any] = {}
    if "level" in entry:
        level = entry["level"]
        if not isinstance(level, (str, int)):
            raise ValueError(f"level must be a level name, got {level!r}")
        changes["level"] = parse_level(level)
    if "include" in entry:
        changes["include"] = _str_list(entry["include"])
    if "exclude" in entry:
        changes["exclude"] = _str_list(entry["exclude"])
    if "record_return" in entry:
        if not isinstance(entry["record_return"], bool):
            raise ValueError("record_return must be true or false")
        changes["record_return"] = entry["record_return"]
    return dataclasses.replace(target, **changes)


def load_probes_file(
    path: str | os.PathLike[str], source: str | None = None, strict: bool = False
) -> list[ProbeTarget]:
    """The targets of a TOML probes file; an unreadable file or a bad entry is a warning, never an error.

    Raises:
        ValueError: with ``strict`` (a file given as an explicit argument), the first problem.
    """
    label = source or str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _problem(strict, "Ignoring probes file %s: %s; no probe from it is installed", label, exc)
        return []
    section: Any = data.get("tool", {}).get("otel_usage", data) if isinstance(data.get("tool"), dict) else data
    if not isinstance(section, dict):
        _problem(strict, "Ignoring probes file %s: [tool.otel_usage] is not a table", label)
        return []
    targets: list[ProbeTarget] = []
    strings = section.get("probes", [])
    if isinstance(strings, str):
        strings = [strings]
    if not isinstance(strings, list):
        _problem(strict, "Ignoring 'probes' in %s: expected a list of strings", label)
        strings = []
    for item in strings:
        if isinstance(item, str):
            targets.extend(parse_targets(item, label, strict))
        else:
            _problem(strict, "Ignoring probe %r in %s: expected a string", item, label)
    tables = section.get("probe", [])
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list):
        _problem(strict, "Ignoring [[probe]] in %s: expected an array of tables", label)
        tables = []
    for entry in tables:
        try:
            if not isinstance(entry, dict):
                raise ValueError("expected a table")
            targets.append(_from_table(entry, label, strict))
        except ValueError as exc:
            _problem(strict, "Ignoring [[probe]] %r in %s: %s", entry, label, exc)
    unknown = set(section) - {"probes", "probe"}
    if unknown and section is data:
        _problem(strict, "Probes file %s: ignoring unknown keys %s", label, ", ".join(sorted(unknown)))
    return targets


def targets_from_env(
    probes: str | Iterable[str | ProbeTarget] | None = None, probes_file: str | os.PathLike[str] | None = None
) -> list[ProbeTarget]:
    """The targets to install: the explicit arguments when either is given, else the environment.

    ``probes`` is a target string (as in :envvar:`OTEL_USAGE_PROBES`) or a list of target strings and
    :class:`ProbeTarget` objects; ``probes_file`` a TOML file. From the environment:
    :envvar:`OTEL_USAGE_PROBES` first, then :envvar:`OTEL_USAGE_PROBES_FILE`.

    Raises:
        ValueError: an explicit argument that is not valid (a bad value in the environment only warns).
    """
    targets: list[ProbeTarget] = []
    if probes is None and probes_file is None:
        text = os.environ.get(ev.OTEL_USAGE_PROBES, "")
        if text.strip():
            targets.extend(parse_targets(text, ev.OTEL_USAGE_PROBES))
        path = os.environ.get(ev.OTEL_USAGE_PROBES_FILE, "").strip()
        if path:
            targets.extend(load_probes_file(path, f"{ev.OTEL_USAGE_PROBES_FILE}={path}"))
        return targets
    if isinstance(probes, str):
        targets.extend(parse_targets(probes, "probes=", strict=True))
    elif probes is not None:
        if not isinstance(probes, Iterable):
            raise ValueError(f"probes must be a target string or a list of targets, got {probes!r}")
        for item in probes:
            if isinstance(item, ProbeTarget):
                targets.append(item)
            elif isinstance(item, str):
                targets.extend(parse_targets(item, "probes=", strict=True))
            else:
                raise ValueError(f"probes: expected target strings or ProbeTarget objects, got {item!r}")
    if probes_file is not None:
        targets.extend(load_probes_file(probes_file, strict=True))
    return targets
