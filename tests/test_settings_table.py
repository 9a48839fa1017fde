"""The settings mechanism (``otel_usage._settings``) and the table (``otel_usage._config``).

Explicit argument > environment variable > default; a bad argument raises, a bad variable warns once and
falls back to the default; bounds and choices; and the table agrees with the variables' documentation.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest

from otel_usage import _config
from otel_usage import environment_variables as ev
from otel_usage._levels import Level
from otel_usage._settings import WARNED, Boolean, Choice, Integer, Names, Setting, Text

VAR = "OTEL_USAGE_TEST_SETTING"
OTHER = "OTEL_USAGE_TEST_GENERAL_SETTING"

COUNT = Integer("count", VAR, 10, minimum=1, maximum=100)


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    WARNED.clear()
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv(OTHER, raising=False)


def warnings_about(caplog: pytest.LogCaptureFixture, variable: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and variable in r.getMessage()]


def test_explicit_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert COUNT.resolve() == 10
    monkeypatch.setenv(VAR, " 20 ")
    assert COUNT.resolve() == 20
    assert COUNT.resolve(30) == 30
    assert COUNT.resolve(None) == 20


@pytest.mark.parametrize("raw", ["", "   "])
def test_blank_variable_is_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, raw: str
) -> None:
    monkeypatch.setenv(VAR, raw)
    assert COUNT.resolve() == 10
    assert not warnings_about(caplog, VAR)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "count must be an integer from 1 to 100, got 0"),
        (101, "count must be an integer from 1 to 100, got 101"),
        (True, "count must be an integer from 1 to 100, got True"),
        ("5", "count must be an integer from 1 to 100, got '5'"),
        (2.0, "count must be an integer from 1 to 100, got 2.0"),
    ],
)
def test_bad_explicit_argument_raises_naming_it(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        COUNT.resolve(value)


def test_bounds_in_the_message() -> None:
    with pytest.raises(ValueError, match=r"^n must be an integer >= 0, got -1$"):
        Integer("n", None, 0, minimum=0).resolve(-1)
    with pytest.raises(ValueError, match=r"^n must be an integer <= 9, got 10$"):
        Integer("n", None, 0, maximum=9).resolve(10)
    with pytest.raises(ValueError, match=r"^n must be an integer, got 'x'$"):
        Integer("n", None, 0).resolve("x")
    assert Integer("n", None, 0).resolve(-(10**30)) == -(10**30)  # unbounded


@pytest.mark.parametrize(
    ("raw", "why"),
    [("0", "must be >= 1"), ("101", "must be <= 100"), ("many", "invalid literal for int() with base 10: 'many'")],
)
def test_bad_variable_warns_once_and_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, raw: str, why: str
) -> None:
    monkeypatch.setenv(VAR, raw)
    with caplog.at_level(logging.WARNING):
        assert COUNT.resolve() == 10
        assert COUNT.resolve() == 10
    assert warnings_about(caplog, VAR) == [f"otel_usage: ignoring {VAR}={raw!r} ({why}); using the default 10"]


def test_another_bad_value_is_another_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for raw in ("0", "-1", "0"):
            monkeypatch.setenv(VAR, raw)
            assert COUNT.resolve() == 10
    assert len(warnings_about(caplog, VAR)) == 2


def test_a_bad_variable_does_not_matter_to_an_explicit_argument(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(VAR, "bad")
    assert COUNT.resolve(5) == 5
    assert not warnings_about(caplog, VAR)


def test_argument_minimum_is_the_bound_of_arguments_only(monkeypatch: pytest.MonkeyPatch) -> None:
    lax = Integer("size", VAR, 100, minimum=64, argument_minimum=1)
    assert lax.resolve(2) == 2
    with pytest.raises(ValueError, match=r"size must be an integer >= 1, got 0"):
        lax.resolve(0)
    monkeypatch.setenv(VAR, "2")
    assert lax.resolve() == 100


def test_a_setting_without_a_variable_is_explicit_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    setting = Integer("n", None, 7, minimum=1)
    assert setting.resolve() == 7
    assert setting.resolve(3) == 3


def test_boolean(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    flag = Boolean("flag", VAR, False)
    for raw, expected in [("1", True), ("YES", True), ("on", True), ("off", False), ("No", False)]:
        monkeypatch.setenv(VAR, raw)
        assert flag.resolve() is expected
    monkeypatch.setenv(VAR, "maybe")
    assert flag.resolve() is False
    assert "(expected true or false)" in caplog.text
    assert flag.resolve(True) is True
    with pytest.raises(ValueError, match=r"^flag must be a bool, got 1$"):
        flag.resolve(1)


def test_choice(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    mode = Choice("mode", VAR, "fast", choices=("fast", "safe"))
    monkeypatch.setenv(VAR, " SAFE ")
    assert mode.resolve() == "safe"
    monkeypatch.setenv(VAR, "sideways")
    assert mode.resolve() == "fast"
    assert "ignoring OTEL_USAGE_TEST_SETTING='sideways' (expected one of fast, safe); using the default 'fast'" in (
        caplog.text
    )
    assert mode.resolve(" Safe") == "safe"
    with pytest.raises(ValueError, match=r"^mode must be one of fast, safe, got 'slow'$"):
        mode.resolve("slow")


def test_text_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    text = Text("path", VAR, "here")
    names = Names("keys", OTHER, ("a",))
    monkeypatch.setenv(VAR, "  there ")
    monkeypatch.setenv(OTHER, " x, y,, ")
    assert (text.resolve(), names.resolve()) == ("there", ("x", "y"))
    assert names.resolve("p,q") == ("p", "q")
    assert names.resolve(["r"]) == ("r",)
    with pytest.raises(ValueError, match="keys must be strings"):
        names.resolve([1])
    with pytest.raises(ValueError, match="path must be a string"):
        text.resolve(3)


def test_fallback_is_read_only_when_the_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    general = Choice("protocol", OTHER, "a", choices=("a", "b"))
    specific = Choice("protocol", VAR, "a", choices=("a", "b"), fallback=general)
    monkeypatch.setenv(OTHER, "b")
    assert specific.resolve() == "b"
    monkeypatch.setenv(VAR, "a")
    assert specific.resolve() == "a"
    monkeypatch.setenv(VAR, "z")  # bad: the default, not the general variable
    assert specific.resolve() == "a"


def test_a_parser_of_its_own(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def even(raw: object) -> int:
        value = int(str(raw))
        if value % 2:
            raise ValueError("not even")
        return value

    setting: Setting[int] = Setting("even", VAR, 0, parser=even)
    monkeypatch.setenv(VAR, "3")
    assert setting.resolve() == 0
    assert "(not even)" in caplog.text
    assert setting.resolve(4) == 4
    with pytest.raises(ValueError, match="not even"):
        setting.resolve(5)


# --- The table ------------------------------------------------------------------------------------------


def test_core_settings_has_one_setting_per_field() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(_config.CoreSettings)}
    assert fields == {name: setting.default for name, setting in _config.CORE.items()}
    assert all(setting.name == name for name, setting in _config.CORE.items())


def test_every_variable_of_the_table_is_a_documented_constant() -> None:
    for setting in _config.SETTINGS:
        if setting.variable is not None and setting.variable.startswith("OTEL_USAGE_"):
            assert getattr(ev, setting.variable) == setting.variable


def _documented_default(variable: str) -> str:
    from tests.test_readme_config_table import documented, row

    docs = {name: doc for _, variables in documented() for name, doc in variables}
    return row(variable, docs[variable]).split(" | ")[1]


def _shown(default: object) -> str | None:
    """How the documentation writes a default (None: in words, such as "empty" or "unset")."""
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, Level):
        return f"`{default.name}`"
    if isinstance(default, int):
        return f"`{default}`"
    if isinstance(default, tuple) and default:
        return f"`{','.join(default)}`"
    return f"`{default}`" if isinstance(default, str) and default else None


@pytest.mark.parametrize(
    "setting",
    [s for s in _config.SETTINGS if s.variable and s.variable.startswith("OTEL_USAGE_") and _shown(s.default)],
    ids=lambda s: str(s.variable),
)
def test_the_default_is_the_documented_one(setting: Setting[object]) -> None:
    """The Default column of the README (generated from environment_variables.py) says the table's default."""
    assert _documented_default(str(setting.variable)).startswith(str(_shown(setting.default)))
