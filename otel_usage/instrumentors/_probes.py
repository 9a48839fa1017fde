"""The machinery of :mod:`otel_usage.instrumentors.probes` (documented there)."""

from __future__ import annotations

import atexit
import inspect
import logging
import sys
import threading
import types
from collections.abc import Callable, Collection, Iterable
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined,unused-ignore]

from otel_usage._config import SDK_DISABLED
from otel_usage._errors import handle_internal_errors, internal_error, never_raises
from otel_usage._levels import THRESHOLD
from otel_usage._probe import decorate
from otel_usage._suppress import is_suppressed
from otel_usage.instrumentors._probe_targets import ProbeTarget, match_name, targets_from_env

__all__ = ["ProbeInstrumentor"]

logger = logging.getLogger(__name__)

#: Attribute set on our wrappers (``wrapt`` keeps ``_self_*`` attributes on the proxy itself).
_MARK = "_self_otel_usage_target"

#: Packages whose functions are never probed (recording our own machinery would recurse).
_REFUSED = ("otel_usage", "opentelemetry", "wrapt")


class _Generation:
    """The wrappers installed by one ``instrument()``; ``active`` False turns all of them off at once."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True


class _Patch:
    """One replaced attribute, and how to put it back."""

    __slots__ = ("name", "original", "own", "owner", "wrapper")

    def __init__(self, owner: Any, name: str, original: Any, own: bool, wrapper: Any) -> None:
        self.owner = owner
        self.name = name
        self.original = original
        self.own = own
        self.wrapper = wrapper


class ProbeInstrumentor(BaseInstrumentor):  # type: ignore[misc,unused-ignore]
    """Wraps the functions named by probe targets (see the module docstring).

    ``instrument(probes=..., probes_file=...)``: explicit targets (a string in the
    :envvar:`OTEL_USAGE_PROBES` syntax or a list of strings / ``ProbeTarget``) and/or a TOML file; when
    neither is given, the environment is read. A target or file given explicitly that cannot be parsed
    or read raises ``ValueError``; the same from the environment is a warning. What can only be checked
    when the module is there (a missing attribute, an unknown parameter) is always a warning.
    With ``OTEL_SDK_DISABLED=true`` nothing is wrapped.
    """

    _lock = threading.RLock()
    _patches: dict[tuple[int, str], _Patch] = {}
    _pending: dict[str, list[ProbeTarget]] = {}
    _generation: _Generation | None = None
    _atexit_registered = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return []

    def _instrument(self, **kwargs: Any) -> None:
        if SDK_DISABLED.from_env():
            logger.debug("OTEL_SDK_DISABLED is true: no probe installed")
            return
        try:
            targets = targets_from_env(kwargs.get("probes"), kwargs.get("probes_file"))
        except ValueError:
            raise  # a bad explicit argument (a bad environment value is only a warning)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "probe targets")
            return
        with self._lock:
            generation = _Generation()
            type(self)._generation = generation
            by_module: dict[str, list[ProbeTarget]] = {}
            for target in targets:
                if target.module.split(".")[0] in _REFUSED:
                    logger.warning(
                        "Ignoring probe target %s: otel_usage does not probe its own machinery (%s)",
                        target.describe(),
                        ", ".join(_REFUSED),
                    )
                    continue
                by_module.setdefault(target.module, []).append(target)
            for module_name, module_targets in by_module.items():
                module = sys.modules.get(module_name)
                if module is not None:
                    self._apply(module, module_targets, generation)
                else:
                    self._pending[module_name] = module_targets
                    wrapt.register_post_import_hook(self._hook(module_targets, generation), module_name)
            if self._pending and not type(self)._atexit_registered:
                type(self)._atexit_registered = True
                atexit.register(_report_never_imported)

    def _hook(self, targets: list[ProbeTarget], generation: _Generation) -> Callable[[types.ModuleType], None]:
        @never_raises("probe import hook")
        def on_import(module: types.ModuleType) -> None:
            with self._lock:
                if not generation.active:
                    return
                self._pending.pop(module.__name__, None)
                self._apply(module, targets, generation)

        return on_import

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            generation = type(self)._generation
            if generation is not None:
                generation.active = False
            type(self)._generation = None
            self._pending.clear()
            for patch in list(self._patches.values()):
                _restore(patch)
            self._patches.clear()

    # --- wrapping ----------------------------------------------------------------------------

    def _apply(self, module: types.ModuleType, targets: Iterable[ProbeTarget], generation: _Generation) -> None:
        for target in targets:
            try:
                found = _resolve(module, target)
            except Exception as exc:  # noqa: BLE001
                internal_error(exc, "probe target resolution")
                continue
            if not found and target.is_glob:
                logger.warning("Probe target %s matches no function in %s", target.describe(), module.__name__)
            for owner, name, path in found:
                with handle_internal_errors("probe wrapping"):
                    self._wrap(owner, name, path, target, generation)

    def _wrap(self, owner: Any, name: str, path: str, target: ProbeTarget, generation: _Generation) -> None:
        key = (id(owner), name)
        own = isinstance(owner, type) and name in vars(owner)
        raw = vars(owner)[name] if own else _lookup(owner, name)
        if key in self._patches or getattr(raw, _MARK, None) is not None:
            logger.debug("%s.%s is already probed", _module_of(owner), path)
            return
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if getattr(func, "__otel_usage_probe__", None) is not None:
            logger.debug("%s is decorated with @traced_usage; leaving it alone", path)
            return
        include, exclude = target.include, target.exclude
        if target.is_glob:
            include, exclude = _known_params(func, include, exclude)
        try:
            probe = decorate(
                func,
                target.level,
                f"{target.module}.{path}",
                include,
                exclude,
                target.record_return,
                target.module,
            )
        except (TypeError, ValueError) as exc:
            logger.warning("Not probing %s (probe target %s): %s", path, target.describe(), exc)
            return
        bound = isinstance(owner, type) and not isinstance(raw, staticmethod)
        wrapper = wrapt.FunctionWrapper(raw, _call(probe, bound, generation))
        setattr(wrapper, _MARK, target.text)
        try:
            setattr(owner, name, wrapper)
        except (AttributeError, TypeError) as exc:
            logger.warning("Not probing %s (probe target %s): %s", path, target.describe(), exc)
            return
        self._patches[key] = _Patch(owner, name, raw, own or not isinstance(owner, type), wrapper)
        logger.debug("probing %s.%s", target.module, path)


def _call(probe: Callable[..., Any], bound: bool, generation: _Generation) -> Callable[..., Any]:
    """The wrapt wrapper: the recording function gets ``self``/``cls`` back as its first argument.

    Nothing is recorded while instrumentation is suppressed: exporters deliver under suppression, so a
    probed function they call themselves (``json:dumps``, a database driver) cannot feed usage logs back
    into the pipeline.
    """
    suppressing = is_suppressed
    threshold = THRESHOLD
    level = probe.__otel_usage_probe__.level  # type: ignore[attr-defined]
    # Below the threshold the probe only hides its callees: the suppression check is for recording.
    if bound:

        def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if not generation.active or instance is None:
                return wrapped(*args, **kwargs)
            if level >= threshold.value and suppressing():
                return wrapped(*args, **kwargs)
            return probe(instance, *args, **kwargs)

    else:

        def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if not generation.active:
                return wrapped(*args, **kwargs)
            if level >= threshold.value and suppressing():
                return wrapped(*args, **kwargs)
            return probe(*args, **kwargs)

    return wrapper


def _restore(patch: _Patch) -> None:
    owner, name = patch.owner, patch.name
    current = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if current is not patch.wrapper:
        logger.debug("%r.%s was wrapped again by someone else; leaving our (now inactive) wrapper", owner, name)
        return
    try:
        if patch.own:
            setattr(owner, name, patch.original)
        else:
            delattr(owner, name)
    except (AttributeError, TypeError) as exc:
        logger.warning("Could not restore %r.%s: %s", owner, name, exc)


def _module_of(owner: Any) -> str:
    return str(getattr(owner, "__module__", None) or getattr(owner, "__name__", "?"))


def _lookup(owner: Any, name: str) -> Any:
    """The raw attribute: from the class's MRO (un-bound), or the module's namespace."""
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
        raise AttributeError(name)
    return getattr(owner, name)


def _is_function(raw: Any) -> bool:
    if isinstance(raw, (classmethod, staticmethod)):
        raw = raw.__func__
    return inspect.isfunction(raw) or inspect.isbuiltin(raw) or isinstance(raw, wrapt.FunctionWrapper)


def _resolve(module: types.ModuleType, target: ProbeTarget) -> list[tuple[Any, str, str]]:
    """Every (owner, attribute name, dotted path) the target names in ``module``; warns on what is missing."""
    parts = target.qualname.split(".")
    owners: list[tuple[Any, str]] = [(module, "")]
    found: list[tuple[Any, str, str]] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        next_owners: list[tuple[Any, str]] = []
        for owner, prefix in owners:
            names = _candidates(owner, part, last, module.__name__)
            for name in names:
                path = f"{prefix}.{name}" if prefix else name
                try:
                    raw = _lookup(owner, name)
                except AttributeError:
                    logger.warning(
                        "Probe target %s: %s has no attribute %r", target.describe(), _where(owner, prefix), name
                    )
                    continue
                if not last:
                    if isinstance(raw, type):
                        next_owners.append((raw, path))
                    else:
                        logger.warning("Probe target %s: %s is not a class", target.describe(), path)
                elif _is_function(raw):
                    found.append((owner, name, path))
                elif isinstance(raw, type):
                    logger.warning(
                        "Probe target %s: %s is a class; use %s:%s.* for its methods",
                        target.describe(),
                        path,
                        target.module,
                        path,
                    )
                else:
                    logger.warning(
                        "Probe target %s: %s is not a function (%s)", target.describe(), path, type(raw).__name__
                    )
        owners = next_owners
    return found


def _candidates(owner: Any, part: str, last: bool, module_name: str) -> list[str]:
    if not any(c in part for c in "*?"):
        return [part]
    names = []
    for name, raw in list(vars(owner).items()):
        if not match_name(name, part):
            continue
        if last:
            ok = _is_function(raw)
            func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
            defined_here = getattr(func, "__module__", None) == module_name
        else:
            ok = isinstance(raw, type)
            defined_here = getattr(raw, "__module__", None) == module_name
        if ok and (defined_here or isinstance(owner, type)):
            names.append(name)
    return sorted(names)


def _where(owner: Any, prefix: str) -> str:
    if isinstance(owner, types.ModuleType):
        return f"module {owner.__name__}"
    return f"class {prefix or owner.__qualname__}"


def _known_params(
    func: Any, include: tuple[str, ...] | None, exclude: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """For a glob: keep only the names ``func`` has (all of them when it takes ``**kwargs`` or has no signature)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return include, exclude
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return include, exclude
    names = {p.name for p in params}
    return (
        None if include is None else tuple(n for n in include if n in names),
        tuple(n for n in exclude if n in names),
    )


def _report_never_imported() -> None:
    """At exit: targets whose module was never imported were never installed; say so."""
    pending = dict(ProbeInstrumentor._pending)
    for module_name, targets in pending.items():
        logger.warning(
            "Probe targets %s were not installed: module %s was never imported",
            ", ".join(t.describe() for t in targets),
            module_name,
        )
