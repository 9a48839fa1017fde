"""Zero-code mode: ``opentelemetry-instrument python app.py`` with probes named in the environment.

The application (``examples/zero_code_app.py``) imports nothing of otel_usage. Every test runs the real
command from the active interpreter's bin directory in a fresh temporary working directory, and reads the
usage logs it wrote. OpenTelemetry's providers are process-global, so everything runs in subprocesses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_usage import environment_variables as ev

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "zero_code_app.py"
BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"
PROBES = "zero_code_shop.orders:*[-gift_message],zero_code_shop.cart:Cart.*=INFO"
APP_OUTPUT = "alice pays 4.25\nbob pays 6.0\ncarol: card refused for 4.5\nalice's orders [4.25]\n"
HAS_OTEL_DISTRO = importlib.util.find_spec("opentelemetry.distro") is not None

pytestmark = pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument is not installed")


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST", "COV_"))}
    full["PATH"] = f"{BIN}{os.pathsep}{full.get('PATH', '')}"  # opentelemetry-instrument finds python on PATH
    full.pop("PYTHONPATH", None)
    full.update(env or {})
    return full


def instrument(
    cwd: Path, env: dict[str, str] | None = None, flags: tuple[str, ...] = (), app: Path = APP
) -> subprocess.CompletedProcess[str]:
    """Run ``opentelemetry-instrument [flags] python app`` in ``cwd``."""
    return subprocess.run(
        [str(INSTRUMENT), *flags, "python", str(app)],
        cwd=cwd,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def usage_logs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calls(logs: list[dict]) -> list[list[tuple[str, int]]]:
    return [[(r["function"].removeprefix("zero_code_shop."), r["depth"]) for r in log["data"]] for log in logs]


DEFAULT_CALLS = [
    [("orders.checkout", 0), ("orders.place_order", 1), ("orders.charge", 2)],
    [("orders.checkout", 0), ("orders.place_order", 1), ("orders.charge", 2)],
    [("orders.checkout", 0), ("orders.place_order", 1), ("orders.charge", 2)],
    [("orders.list_orders", 0)],
]

INFO_CHECKOUT = [
    ("orders.checkout", 0),
    ("cart.Cart.add_item", 1),
    ("cart.Cart.add_item", 1),
    ("orders.place_order", 1),
    ("cart.Cart.total", 2),
    ("orders.charge", 2),
]


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    """The application ran exactly as without instrumentation, and nothing of ours failed."""
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == APP_OUTPUT, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "otel_usage internal error" not in proc.stderr, proc.stderr


def test_app_runs_plainly_without_instrumentation(tmp_path):
    """The example is an ordinary program: it runs without opentelemetry-instrument and writes nothing."""
    proc = subprocess.run(
        [sys.executable, str(APP)], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == APP_OUTPUT
    assert list(tmp_path.iterdir()) == []
    sources = [APP, *sorted((APP.parent / "zero_code_shop").glob("*.py"))]
    assert not any(re.search(r"^\s*(import|from)\s+otel_usage", p.read_text(), re.M) for p in sources)


def test_usage_logs_in_usage_jsonl(tmp_path):
    """OTEL_USAGE_PROBES + opentelemetry-instrument: one usage log per user action in ./usage.jsonl."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, "OTEL_SERVICE_NAME": "shop"})
    assert_clean(proc)
    # Nothing on stderr but OpenTelemetry's own note that it skipped another installed configurator.
    assert [line for line in proc.stderr.splitlines() if not line.startswith("Configuration of ")] == []
    logs = usage_logs(tmp_path / "usage.jsonl")
    assert calls(logs) == DEFAULT_CALLS
    alice, _bob, carol, orders = logs
    assert alice["data"][0]["params"] == {
        "user": "alice",
        "items": {"apple": 4, "bread": 1},
        "card_number": "[REDACTED]",
    }  # gift_message left out by [-gift_message], card_number redacted by default
    assert alice["service"] == "shop"
    assert alice["status"] == "ok"
    assert carol["status"] == "error"
    assert carol["data"][2]["error"] == {"type": "PaymentDeclined", "message": "card refused for 4.5"}
    assert orders["data"][0]["params"] == {"user": "alice"}
    assert len({log["trace_id"] for log in logs}) == 4


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({ev.OTEL_USAGE_LEVEL: "INFO"}, INFO_CHECKOUT),
        ({ev.OTEL_USAGE_LEVEL: "info"}, INFO_CHECKOUT),
        ({"OTEL_TRACES_SAMPLER": "usage_level", "OTEL_TRACES_SAMPLER_ARG": "INFO"}, INFO_CHECKOUT),
        ({ev.OTEL_USAGE_LEVEL: "DEFAULT"}, DEFAULT_CALLS[0]),
        ({ev.OTEL_USAGE_LEVEL: "NONE"}, None),
        ({"OTEL_TRACES_SAMPLER": "usage_level", "OTEL_TRACES_SAMPLER_ARG": "NONE"}, None),
    ],
)
def test_level_threshold(tmp_path, env, expected):
    """OTEL_USAGE_LEVEL (or the usage_level sampler's argument) decides which probes are recorded."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, **env})
    assert_clean(proc)
    logs = usage_logs(tmp_path / "usage.jsonl")
    if expected is None:
        assert logs == []
        return
    assert calls(logs)[0] == expected
    cart_records = [r for r in logs[0]["data"] if ".Cart." in r["function"]]
    assert all(r["class_name"] == "Cart" and r["level"] == "INFO" for r in cart_records)


def test_bad_level_warns_and_uses_the_default(tmp_path):
    """A bad OTEL_USAGE_LEVEL is a warning naming the variable; the default threshold applies."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, ev.OTEL_USAGE_LEVEL: "LOUD"})
    assert proc.returncode == 0
    assert "OTEL_USAGE_LEVEL='LOUD'" in proc.stderr
    assert calls(usage_logs(tmp_path / "usage.jsonl")) == DEFAULT_CALLS


def test_usage_flags_of_opentelemetry_instrument(tmp_path):
    """Every OTEL_USAGE_* variable is also an opentelemetry-instrument --usage_* flag."""
    flags = (
        "--usage_level",
        "INFO",
        "--usage_probes",
        PROBES,
        "--usage_file_path",
        str(tmp_path / "logs" / "shop.jsonl"),
    )
    proc = instrument(tmp_path, flags=flags)
    assert_clean(proc)
    assert not (tmp_path / "usage.jsonl").exists()
    assert calls(usage_logs(tmp_path / "logs" / "shop.jsonl"))[0] == INFO_CHECKOUT


def test_every_variable_is_a_flag():
    """opentelemetry-instrument --help lists a --usage_* flag for every OTEL_USAGE_* constant."""
    proc = subprocess.run(
        [str(INSTRUMENT), "--help"], env=clean_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    names = [name for name in dir(ev) if name.startswith("OTEL_USAGE_")]
    assert names
    for name in names:
        assert f"--{name.removeprefix('OTEL_').lower()}" in proc.stdout


@pytest.mark.parametrize("disabled", ["otel_usage_probes", "flask, otel_usage_probes", "*"])
def test_disabled_instrumentation(tmp_path, disabled):
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_usage_probes: no probe is installed, no usage log."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled})
    assert_clean(proc)
    assert usage_logs(tmp_path / "usage.jsonl") == []


def test_sdk_disabled(tmp_path):
    """OTEL_SDK_DISABLED=true: the application runs unchanged and nothing is recorded."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, "OTEL_SDK_DISABLED": "true"})
    assert_clean(proc)
    assert usage_logs(tmp_path / "usage.jsonl") == []


def test_console_exporter_and_resource_attributes(tmp_path):
    """OTEL_USAGE_EXPORTERS=console prints the logs; OTEL_RESOURCE_ATTRIBUTES' service.name is the service."""
    proc = instrument(
        tmp_path,
        {
            ev.OTEL_USAGE_PROBES: "zero_code_shop.orders:list_orders",
            ev.OTEL_USAGE_EXPORTERS: "console",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=shop-eu,deployment.environment=test",
        },
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    (log,) = [json.loads(line) for line in lines]
    assert log["service"] == "shop-eu"
    assert log["data"][0]["function"] == "zero_code_shop.orders.list_orders"
    assert not (tmp_path / "usage.jsonl").exists()


def test_stock_and_usage_file_exporters_together_warn(tmp_path):
    """OTEL_LOGS_EXPORTER=usage_file next to the default usage file exporter: a warning (each log written twice)."""
    env = {ev.OTEL_USAGE_PROBES: "zero_code_shop.orders:list_orders", "OTEL_LOGS_EXPORTER": "usage_file"}
    proc = instrument(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "OTEL_LOGS_EXPORTER=usage_file and OTEL_USAGE_EXPORTERS both deliver usage logs" in proc.stderr
    assert len(usage_logs(tmp_path / "usage.jsonl")) == 2


def test_unknown_exporter_is_one_loud_line_at_start_and_the_other_sinks_run(tmp_path):
    """OTEL_USAGE_EXPORTERS naming no exporter: one warning naming it and the valid names, no traceback; the
    known sinks still record."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, ev.OTEL_USAGE_EXPORTERS: "file,bogus"})
    assert proc.returncode == 0  # OpenTelemetry never stops the application
    assert proc.stdout == APP_OUTPUT
    (line,) = [line for line in proc.stderr.splitlines() if "bogus" in line]
    assert "unknown usage exporter 'bogus' (expected file, sql, otlp, console or none)" in line
    assert "Traceback" not in proc.stderr
    assert len(usage_logs(tmp_path / "usage.jsonl")) > 0


def test_bad_and_missing_targets_warn_by_name(tmp_path):
    """A target naming nothing is a warning naming it; the good targets still work."""
    env = {
        ev.OTEL_USAGE_PROBES: "zero_code_shop.orders:nope, zero_code_shop.orders:list_orders, bad target, "
        "zero_code_shop.nothere:f"
    }
    proc = instrument(tmp_path, env)
    assert_clean(proc)
    assert "Probe target 'zero_code_shop.orders:nope' (OTEL_USAGE_PROBES)" in proc.stderr
    assert "has no attribute 'nope'" in proc.stderr
    assert "Ignoring probe target 'bad target' in OTEL_USAGE_PROBES" in proc.stderr
    assert "module zero_code_shop.nothere was never imported" in proc.stderr
    assert calls(usage_logs(tmp_path / "usage.jsonl")) == [[("orders.list_orders", 0)]]


LINGERING_APP = """
import sys, time
sys.path.insert(0, {examples!r})
from zero_code_shop.orders import list_orders
list_orders("alice")
time.sleep(1.5)  # several export rounds
"""


def test_probing_what_the_exporter_calls_does_not_loop(tmp_path):
    """Probing json.dumps, which the console exporter calls, records the application's calls only.

    Exporters deliver with instrumentation suppressed and probes record nothing then; otherwise each
    export would record a json.dumps call, whose usage log would be exported, and so on forever.
    """
    app = tmp_path / "lingering.py"
    app.write_text(LINGERING_APP.format(examples=str(APP.parent)))
    env = {
        ev.OTEL_USAGE_PROBES: "json:dumps, zero_code_shop.orders:list_orders",
        ev.OTEL_USAGE_EXPORTERS: "console",
        ev.OTEL_USAGE_EXPORT_DELAY_MILLIS: "50",
        ev.OTEL_USAGE_SCHEDULE_DELAY_MILLIS: "20",
    }
    proc = instrument(tmp_path, env, app=app)
    assert proc.returncode == 0, proc.stderr
    logs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert calls(logs) == [[("orders.list_orders", 0)]]


def test_probes_file(tmp_path):
    """OTEL_USAGE_PROBES_FILE holds long lists of targets in TOML."""
    (tmp_path / "probes.toml").write_text(
        textwrap.dedent(
            """
            probes = ["zero_code_shop.orders:checkout"]

            [[probe]]
            target = "zero_code_shop.cart:Cart.add_item"
            level = "DEFAULT"
            include = ["item_id"]
            """
        )
    )
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES_FILE: "probes.toml"})
    assert_clean(proc)
    logs = usage_logs(tmp_path / "usage.jsonl")
    assert calls(logs)[0] == [("orders.checkout", 0), ("cart.Cart.add_item", 1), ("cart.Cart.add_item", 1)]
    assert logs[0]["data"][1]["params"] == {"item_id": "apple"}


def test_trace_export_stays_off_by_default(tmp_path):
    """The distro turns trace export off unless asked; OTEL_TRACES_EXPORTER=console turns it on."""
    env = {ev.OTEL_USAGE_PROBES: "zero_code_shop.orders:list_orders"}
    quiet = instrument(tmp_path, env)
    assert_clean(quiet)
    loud = instrument(tmp_path, {**env, "OTEL_TRACES_EXPORTER": "console"})
    assert loud.returncode == 0, loud.stderr
    assert '"name": "zero_code_shop.orders.list_orders"' in loud.stdout


APP_USING_THE_API = """
import json, sys
sys.path.insert(0, {examples!r})
import otel_usage
from zero_code_shop.orders import list_orders

pipeline = otel_usage.get_pipeline()
assert pipeline is not None, "the configurator installed no pipeline"
assert otel_usage.configure() is pipeline   # a later configure() extends the same pipeline
list_orders("alice")
assert otel_usage.force_flush()
from opentelemetry import trace
print(json.dumps({{
    "sampler": trace.get_tracer_provider().sampler.get_description(),
    "emitted": otel_usage.stats()["logs_emitted"],
    "level": otel_usage.get_level().name,
}}))
"""


def test_pipeline_is_the_one_the_api_controls(tmp_path):
    """Under the configurator, get_pipeline(), configure(), force_flush() and stats() act on its pipeline."""
    app = tmp_path / "api_app.py"
    app.write_text(APP_USING_THE_API.format(examples=str(APP.parent)))
    proc = instrument(
        tmp_path,
        {
            ev.OTEL_USAGE_PROBES: "zero_code_shop.orders:list_orders",
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0",
        },
        app=app,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["sampler"].startswith("LevelSampler{") and "TraceIdRatioBased{0.0}" in result["sampler"]
    assert result["emitted"] == 1  # trace sampling at 0 does not thin usage logs (RECORD_ONLY)
    assert result["level"] == "DEFAULT"
    assert calls(usage_logs(tmp_path / "usage.jsonl")) == [[("orders.list_orders", 0)]]


# --- with opentelemetry-distro installed too ---------------------------------------------------------

needs_otel_distro = pytest.mark.skipif(not HAS_OTEL_DISTRO, reason="opentelemetry-distro is not installed")
NO_OTLP = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}


@needs_otel_distro
@pytest.mark.parametrize(
    "selection",
    [
        {"OTEL_PYTHON_DISTRO": "otel_usage", "OTEL_PYTHON_CONFIGURATOR": "otel_usage"},
        {"OTEL_PYTHON_DISTRO": "otel_usage"},  # the otel_usage distro selects its configurator
    ],
)
def test_with_opentelemetry_distro_selected_by_name(tmp_path, selection):
    """With opentelemetry-distro installed, selecting otel_usage gives the full set-up and no OTLP export."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, ev.OTEL_USAGE_LEVEL: "INFO", **selection})
    assert_clean(proc)
    assert "localhost:4317" not in proc.stderr and "UNAVAILABLE" not in proc.stderr
    assert calls(usage_logs(tmp_path / "usage.jsonl"))[0] == INFO_CHECKOUT


@needs_otel_distro
def test_with_opentelemetry_distro_whichever_is_found_first(tmp_path):
    """Nothing selected: whichever distro and configurator come first, usage logs are written."""
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, **NO_OTLP})
    assert_clean(proc)
    assert calls(usage_logs(tmp_path / "usage.jsonl")) == DEFAULT_CALLS


@needs_otel_distro
@pytest.mark.parametrize("configurator_env", [{"OTEL_PYTHON_CONFIGURATOR": "configurator"}, {}])
def test_with_opentelemetry_distros_configurator(tmp_path, configurator_env):
    """opentelemetry-distro's distro and configurator chosen: the usage pipeline is added to its providers."""
    env = {ev.OTEL_USAGE_PROBES: PROBES, ev.OTEL_USAGE_LEVEL: "INFO", "OTEL_PYTHON_DISTRO": "distro", **NO_OTLP}
    proc = instrument(tmp_path, {**env, **configurator_env})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == APP_OUTPUT
    assert "Traceback" not in proc.stderr
    assert calls(usage_logs(tmp_path / "usage.jsonl"))[0] == INFO_CHECKOUT
    if configurator_env:  # chosen on purpose: no warning
        assert "OTEL_PYTHON_CONFIGURATOR=otel_usage" not in proc.stderr


def listed_first(tmp_path: Path, groups: dict[str, str]) -> dict[str, str]:
    """A distribution on PYTHONPATH, so importlib.metadata lists its entry points before site-packages'."""
    site = tmp_path / "first"
    dist = site / "listed_first-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: listed-first\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("".join(f"[{group}]\n{entry}\n\n" for group, entry in groups.items()))
    return {"PYTHONPATH": str(site)}


@needs_otel_distro
def test_opentelemetry_distro_and_configurator_found_first(tmp_path):
    """opentelemetry-distro's distro and configurator listed first, nothing selected: the post-instrument hook
    adds the usage pipeline to the providers its configurator built, and says what to set."""
    first = listed_first(
        tmp_path,
        {
            "opentelemetry_distro": "distro = opentelemetry.distro:OpenTelemetryDistro",
            "opentelemetry_configurator": "configurator = opentelemetry.distro:OpenTelemetryConfigurator",
        },
    )
    proc = instrument(tmp_path, {ev.OTEL_USAGE_PROBES: PROBES, ev.OTEL_USAGE_LEVEL: "INFO", **NO_OTLP, **first})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == APP_OUTPUT
    assert "Configuration of otel_usage not loaded, configurator already loaded" in proc.stderr
    assert "set OTEL_PYTHON_CONFIGURATOR=otel_usage and OTEL_PYTHON_DISTRO=otel_usage" in proc.stderr
    assert calls(usage_logs(tmp_path / "usage.jsonl"))[0] == INFO_CHECKOUT


@needs_otel_distro
def test_opentelemetry_distro_found_first_with_otel_usage_configurator(tmp_path):
    """opentelemetry-distro's distro listed first, otel_usage's configurator runs: full pipeline, and a
    warning that another distro's defaults apply."""
    first = listed_first(tmp_path, {"opentelemetry_distro": "distro = opentelemetry.distro:OpenTelemetryDistro"})
    env = {ev.OTEL_USAGE_PROBES: PROBES, "OTEL_PYTHON_CONFIGURATOR": "otel_usage", **NO_OTLP, **first}
    proc = instrument(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "Set OTEL_PYTHON_DISTRO=otel_usage" in proc.stderr
    assert calls(usage_logs(tmp_path / "usage.jsonl")) == DEFAULT_CALLS


# --- pieces in isolation -------------------------------------------------------------------------------


def test_distro_defaults_never_override_the_user(monkeypatch):
    """The distro sets its defaults only where the variable is unset."""
    from otel_usage._distro import DEFAULTS, UsageDistro

    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    UsageDistro().configure()
    assert os.environ["OTEL_TRACES_EXPORTER"] == "otlp"
    assert os.environ["OTEL_PYTHON_CONFIGURATOR"] == "otel_usage"
    assert os.environ["OTEL_METRICS_EXPORTER"] == "none"
    assert os.environ["OTEL_LOGS_EXPORTER"] == "none"
    assert os.environ[ev.OTEL_USAGE_EXPORTERS] == "file"


CONFIG_FILE_APP = """
import sys, types, json
from opentelemetry import trace, _logs
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk._logs import LoggerProvider

fake = types.ModuleType("opentelemetry.configuration")
fake.load_config_file = lambda path: {"path": path}
def configure_sdk(config):
    trace.set_tracer_provider(TracerProvider())
    _logs.set_logger_provider(LoggerProvider())
fake.configure_sdk = configure_sdk
sys.modules["opentelemetry.configuration"] = fake

from otel_usage._configurator import UsageConfigurator
from otel_usage import traced_usage
import otel_usage

UsageConfigurator().configure()

@traced_usage
def work():
    return 1

work()
otel_usage.force_flush()
"""


def test_config_file_falls_back_to_adding_the_processor(tmp_path):
    """With OTEL_CONFIG_FILE the providers come from the file and the usage processor is added to them."""
    script = tmp_path / "app.py"
    script.write_text(CONFIG_FILE_APP)
    env = {"OTEL_CONFIG_FILE": "otel.yaml", ev.OTEL_USAGE_EXPORTERS: "console"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=clean_env(env), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    (log,) = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert re.fullmatch(r".*\.work", log["data"][0]["function"])
