"""The reading commands of ``otel-usage`` on real stores: output, formats, exit codes, bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from otel_usage.cli import EXIT_BAD_USAGE, EXIT_NOT_FOUND, EXIT_OK, EXIT_STORE, main
from otel_usage.query import open_store
from tests.reading.conftest import make_logs, write_jsonl, write_sql


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``otel-usage ARGS`` in a child process (no terminal: no colours, no progress bar)."""
    return subprocess.run(
        [sys.executable, "-m", "otel_usage", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_stats_json_equals_the_query_api(store_url: str) -> None:
    """``stats --json`` prints the rows and the total that the query API computes."""
    proc = run("stats", "--store", store_url, "--by", "endpoint", "--per", "day", "--tz", "Europe/Paris", "--json")
    assert proc.returncode == EXIT_OK, proc.stderr
    document = json.loads(proc.stdout)
    with open_store(store_url) as store:
        expected = store.stats(by="endpoint", per="day", tz="Europe/Paris").to_dicts()
        total = store.stats().rows[0].to_dict()
    assert document["rows"] == json.loads(json.dumps(expected))
    assert document["total"] == json.loads(json.dumps(total))
    assert document["by"] == ["endpoint"] and document["per"] == "day" and document["tz"] == "Europe/Paris"
    assert "\x1b[" not in proc.stdout  # no colour off a terminal


def test_stats_table_and_csv(sqlite_store: str, logs: list[dict[str, Any]]) -> None:
    """The table shows each group and a total; CSV has a header and one line per group."""
    proc = run("stats", "--store", sqlite_store, "--by", "browser")
    assert proc.returncode == EXIT_OK, proc.stderr
    for browser in ("Chrome", "Firefox", "Safari", "total", "p95 ms"):
        assert browser in proc.stdout
    proc = run("stats", "--store", sqlite_store, "--by", "http_status", "--csv", "-f", "service=api")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    counts = {}
    for log in logs:
        if log["service"] == "api":
            counts[str(log["request"]["status"])] = counts.get(str(log["request"]["status"]), 0) + 1
    assert {row["http_status"]: int(row["hits"]) for row in rows} == counts


def test_count_and_grep_exit_codes(store_url: str, logs: list[dict[str, Any]]) -> None:
    """count prints the number (exit 1 when 0); grep prints matching logs one line each (exit 1 when none)."""
    proc = run("count", "--store", store_url, "-f", "endpoint=notes.show", "-f", "http_status=404")
    expected = sum(x["request"]["endpoint"] == "notes.show" and x["request"]["status"] == 404 for x in logs)
    assert proc.returncode == EXIT_OK and proc.stdout.strip() == str(expected)
    proc = run("count", "--store", store_url, "-f", "user=nobody-at-all")
    assert proc.returncode == EXIT_NOT_FOUND and proc.stdout.strip() == "0"
    proc = run("grep", "globex", "--store", store_url, "--field", "info.tenant", "--json")
    found = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == EXIT_OK
    assert sorted(x["trace_id"] for x in found) == sorted(x["trace_id"] for x in logs if x["tenant"] == "globex")
    proc = run("grep", "no-such-text-anywhere", "--store", store_url)
    assert proc.returncode == EXIT_NOT_FOUND and proc.stdout == ""
    proc = run("grep", "-i", "FIREFOX", "--store", store_url, "-m", "3")
    assert proc.returncode == EXIT_OK and len(proc.stdout.splitlines()) == 3
    assert all(" trace=" in line for line in proc.stdout.splitlines())


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["stats", "--by", "tenant"], EXIT_BAD_USAGE, "unknown group-by field 'tenant'"),
        (["stats", "--since", "last tuesday"], EXIT_BAD_USAGE, "bad start 'last tuesday'"),
        (["stats", "--tz", "Nowhere/Land"], EXIT_BAD_USAGE, "unknown time zone"),
        (["stats", "--per", "week"], EXIT_BAD_USAGE, "'week' is not one of"),
        (["stats", "--json", "--csv"], EXIT_BAD_USAGE, "choose one of --json and --csv"),
        (["count", "-f", "nonsense"], EXIT_BAD_USAGE, "expected FIELD=VALUE"),
        (["grep", "("], EXIT_BAD_USAGE, "bad pattern"),
        (["show", "not-hex"], EXIT_BAD_USAGE, "bad trace id"),
        (["show", "f" * 32], EXIT_NOT_FOUND, "no usage log of trace"),
        (["dashboard", "--host", "0.0.0.0"], EXIT_BAD_USAGE, "serves only this machine"),
    ],
)
def test_bad_input_is_a_message_and_an_exit_code(
    sqlite_store: str, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    """Bad options, fields, dates and ids: one clear line, the documented exit code, no traceback."""
    assert main([*args, "--store", sqlite_store]) == code
    captured = capsys.readouterr()
    assert message in " ".join((captured.out + captured.err).split())
    assert "Traceback" not in captured.out + captured.err


def test_unreadable_stores_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file, a file that is not a database, an unreachable server: exit status 3 and a message."""
    (tmp_path / "junk.db").write_text("not a database" * 100)
    for store in (
        str(tmp_path / "missing.jsonl"),
        str(tmp_path / "junk.db"),
        "postgresql+psycopg://x@127.0.0.1:1/none?connect_timeout=2",
    ):
        assert main(["stats", "--store", store]) == EXIT_STORE
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
    assert main(["stats", "--store", "mysql://u@h/db"]) == EXIT_BAD_USAGE


def test_corrupt_lines_are_reported_not_fatal(tmp_path: Path) -> None:
    """A corrupt JSONL line is skipped with a warning on stderr; the figures count the others."""
    path = tmp_path / "usage.jsonl"
    write_jsonl(path, make_logs(12))
    with path.open("a") as handle:
        handle.write("{oops\n")
    proc = run("count", "--store", str(path))
    assert proc.returncode == EXIT_OK and proc.stdout.strip() == "12"
    assert "1 corrupt line(s) skipped" in proc.stderr and f"{path}:13" in proc.stderr


def test_show_draws_the_call_tree_with_timers_events_and_log_lines(tmp_path: Path) -> None:
    """``show`` prints the info, each call as a bar on one time axis, timers, events and log lines."""
    import otel_usage
    from otel_usage import add_info, event, timer, traced_usage
    from otel_usage.exporters.sql import SqlUsageExporter

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    exporter = SqlUsageExporter(url)
    otel_usage.configure(exporters=[exporter], service_name="shop")
    try:

        @traced_usage
        def save(row: int) -> None:
            time.sleep(0.01)

        @traced_usage
        def checkout(cart: str) -> None:
            add_info("user", "alice")
            event("cart.checked", {"items": 2})
            with timer("payment"):
                time.sleep(0.02)
            save(7)

        checkout("c1")
        otel_usage.force_flush()
    finally:
        otel_usage.shutdown()
    with open_store(url) as store:
        (log,) = store.get_usage()
    proc = run("show", log["trace_id"], "--store", url, "--width", "100")
    assert proc.returncode == EXIT_OK, proc.stderr
    out = proc.stdout
    assert f"trace {log['trace_id']}" in out and "service shop" in out and 'user: "alice"' in out
    lines = out.splitlines()
    root = next(line for line in lines if line.lstrip().endswith("ms") and "checkout" in line and "|" in line)
    child = next(line for line in lines if "  " in line and "save" in line and "|" in line)
    payment = next(line for line in lines if "timer payment" in line)
    assert root.count("=") > child.count("=") > 0 and payment.count("#") > 0
    # the timer runs before save: its bar starts further left
    assert payment.index("#") < child.index("=")
    assert "event cart.checked" in out and '{"items":2}' in out
    proc = run("show", log["trace_id"], "--store", url, "--json")
    assert json.loads(proc.stdout)[0]["span_id"] == log["span_id"]


def test_tail_follows_new_logs(tmp_path: Path) -> None:
    """``tail`` prints the last logs, then each new one as it is stored (SQLite and a rotating JSONL file)."""
    logs = make_logs(30)
    for kind in ("sqlite", "jsonl"):
        if kind == "sqlite":
            store = f"sqlite:///{tmp_path / 'usage.db'}"
            write_sql(store, logs[:10])
        else:
            store = str(tmp_path / "usage.jsonl")
            write_jsonl(tmp_path / "usage.jsonl", logs[:10])
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otel_usage",
                "tail",
                "--store",
                store,
                "-n",
                "2",
                "--poll",
                "0.1",
                "-f",
                "tenant=acme",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = [json.loads(child.stdout.readline()) for _ in range(2)]  # type: ignore[union-attr]
            acme = [x for x in logs[:10] if x["tenant"] == "acme"]
            assert [x["trace_id"] for x in first] == [
                x["trace_id"] for x in sorted(acme, key=lambda x: x["start"])[-2:]
            ]
            time.sleep(0.5)
            if kind == "sqlite":
                write_sql(store, logs[10:30])
            else:
                write_jsonl(tmp_path / "usage.jsonl", logs[10:20], max_bytes=1)  # rotates at every batch
                write_jsonl(tmp_path / "usage.jsonl", logs[20:30], max_bytes=1)
            wanted = [x["trace_id"] for x in logs[10:30] if x["tenant"] == "acme"]
            got = [json.loads(child.stdout.readline())["trace_id"] for _ in wanted]  # type: ignore[union-attr]
            assert sorted(got) == sorted(wanted)
        finally:
            child.terminate()
            child.communicate(timeout=10)


def test_demo_next_commands_work_on_its_output(demo_run: tuple[Path, str]) -> None:
    """Every command the demo prints at the end runs on what it wrote (the dashboard serves its page)."""
    out, stdout = demo_run
    tail = stdout[stdout.index("Next, explore what the demo wrote:") :]
    commands = [line.strip() for line in tail.splitlines()[1:] if line.strip().startswith("otel-usage ")]
    names = [shlex.split(c)[1] for c in commands]
    assert names.count("stats") >= 2 and "show" in names and "dashboard" in names
    script = Path(sys.executable).parent / "otel-usage"
    for command in commands:
        argv = [str(script), *shlex.split(command)[1:]]
        if "dashboard" in argv:
            continue
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == EXIT_OK, (command, proc.stdout, proc.stderr)
        assert proc.stdout.strip() and "Traceback" not in proc.stderr
        if argv[1] == "show":
            assert "calls and timers" in proc.stdout and "notes_app." in proc.stdout
        if "--by" in argv and "endpoint" in argv:
            assert "notes.show" in proc.stdout and "total" in proc.stdout
    (dashboard,) = [c for c in commands if " dashboard " in c]
    argv = [str(script), *shlex.split(dashboard)[1:], "--port", "0"]  # the demo's default port may be taken
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"chart.umd.min.js" in response.read()
        with urllib.request.urlopen(url + "api/summary?since=all", timeout=30) as response:
            summary = json.loads(response.read())
        with open_store(out / "usage.db") as store:
            assert summary["total"]["hits"] == store.count() > 50
    finally:
        child.terminate()
        child.communicate(timeout=10)
    assert os.path.exists(out / "usage.jsonl")
