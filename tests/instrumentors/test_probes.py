"""ProbeInstrumentor: functions named in configuration are recorded without changing their code."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import sys
import textwrap
import uuid

import pytest

from otel_usage import INFO, traced_usage
from otel_usage._levels import DEFAULT, Level
from otel_usage.instrumentors import _probes as probes_module
from otel_usage.instrumentors._probe_targets import (
    ProbeTarget,
    load_probes_file,
    match_name,
    parse_target,
    parse_targets,
    targets_from_env,
)
from otel_usage.instrumentors.probes import ProbeInstrumentor
from otel_usage.testing import capture_usage

SHOP = """
from fractions import Fraction  # an imported class: *.* must leave its methods alone
from json import dumps as imported_function


class Base:
    def inherited(self, x):
        return x


class Cart(Base):
    def __init__(self):
        self.items = []

    def add_item(self, item_id, qty=1, card_number=None):
        self.items.append((item_id, qty))
        return len(self.items)

    def total(self):
        return sum(q for _, q in self.items)

    @classmethod
    def empty(cls):
        return cls()

    @staticmethod
    def tax(amount):
        return amount * 0.2

    def _private(self):
        return 1

    @property
    def size(self):
        return len(self.items)


class Other:
    def ping(self):
        return "pong"


def checkout(cart, card_number="4111", note=""):
    cart.add_item("x")
    return cart.total()


def place_order(user, amount):
    return charge(amount)


def place_refund(user, amount):
    return -amount


def charge(amount):
    if amount < 0:
        raise ValueError("negative")
    return amount


def _helper():
    return 0


async def fetch(n):
    await asyncio.sleep(0)
    return n


def numbers(n):
    yield from range(n)


import asyncio
LIMIT = 3
"""


@pytest.fixture
def make_module(tmp_path, monkeypatch):
    """Write a uniquely named package with a ``shop`` module; returns its dotted name (not imported)."""
    created: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str = SHOP, module: str = "shop") -> str:
        package = f"pkg_{uuid.uuid4().hex[:10]}"
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        created.append(package)
        return f"{package}.{module}"

    yield make
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in created):
            del sys.modules[name]


@pytest.fixture
def instrumentor():
    inst = ProbeInstrumentor()
    yield inst
    if inst.is_instrumented_by_opentelemetry:
        inst.uninstrument()


def records(usage):
    return [[(r["function"], r["depth"], r.get("class_name"), r["params"]) for r in log["data"]] for log in usage.logs]


def short(usage):
    return [[r["function"].rsplit(".", 1)[-1] for r in log["data"]] for log in usage.logs]


# --- syntax ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shop.cart:add_item", ProbeTarget("shop.cart", "add_item")),
        ("shop.cart:Cart.*=INFO", ProbeTarget("shop.cart", "Cart.*", Level.INFO)),
        ("shop.orders:*", ProbeTarget("shop.orders", "*")),
        ("shop.cart:add_item=info[item_id,qty]", ProbeTarget("shop.cart", "add_item", INFO, ("item_id", "qty"))),
        ("shop.cart:add_item[item_id]=DEBUG", ProbeTarget("shop.cart", "add_item", Level.DEBUG, ("item_id",))),
        ("a.b:c[-card_number, -cvv]", ProbeTarget("a.b", "c", exclude=("card_number", "cvv"))),
        ("a:c[x,-y]", ProbeTarget("a", "c", include=("x",), exclude=("y",))),
        ("a:c[]", ProbeTarget("a", "c", include=())),
        ("a:c[return]", ProbeTarget("a", "c", record_return=True)),
        (" a : C.m?_* ", ProbeTarget("a", "C.m?_*")),
    ],
)
def test_target_syntax(text, expected):
    """module:qualname[=LEVEL][[params]] parses into module, qualname, level, include, exclude, return."""
    got = parse_target(text)
    assert (got.module, got.qualname, got.level, got.include, got.exclude, got.record_return) == (
        expected.module,
        expected.qualname,
        expected.level,
        expected.include,
        expected.exclude,
        expected.record_return,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shop.cart", "expected module:qualname"),
        ("shop.cart:", "expected module:qualname"),
        ("1shop:f", "expected module:qualname"),
        ("shop:f junk", "unexpected 'junk'"),
        ("shop:f[a b]", "bad parameter name"),
        ("shop:f[-return]", "-return"),
        ("shop:f=INFO=DEBUG", "unexpected"),
        ("shop:f[a][b]", "unexpected"),
    ],
)
def test_bad_target_syntax_is_a_clear_error(text, message):
    """A malformed target raises ValueError saying what was expected."""
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        parse_target(text)


def test_unknown_level_warns_and_records_at_default(caplog):
    """An unknown level in a target is a warning naming the target; the probe keeps level DEFAULT."""
    target = parse_target("shop:f=LOUD", "OTEL_USAGE_PROBES")
    assert target.level is DEFAULT
    assert "'shop:f=LOUD' (OTEL_USAGE_PROBES)" in caplog.text


def test_target_list_splits_outside_brackets_and_skips_bad_ones(caplog):
    """Targets split on , ; and newlines (not inside [...]); a bad one is a warning naming it and the variable."""
    targets = parse_targets("a:f=INFO[x,y], b:g ;c:*\n  d:C.*\n, nonsense ,", "OTEL_USAGE_PROBES")
    assert [t.text for t in targets] == ["a:f=INFO[x,y]", "b:g", "c:*", "d:C.*"]
    assert targets[0].include == ("x", "y")
    assert "Ignoring probe target 'nonsense' in OTEL_USAGE_PROBES" in caplog.text


@pytest.mark.parametrize(
    ("name", "pattern", "matches"),
    [
        ("add_item", "*", True),
        ("_private", "*", False),
        ("__init__", "*", False),
        ("__init__", "__*", True),
        ("_private", "_p*", True),
        ("place_order", "place_*", True),
        ("charge", "place_*", False),
        ("add", "ad?", True),
        ("add_item", "add_item", True),
        ("add_items", "add_item", False),
    ],
)
def test_glob_parts(name, pattern, matches):
    """A glob matches one dotted part, fnmatch-style, but never a leading underscore unless asked for."""
    assert match_name(name, pattern) is matches


# --- wrapping --------------------------------------------------------------------------------------


def test_function_target_records_module_qualname_and_params(make_module, instrumentor):
    """An explicit function target is recorded as module.qualname with its parameters."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:place_order,{mod}:charge")
    with capture_usage() as usage:
        assert shop.place_order("alice", 12) == 12
    assert records(usage) == [
        [
            (f"{mod}.place_order", 0, None, {"user": "alice", "amount": 12}),
            (f"{mod}.charge", 1, None, {"amount": 12}),
        ]
    ]
    assert usage.logs[0]["data"][0]["tracker"] == mod


def test_class_glob_records_methods_with_class_name(make_module, instrumentor):
    """Cart.* wraps the methods, classmethods and staticmethods defined in Cart; methods record class_name."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:Cart.*")
    with capture_usage() as usage:
        cart = shop.Cart.empty()
        cart.add_item("apple", 2)
        shop.Cart.add_item(cart, "pear")  # called through the class
        shop.Cart.tax(10)
        cart.inherited(1)  # defined in Base: not matched
        cart._private()
        assert cart.size == 2
    assert records(usage) == [
        [(f"{mod}.Cart.empty", 0, "Cart", {})],
        [(f"{mod}.Cart.add_item", 0, "Cart", {"item_id": "apple", "qty": 2, "card_number": "[REDACTED]"})],
        [(f"{mod}.Cart.add_item", 0, "Cart", {"item_id": "pear", "qty": 1, "card_number": "[REDACTED]"})],
        [(f"{mod}.Cart.tax", 0, None, {"amount": 10})],
    ]


def test_classmethod_called_on_subclass_records_subclass(make_module, instrumentor):
    """A wrapped classmethod still binds to the class it is called on."""
    mod = make_module(SHOP + "\nclass BigCart(Cart):\n    pass\n")
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:Cart.empty")
    with capture_usage() as usage:
        assert type(shop.BigCart.empty()) is shop.BigCart
    assert records(usage) == [[(f"{mod}.Cart.empty", 0, "BigCart", {})]]


def test_module_glob_matches_only_functions_defined_there(make_module, instrumentor):
    """module:* wraps the module's own public functions: not imported ones, classes, privates or constants."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:*")
    wrapped = sorted(name for (owner_id, name) in ProbeInstrumentor._patches)
    assert wrapped == ["charge", "checkout", "fetch", "numbers", "place_order", "place_refund"]
    assert shop.imported_function({"a": 1}) == '{"a": 1}'
    assert shop._helper() == 0


def test_glob_on_classes_and_patterns(make_module, instrumentor):
    """*.* wraps the methods of every class; place_* only matching functions."""
    mod = make_module()
    importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:*.*, {mod}:place_*")
    wrapped = sorted(name for (owner_id, name) in ProbeInstrumentor._patches)
    assert wrapped == ["add_item", "empty", "inherited", "ping", "place_order", "place_refund", "tax", "total"]


def test_imported_function_can_be_named_explicitly(make_module, instrumentor):
    """A name without glob is taken as written, even a function the module imported."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:imported_function")
    with capture_usage() as usage:
        shop.imported_function([1])
    assert [r["function"] for r in usage.logs[0]["data"]] == [f"{mod}.imported_function"]


def test_inherited_method_named_explicitly_is_shadowed_then_removed(make_module, instrumentor):
    """Cart.inherited wraps Base's method on Cart only; uninstrument removes the shadow again."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:Cart.inherited")
    assert "inherited" in vars(shop.Cart)
    with capture_usage() as usage:
        shop.Cart().inherited(5)
        shop.Base().inherited(6)
    assert records(usage) == [[(f"{mod}.Cart.inherited", 0, "Cart", {"x": 5})]]
    instrumentor.uninstrument()
    assert "inherited" not in vars(shop.Cart)


def test_level_per_target_and_threshold(make_module, instrumentor):
    """=LEVEL sets the probe's level: below the threshold it is not recorded, nor what it calls."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:place_order=DEBUG, {mod}:charge=INFO")
    with capture_usage(level="INFO") as usage:
        shop.place_order("bob", 3)  # DEBUG: hidden, and so is charge under it
        shop.charge(4)
    assert short(usage) == [["charge"]]
    assert usage.logs[0]["data"][0]["level"] == "INFO"
    with capture_usage(level="DEBUG") as usage:
        shop.place_order("bob", 3)
    assert short(usage) == [["place_order", "charge"]]


@pytest.mark.parametrize(
    ("suffix", "params", "ret"),
    [
        ("[amount]", {"amount": 7}, None),
        ("[-user]", {"amount": 7}, None),
        ("[user,-user]", {}, None),
        ("[]", {}, None),
        ("[return]", {"user": "u", "amount": 7}, 7),
        ("[amount,return]", {"amount": 7}, 7),
    ],
)
def test_include_exclude_and_return(make_module, instrumentor, suffix, params, ret):
    """[names] includes, [-names] excludes (exclude wins), [] records none, [return] the return value."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:place_order{suffix}")
    with capture_usage() as usage:
        shop.place_order("u", 7)
    (record,) = usage.logs[0]["data"]
    assert record["params"] == params
    assert record.get("return") == ret


def test_glob_params_ignore_names_a_function_lacks(make_module, instrumentor):
    """With a glob, an include/exclude name a function does not have is ignored for that function."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:*[-card_number,-note]")
    with capture_usage() as usage:
        cart = shop.Cart()
        shop.checkout(cart, card_number="4111", note="secret")
        shop.charge(3)
    first, second = usage.logs
    assert [(r["function"], sorted(r["params"])) for r in first["data"]] == [(f"{mod}.checkout", ["cart"])]
    assert second["data"][0]["params"] == {"amount": 3}


def test_explicit_unknown_param_warns_and_leaves_function_alone(make_module, instrumentor, caplog):
    """Without a glob, naming a parameter the function lacks is a warning; the function is not wrapped."""
    mod = make_module()
    shop = importlib.import_module(mod)
    original = shop.charge
    instrumentor.instrument(probes=f"{mod}:charge[-card_nmber]")
    assert shop.charge is original
    assert f"Not probing charge (probe target '{mod}:charge[-card_nmber]' (probes=))" in caplog.text
    assert "card_nmber" in caplog.text


def test_exception_passes_through_unchanged(make_module, instrumentor):
    """The function's own exception reaches the caller as the same object, and is recorded."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:charge")
    with capture_usage() as usage, pytest.raises(ValueError, match="negative"):
        shop.charge(-1)
    (record,) = usage.logs[0]["data"]
    assert record["exception"] is True
    assert record["error"] == {"type": "ValueError", "message": "negative"}


def test_async_functions_and_generators(make_module, instrumentor):
    """Async functions and generators are wrapped like @traced_usage does (the span covers the iteration)."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:fetch,{mod}:numbers")
    with capture_usage() as usage:
        assert asyncio.run(shop.fetch(5)) == 5
        assert list(shop.numbers(3)) == [0, 1, 2]
    assert short(usage) == [["fetch"], ["numbers"]]
    assert inspect.iscoroutinefunction(shop.fetch)
    assert inspect.isgeneratorfunction(shop.numbers)


def test_wrapped_functions_keep_name_doc_and_signature(make_module, instrumentor):
    """The wrapper is transparent: name, qualname, module and signature stay the function's."""
    mod = make_module()
    shop = importlib.import_module(mod)
    before = inspect.signature(shop.Cart.add_item)
    instrumentor.instrument(probes=f"{mod}:Cart.add_item")
    assert shop.Cart.add_item.__name__ == "add_item"
    assert shop.Cart.add_item.__qualname__ == "Cart.add_item"
    assert inspect.signature(shop.Cart.add_item) == before


def test_nothing_is_recorded_while_instrumentation_is_suppressed(make_module, instrumentor):
    """Exporters deliver under suppression: a probed function they call records nothing there."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:charge, {mod}:Cart.total")
    with capture_usage() as usage:
        with suppress_instrumentation():
            assert shop.charge(1) == 1
            assert shop.Cart().total() == 0
        shop.charge(2)
    assert short(usage) == [["charge"]]


# --- late imports, uninstrument, double wrapping --------------------------------------------------


def test_module_imported_later_is_wrapped_on_import(make_module, instrumentor):
    """A target whose module is not imported yet is wrapped when it is, before the importer gets its names."""
    mod = make_module()
    assert mod not in sys.modules
    instrumentor.instrument(probes=f"{mod}:charge")
    assert mod in ProbeInstrumentor._pending
    charge = importlib.import_module(mod).charge  # like "from pkg.shop import charge"
    assert mod not in ProbeInstrumentor._pending
    with capture_usage() as usage:
        charge(2)
    assert short(usage) == [["charge"]]


def test_uninstrument_restores_the_original_objects_exactly(make_module, instrumentor):
    """uninstrument() puts back the very objects that were there (classmethod/staticmethod objects too)."""
    mod = make_module()
    shop = importlib.import_module(mod)
    cart_before = dict(vars(shop.Cart))
    module_before = dict(vars(shop))
    instrumentor.instrument(probes=f"{mod}:*, {mod}:Cart.*, {mod}:imported_function")
    assert vars(shop.Cart)["add_item"] is not cart_before["add_item"]
    instrumentor.uninstrument()
    assert dict(vars(shop.Cart)) == cart_before
    assert all(vars(shop.Cart)[k] is v for k, v in cart_before.items())
    assert all(vars(shop)[k] is v for k, v in module_before.items())
    assert ProbeInstrumentor._patches == {}
    with capture_usage() as usage:
        shop.place_order("u", 1)
    assert usage.logs == []


def test_late_import_after_uninstrument_wraps_nothing(make_module, instrumentor):
    """A post-import hook left from an uninstrumented generation does nothing."""
    mod = make_module()
    instrumentor.instrument(probes=f"{mod}:charge")
    instrumentor.uninstrument()
    shop = importlib.import_module(mod)
    assert inspect.isfunction(shop.charge)
    assert ProbeInstrumentor._patches == {}


def test_reinstrument_after_uninstrument(make_module, instrumentor):
    """instrument / uninstrument / instrument works, with one record per call."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:charge")
    instrumentor.uninstrument()
    instrumentor.instrument(probes=f"{mod}:charge")
    with capture_usage() as usage:
        shop.charge(1)
    assert short(usage) == [["charge"]]


def test_never_double_wraps(make_module, instrumentor):
    """Overlapping targets, a second reference to a wrapped function, and @traced_usage: one record per call."""
    mod = make_module(SHOP + "\nalias = charge\n")
    shop = importlib.import_module(mod)
    shop.decorated = traced_usage(lambda n: n)
    instrumentor.instrument(probes=f"{mod}:charge, {mod}:*, {mod}:charge=INFO, {mod}:alias, {mod}:decorated")
    assert sum(1 for (_, name) in ProbeInstrumentor._patches if name == "charge") == 1
    with capture_usage() as usage:
        shop.charge(1)
        shop.alias(2)
        shop.decorated(3)
    assert [len(log["data"]) for log in usage.logs] == [1, 1, 1]


def test_something_wrapped_on_top_is_left_but_turned_off(make_module, instrumentor):
    """If another wrapper was put over ours, uninstrument leaves it and our wrapper stops recording."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:charge")
    ours = shop.charge

    def outer(amount):
        return ours(amount)

    shop.charge = outer
    instrumentor.uninstrument()
    assert shop.charge is outer
    with capture_usage() as usage:
        assert shop.charge(2) == 2
    assert usage.logs == []


# --- bad targets -----------------------------------------------------------------------------------


def test_bad_targets_warn_naming_them_and_never_raise(make_module, instrumentor, caplog):
    """Missing attribute, a class, a non-function, a non-class owner, an empty glob: warnings, no crash."""
    mod = make_module()
    shop = importlib.import_module(mod)
    instrumentor.instrument(
        probes=f"{mod}:nope, {mod}:Cart, {mod}:LIMIT, {mod}:charge.x, {mod}:Cart.size, {mod}:zz_*, {mod}:Nope.*"
    )
    text = caplog.text
    assert f"Probe target '{mod}:nope' (probes=): module {mod} has no attribute 'nope'" in text
    assert f"Cart is a class; use {mod}:Cart.* for its methods" in text
    assert "LIMIT is not a function (int)" in text
    assert "charge is not a class" in text
    assert "Cart.size is not a function (property)" in text
    assert f"Probe target '{mod}:zz_*' (probes=) matches no function in {mod}" in text
    assert "has no attribute 'Nope'" in text
    assert shop.charge(1) == 1


LOCKED = """
class Locked(type):
    def __setattr__(cls, name, value):
        raise TypeError("this class cannot be changed")


class Vault(metaclass=Locked):
    def open(self):
        return "open"
"""


def test_a_class_that_refuses_the_wrapper_is_a_warning(make_module, instrumentor, caplog):
    """A class whose attributes cannot be set is left alone, with a warning naming the target."""
    mod = make_module(LOCKED)
    shop = importlib.import_module(mod)
    instrumentor.instrument(probes=f"{mod}:Vault.open")
    assert shop.Vault().open() == "open"
    assert f"Not probing Vault.open (probe target '{mod}:Vault.open' (probes=)): this class cannot be changed" in (
        caplog.text
    )
    assert ProbeInstrumentor._patches == {}


def test_own_packages_are_refused(instrumentor, caplog):
    """otel_usage and opentelemetry are never probed (recording the recorder would recurse)."""
    instrumentor.instrument(probes="otel_usage._pipeline:configure, opentelemetry.trace:get_tracer")
    assert ProbeInstrumentor._patches == {}
    assert "otel_usage does not probe its own machinery (otel_usage, opentelemetry, wrapt)" in caplog.text


def test_never_imported_module_is_reported_at_exit(instrumentor, caplog):
    """Targets whose module was never imported are named in a warning at exit."""
    instrumentor.instrument(probes="no_such_module_xyz:f, no_such_module_xyz:g")
    with caplog.at_level(logging.WARNING):
        probes_module._report_never_imported()
    assert "'no_such_module_xyz:f' (probes=), 'no_such_module_xyz:g' (probes=)" in caplog.text
    assert "module no_such_module_xyz was never imported" in caplog.text


# --- configuration ---------------------------------------------------------------------------------


def test_targets_come_from_the_environment_at_instrument_time(make_module, instrumentor, monkeypatch):
    """OTEL_USAGE_PROBES is read when instrument() runs, not at import."""
    mod = make_module()
    shop = importlib.import_module(mod)
    monkeypatch.setenv("OTEL_USAGE_PROBES", f"{mod}:charge=INFO")
    instrumentor.instrument()
    with capture_usage(level="INFO") as usage:
        shop.charge(1)
    assert usage.logs[0]["data"][0]["level"] == "INFO"


def test_explicit_arguments_win_over_the_environment(monkeypatch, tmp_path):
    """probes= / probes_file= replace the environment entirely."""
    monkeypatch.setenv("OTEL_USAGE_PROBES", "env:f")
    assert [t.text for t in targets_from_env("arg:g")] == ["arg:g"]
    assert [t.module for t in targets_from_env(["arg:g", ProbeTarget("obj", "h")])] == ["arg", "obj"]
    assert [t.text for t in targets_from_env()] == ["env:f"]
    monkeypatch.setenv("OTEL_USAGE_PROBES", "  ")
    assert targets_from_env() == []


PROBES_TOML = """
probes = ["a:f=INFO[x]", "b:*"]

[[probe]]
target = "c:C.*"
level = "debug"
include = ["amount"]
exclude = ["card_number"]
record_return = true

[[probe]]
target = "d:g=INFO[-y]"
"""


def test_probes_file(tmp_path, monkeypatch):
    """OTEL_USAGE_PROBES_FILE: a probes list and [[probe]] tables, added after OTEL_USAGE_PROBES."""
    path = tmp_path / "probes.toml"
    path.write_text(PROBES_TOML)
    monkeypatch.setenv("OTEL_USAGE_PROBES", "z:z")
    monkeypatch.setenv("OTEL_USAGE_PROBES_FILE", str(path))
    targets = targets_from_env()
    assert [(t.module, t.qualname, t.level.name, t.include, t.exclude, t.record_return) for t in targets] == [
        ("z", "z", "DEFAULT", None, (), False),
        ("a", "f", "INFO", ("x",), (), False),
        ("b", "*", "DEFAULT", None, (), False),
        ("c", "C.*", "DEBUG", ("amount",), ("card_number",), True),
        ("d", "g", "INFO", None, ("y",), False),
    ]
    assert targets[1].source == f"OTEL_USAGE_PROBES_FILE={path}"


def test_probes_file_in_pyproject_table(tmp_path):
    """A [tool.otel_usage] table is read, so pyproject.toml can hold the probes."""
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.otel_usage]\nprobes = ["a:f"]\n')
    assert [t.text for t in load_probes_file(path)] == ["a:f"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "Ignoring probes file"),
        ("probes = [", "Ignoring probes file"),
        ("probes = 3", "expected a list of strings"),
        ("probes = [3]", "expected a string"),
        ('[[probe]]\nlevel = "INFO"', "missing 'target'"),
        ('[[probe]]\ntarget = "a:f"\ncolour = "red"', "unknown keys colour"),
        ('[[probe]]\ntarget = "a:f"\ninclude = "x y"', "expected a list of parameter names"),
        ('[[probe]]\ntarget = "a:f"\nlevel = "LOUD"', "not a usage level"),
        ('[[probe]]\ntarget = "a:f"\nrecord_return = "yes"', "record_return must be true or false"),
        ('[[probe]]\ntarget = "nonsense"', "expected module:qualname"),
        ("other = 1", "ignoring unknown keys other"),
    ],
)
def test_bad_probes_file_warns(tmp_path, caplog, content, message):
    """A missing or invalid file, or a bad entry, is a warning naming the file; the good entries stay."""
    path = tmp_path / "probes.toml"
    if content is not None:
        path.write_text(content)
    load_probes_file(path)
    assert message in caplog.text
    assert str(path) in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"probes": "nonsense"},
        {"probes": "a:f=LOUD"},
        {"probes": ["a:f", 3]},
        {"probes": 5},
        {"probes_file": "/no/such/probes.toml"},
    ],
)
def test_bad_explicit_arguments_raise(instrumentor, kwargs):
    """A bad explicit argument is a ValueError at instrument() and leaves the instrumentor uninstrumented."""
    with pytest.raises(ValueError):
        instrumentor.instrument(**kwargs)
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert ProbeInstrumentor._patches == {}


def test_sdk_disabled_wraps_nothing(make_module, instrumentor, monkeypatch):
    """With OTEL_SDK_DISABLED=true no function is wrapped at all."""
    mod = make_module()
    shop = importlib.import_module(mod)
    original = shop.charge
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    instrumentor.instrument(probes=f"{mod}:charge")
    assert shop.charge is original


def test_instrumentation_dependencies_are_empty():
    """Nothing gates the probe instrumentor on the auto-instrumentation path."""
    assert list(ProbeInstrumentor().instrumentation_dependencies()) == []
