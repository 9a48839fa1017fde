"""``otel-usage demo``: the notes app under simulated users, end to end, and the command line around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from otel_usage.cli import main
from otel_usage.cli._demo import summarize
from otel_usage.exporters.sql import SqlUsageExporter

ROOT = Path(__file__).resolve().parents[1]


def run_demo(out: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m otel_usage demo`` for 2 s with 3 users, writing to ``out``, run from its parent."""
    command = [sys.executable, "-m", "otel_usage", "demo", "--seconds", "2", "--users", "3", "--out", str(out)]
    return subprocess.run(
        [*command, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=out.parent,
        env={**os.environ, "COLUMNS": "250"},
    )


def test_demo_end_to_end(tmp_path: Path) -> None:
    """A short demo run serves real HTTP, stores one log per tracked request in SQLite and JSONL, and
    prints a summary computed from the stored logs."""
    out = tmp_path / "demo"
    proc = run_demo(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for heading in ("usage logs written", "Top users", "Top endpoints", "Slowest functions", str(out / "usage.db")):
        assert heading in proc.stdout, proc.stdout
    jsonl = [json.loads(line) for line in (out / "usage.jsonl").read_text().splitlines()]
    sql = SqlUsageExporter(f"sqlite:///{out / 'usage.db'}", columns="request.username=user_name")
    try:
        stored = sql.get_usage(limit=100_000)
        alice = sql.get_usage(limit=100_000, user_name="alice")
    finally:
        sql.shutdown()
    assert len(jsonl) == len(stored) > 50
    assert f"{len(stored)} usage logs written" in " ".join(proc.stdout.split())
    assert {log["span_id"] for log in jsonl} == {log["span_id"] for log in stored}
    assert alice and all(log["request"]["username"] == "alice" for log in alice)
    endpoints = {log["request"]["endpoint"] for log in stored}
    assert {"notes.show", "auth.login"} <= endpoints
    assert not endpoints & {"health", "static"}  # excluded: no usage log
    for log in stored:
        request = log["request"]
        assert request["client_ip"].startswith("203.0.113.") and request["remote_addr"] == "127.0.0.1"
        assert request["visitor"] and request["user_agent"]["browser"]
    shows = [log for log in stored if log["request"]["endpoint"] == "notes.show" and log["request"]["status"] == 200]
    assert shows and shows[0]["data"][1]["function"] == "notes_app.services.get_note"


def test_summarize_counts_users_endpoints_and_functions() -> None:
    """The summary ranks users and endpoints by requests and functions by mean duration."""

    def log(user: str | None, endpoint: str | None, duration: float, calls: list[tuple[str, float]]) -> dict:
        data = [{"function": "GET x", "level": None, "duration": duration}]
        data += [{"function": f, "level": "DEFAULT", "duration": d} for f, d in calls]
        return {
            "request": {"username": user, "endpoint": endpoint, "status": 200, "visitor": user},
            "duration": duration,
            "status": "ok",
            "data": data,
        }

    logs = [
        log("alice", "notes.show", 0.01, [("get_note", 0.002)]),
        log("alice", "notes.show", 0.03, [("get_note", 0.004), ("render", 0.02)]),
        log(None, None, 0.001, []),
    ]
    summary = summarize(logs)
    assert summary.logs == 3 and summary.visitors == 1 and summary.errors == 0
    assert summary.users == [("alice", 2), ("(anonymous)", 1)]
    assert summary.endpoints[0] == ("notes.show", 2, 0.02)
    assert [f[0] for f in summary.functions] == ["render", "get_note"]
    assert summary.functions[1] == ("get_note", 2, 0.003, 0.004)
    assert summary.statuses == {200: 3}


def test_command_line_help_and_errors(tmp_path: Path, capsys) -> None:
    """``otel-usage`` without a command shows the help; bad options and a missing app fail cleanly."""
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
    assert main(["demo", "--help"]) == 0
    assert "--seconds" in capsys.readouterr().out
    assert main(["demo", "--seconds", "-1"]) == 2
    assert main(["nonsense"]) == 2
    assert main(["demo", "--app-dir", str(tmp_path / "nowhere"), "--no-progress", "--out", str(tmp_path)]) == 1
    assert "--app-dir" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    """The ``otel-usage`` console script runs (installed with the package)."""
    script = Path(sys.executable).parent / "otel-usage"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("otel-usage "), proc.stderr


def test_notes_app_runs_on_its_own(tmp_path: Path) -> None:
    """``python examples/notes_app`` serves the app and writes usage logs to ./usage.jsonl at exit."""
    import os
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "notes_app"), "--port", str(port), "--db", "notes.db"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the notes app did not start"
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    logs = [json.loads(line) for line in (tmp_path / "usage.jsonl").read_text().splitlines()]
    assert [log["request"]["endpoint"] for log in logs] == ["auth.login"], stderr


def test_demo_runs_from_a_wheel(tmp_path: Path) -> None:
    """The wheel carries the notes app (inside the package, nothing at the top level), and the demo runs
    from that installation alone, without the source tree."""
    import os
    import shutil
    import sysconfig
    import zipfile

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path, env=env
        )

    source = tmp_path / "src"
    for name in ("otel_usage", "examples"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = run(*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(source))
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("otel_usage-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for part in ("__init__.py", "__main__.py", "db.py", "services.py", "views.py", "static/notes.css"):
        assert f"otel_usage/_examples/notes_app/{part}" in names
    assert not [name for name in names if name.startswith(("notes_app/", "examples/", "tests/"))]
    dashboard_files = (
        "static/chart.umd.min.js",
        "static/chart.js-LICENSE.md",
        "static/dashboard.js",
        "templates/otel_usage_dashboard/index.html",
        "templates/otel_usage_dashboard/trace.html",
    )
    for part in dashboard_files:
        assert f"otel_usage/dashboard/{part}" in names
    assert "otel_usage/query/__init__.py" in names

    target = tmp_path / "site"
    install = run(*pip, "install", "--no-deps", "--target", str(target), str(wheel))
    assert install.returncode == 0, install.stderr
    # -S: no site-packages processing, so the editable checkout is invisible; the dependencies come from
    # this interpreter's site-packages, placed after the wheel's installation.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    code = "import otel_usage.cli._demo as d; print(d.__file__, d.find_notes_app().__file__)"
    where = run(sys.executable, "-S", "-c", code, env=env)
    assert where.returncode == 0, where.stderr
    package_file, app_file = where.stdout.split()
    assert Path(package_file).is_relative_to(target) and Path(app_file).is_relative_to(target), where.stdout
    out = tmp_path / "out"
    demo = ["demo", "--seconds", "1", "--users", "2", "--out", str(out)]
    proc = run(sys.executable, "-S", "-m", "otel_usage", *demo, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    exporter = SqlUsageExporter(f"sqlite:///{out / 'usage.db'}")
    try:
        logs = exporter.get_usage(limit=1000)
    finally:
        exporter.shutdown()
    functions = {record["function"] for log in logs for record in log["data"]}
    assert any(function.startswith("notes_app.services.") for function in functions), functions
    # the reading commands the demo points at run from the wheel too
    stats = run(sys.executable, "-S", "-m", "otel_usage", "stats", "--store", str(out / "usage.db"), "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total"]["hits"] == len(logs)
