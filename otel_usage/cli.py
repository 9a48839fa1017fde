"""The ``otel-usage`` command (also ``python -m otel_usage``), built with click.

    otel-usage demo [--seconds 10] [--users 6] [--out ./otel_usage_demo]
    otel-usage replay SPOOL --to file|sql|otlp|console [--keep] [--batch-size 512]
    otel-usage stats --store STORE [--by FIELD]... [--per hour|day|month] [--since 7d] [--tz Europe/Paris]
                     [--filter KEY=VALUE]... [--top N] [--json | --csv]
    otel-usage show TRACE_ID --store STORE [--json]
    otel-usage tail --store STORE [-n 10] [--filter KEY=VALUE]... [--no-follow]
    otel-usage grep PATTERN --store STORE [--since ...] [--filter ...] [--json]
    otel-usage count --store STORE [--since ...] [--filter ...]
    otel-usage dashboard --store STORE [--port 8050]

A STORE is a SQLAlchemy URL (``sqlite:///usage.db``, ``postgresql+psycopg://user@host/db``) or a file path
(``usage.db`` is SQLite, anything else JSON Lines, rotated files included). Reading commands never write.

Exit codes (scripts can rely on them):

    0    success
    1    nothing found: no log matched (grep, count), no such trace (show), the demo wrote nothing,
         logs still spooled after replay
    2    bad usage: unknown option or command, unknown field, bad date or time zone
    3    the store cannot be read: missing file, unreachable database, no usage tables
    130  interrupted (Ctrl-C)

Colours and progress bars appear only on a terminal (and never with ``NO_COLOR``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from otel_usage.version import __version__

__all__ = ["EXIT_BAD_USAGE", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_STORE", "cli", "main"]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_BAD_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130


class _Failure(Exception):
    """A clean failure of a command: its message and exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # off a terminal (a pipe, a file), tables are not squeezed into 80 columns
    width = None if _tty(stream) else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


# --- demo ------------------------------------------------------------------------------------------------


def _demo(args: Any, console: Any) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from otel_usage._demo import SQL_COLUMNS, next_commands, run_demo

    console.print(
        f"[bold]otel-usage demo[/]: the notes app on a local server, {args.users} simulated users for "
        f"{args.seconds:g} s; usage logs to SQLite and JSON Lines in {args.out}"
    )
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[requests]} user actions"),
        TimeRemainingColumn(),
        console=console,
        disable=args.no_progress,
    )
    with progress:
        task = progress.add_task("simulating users", total=args.seconds, requests=0)

        def report(elapsed: float, requests: int) -> None:
            progress.update(task, completed=elapsed, requests=requests)

        try:
            result = run_demo(args.out, args.seconds, args.users, args.seed, report, args.app_dir)
        except FileNotFoundError as exc:
            console.print(f"[red]error:[/] {exc}")
            return 1
        progress.update(task, completed=args.seconds)
    summary = result.summary
    console.print(
        f"\n[bold]{summary.logs}[/] usage logs written ({result.jsonl_lines} lines in the JSONL file) for "
        f"{result.requests} HTTP requests in {result.seconds:.1f} s; {summary.visitors} unique visitors, "
        f"{summary.errors} with status error; statuses {summary.statuses}"
    )
    if not summary.logs:
        console.print("[yellow]no usage log was written[/] (is OTEL_SDK_DISABLED or OTEL_USAGE_LEVEL=NONE set?)")
    if result.failed_requests:
        console.print(f"[yellow]{result.failed_requests} requests failed to connect[/]")
    users = Table("user", "requests", title="Top users")
    for name, count in summary.users:
        users.add_row(name, str(count))
    endpoints = Table("endpoint", "requests", "mean ms", title="Top endpoints")
    for name, count, mean in summary.endpoints:
        endpoints.add_row(name, str(count), f"{mean * 1000:.2f}")
    functions = Table("function", "calls", "mean ms", "max ms", title="Slowest functions")
    for name, count, mean, worst in summary.functions:
        functions.add_row(name, str(count), f"{mean * 1000:.2f}", f"{worst * 1000:.2f}")
    for table in (users, endpoints, functions):
        console.print(table)
    console.print(f"SQLite:      {result.database}")
    console.print(f"JSON Lines:  {result.jsonl}")
    console.print("Read them back:")
    console.print(
        f'  SqlUsageExporter("sqlite:///{result.database}", columns="{SQL_COLUMNS}")'
        '.get_usage(user_name="alice", limit=10)',
        soft_wrap=True,
    )
    if summary.logs:
        console.print("Next, explore what the demo wrote:")
        for command in next_commands(result):
            console.print(f"  {command}", soft_wrap=True, markup=False)
    return 0 if summary.logs else 1


# --- replay ----------------------------------------------------------------------------------------------


def _replay(args: Any, console: Any) -> int:
    import os

    from otel_usage._pipeline import build_exporter
    from otel_usage.exporters._delivery import replay
    from otel_usage.exporters._spool import spool_files

    if not os.path.exists(args.spool):
        console.print(f"error: no spool at {args.spool}")
        return 1
    try:
        (exporter,) = build_exporter(args.to, "--to")
    except (ValueError, ImportError) as exc:
        console.print(f"error: {exc}")
        return 2
    try:
        delivered = replay(args.spool, exporter, delete=not args.keep, max_export_batch_size=args.batch_size)
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]
    left = sum(os.path.getsize(path) for path in spool_files(args.spool) if os.path.exists(path))
    console.print(f"replayed {delivered} usage log(s) to {args.to}")
    if args.keep:
        return 0
    if left:
        console.print(f"{left} bytes are still spooled in {args.spool} (the exporter failed: see the warnings above)")
        return 1
    return 0


# --- the click commands ----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="otel-usage", message="%(prog)s %(version)s")
def cli() -> None:
    """Usage logs on OpenTelemetry: run the demo, replay spooled logs, and read stored usage logs."""


@cli.command(help="run the notes example app under simulated users and summarize its usage logs")
@click.option("--out", default="otel_usage_demo", show_default=True, help="output directory")
@click.option(
    "--seconds",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="how long users are simulated",
)
@click.option("--users", type=click.IntRange(1), default=6, show_default=True, help="simulated users at once")
@click.option("--seed", type=int, default=7, show_default=True, help="random seed of the simulation")
@click.option("--app-dir", default=None, help="the notes app package (default: examples/notes_app)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def demo(**options: Any) -> int:
    return _demo(types.SimpleNamespace(**options), _console())


@cli.command(help="send spooled usage logs (kept while a sink was down) to an exporter")
@click.argument("spool")
@click.option(
    "--to",
    required=True,
    type=click.Choice(["file", "sql", "otlp", "console"]),
    help="the exporter to send to, configured by the usual variables (OTEL_USAGE_FILE_PATH, "
    "OTEL_USAGE_SQL_URL, OTEL_EXPORTER_OTLP_*)",
)
@click.option("--keep", is_flag=True, help="leave the spool as it is (default: remove what was sent)")
@click.option("--batch-size", type=click.IntRange(1), default=512, show_default=True, help="logs per export call")
def replay(**options: Any) -> int:
    return _replay(types.SimpleNamespace(**options), _console())


# --- reading ---------------------------------------------------------------------------------------------

_store_option = click.option(
    "--store",
    "-s",
    required=True,
    metavar="STORE",
    help="a database URL (sqlite:///usage.db, postgresql+psycopg://...) or a file (usage.db, usage.jsonl)",
)
_prefix_option = click.option("--table-prefix", default="usage_", show_default=True, help="SQL table prefix")
_filter_option = click.option(
    "--filter",
    "-f",
    "filters",
    multiple=True,
    metavar="FIELD=VALUE",
    help="only logs whose FIELD is VALUE (repeat: all must match; the same FIELD twice: any of). FIELD is a "
    "field of `stats --by` or an info key (tenant, request.username); VALUE is JSON when it parses (404, true, "
    "null), else text",
)
_since_option = click.option("--since", default=None, help="from this time: 2026-11-20, 2026-11-20T10:00, 24h, 7d")
_until_option = click.option("--until", default=None, help="until this time (excluded), same forms as --since")
_tz_option = click.option(
    "--tz",
    default="UTC",
    show_default=True,
    help="time zone of buckets and of times without an offset: UTC, Europe/Paris, +05:30",
)


def _parse_filters(items: Sequence[str]) -> dict[str, Any]:
    from otel_usage.query import QueryError

    filters: dict[str, list[Any]] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise QueryError(f"bad filter {item!r}: expected FIELD=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, (dict, list)):
            value = raw
        filters.setdefault(name.strip(), []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in filters.items()}


def _tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Reading:
    """A reading command's store, with a progress bar on stderr (terminals only) while a file is scanned."""

    def __init__(self, store: str, table_prefix: str) -> None:
        from otel_usage.query import JsonlStore, open_store

        self.err = _console(stderr=True)
        self.progress: Any = None
        self.task: Any = None
        if _tty(sys.stderr):
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("scanning"), BarColumn(), DownloadColumn(), console=self.err, transient=True
            )
        self.store = open_store(store, table_prefix=table_prefix, progress=self._report)
        self.is_file = isinstance(self.store, JsonlStore)

    def _report(self, done: int, total: int) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("scan", total=total or None)
        self.progress.update(self.task, completed=done, total=total or None)

    def run(self, what: Callable[[], Any]) -> Any:
        """Run one read, with a spinner on terminals for a database query."""
        try:
            if self.progress is not None and not self.is_file:
                with self.err.status("querying the database"):
                    return what()
            return what()
        finally:
            if self.progress is not None and self.task is not None:
                self.progress.stop()
                self.task = None

    def warn_skipped(self) -> None:
        skipped = self.store.skipped
        if skipped:
            places = getattr(self.store, "skipped_at", [])[:3]
            self.err.print(
                f"[yellow]warning:[/] {skipped} corrupt line(s) skipped (first: {', '.join(places)})", markup=True
            )

    def close(self) -> None:
        self.store.close()


def _reading(command: Callable[..., int]) -> Callable[..., int]:
    """Open the store for a reading command; errors become messages and exit codes."""
    import functools

    @functools.wraps(command)
    def wrapper(store: str, table_prefix: str, **options: Any) -> int:
        from otel_usage.query import QueryError, StoreError

        try:
            reading = _Reading(store, table_prefix)
        except QueryError as exc:
            raise _Failure(str(exc), EXIT_BAD_USAGE) from None
        except StoreError as exc:
            raise _Failure(str(exc), EXIT_STORE) from None
        try:
            return command(reading, **options)
        except QueryError as exc:
            raise _Failure(str(exc), EXIT_BAD_USAGE) from None
        except StoreError as exc:
            raise _Failure(str(exc), EXIT_STORE) from None
        finally:
            reading.close()

    return wrapper


@cli.command(help="statistics: hits, unique users and visitors, transfer, errors, duration percentiles")
@_store_option
@_prefix_option
@click.option(
    "--by",
    "-b",
    multiple=True,
    metavar="FIELD",
    help="group by this field (repeat for several): url, route, path, endpoint, blueprint, method, "
    "http_status, status, remote, client_ip, browser, os, device, language, server/service, user, "
    "visitor, function, country, or info.KEY",
)
@click.option("--per", "-p", type=click.Choice(["hour", "day", "month"]), default=None, help="time buckets")
@_since_option
@_until_option
@_tz_option
@click.option("--top", type=click.IntRange(1), default=None, help="only the N groups with most hits (per bucket)")
@_filter_option
@click.option("--json", "as_json", is_flag=True, help="one JSON document")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line")
@_reading
def stats(
    reading: _Reading,
    by: tuple[str, ...],
    per: str | None,
    since: str | None,
    until: str | None,
    tz: str,
    top: int | None,
    filters: tuple[str, ...],
    as_json: bool,
    as_csv: bool,
) -> int:
    from otel_usage.query._render import stats_csv, stats_json, stats_table

    if as_json and as_csv:
        raise _Failure("choose one of --json and --csv", EXIT_BAD_USAGE)
    wanted = _parse_filters(filters)
    arguments = {"start": since, "end": until, "tz": tz, **wanted}
    result = reading.run(lambda: reading.store.stats(by=list(by), per=per, top=top, **arguments))
    total = None
    if by or per:
        totals = reading.run(lambda: reading.store.stats(**arguments)).rows
        total = totals[0] if totals else None
    elif result.rows:
        total = result.rows[0]
    reading.warn_skipped()
    if as_json:
        click.echo(stats_json(result, total, reading.store.url))
    elif as_csv:
        click.echo(stats_csv(result), nl=False)
    else:
        what = " by " + ", ".join(by) if by else ""
        what += f" per {per} ({result.tz})" if per else ""
        console = _console()
        if not result.rows:
            console.print(f"no usage log in {reading.store.url} matches")
        else:
            console.print(stats_table(result, total, f"Usage{what}: {reading.store.url}"))
    return EXIT_OK


@cli.command(help="one trace's usage logs: call tree on a timeline, info, events, log lines, timers")
@click.argument("trace_id")
@_store_option
@_prefix_option
@click.option("--json", "as_json", is_flag=True, help="the stored logs as JSON")
@click.option("--width", type=click.IntRange(40), default=None, help="timeline width (default: the terminal's)")
@_reading
def show(reading: _Reading, trace_id: str, as_json: bool, width: int | None) -> int:
    from otel_usage.query._render import timeline, to_json

    if not re.fullmatch(r"[0-9a-fA-F]{1,32}", trace_id):
        raise _Failure(f"bad trace id {trace_id!r}: expected up to 32 hexadecimal digits", EXIT_BAD_USAGE)
    logs = reading.run(lambda: reading.store.get_trace(trace_id.lower().rjust(32, "0")))
    if not logs:
        _console(stderr=True).print(f"no usage log of trace {trace_id} in {reading.store.url}", markup=False)
        return EXIT_NOT_FOUND
    if as_json:
        click.echo(to_json(logs, indent=2))
        return EXIT_OK
    console = _console()
    color = console.is_terminal
    for i, log in enumerate(logs):
        if i:
            console.print()
        for line in timeline(log, width or max(60, console.width), color):
            console.print(line, markup=color)
    return EXIT_OK


def _print_lines(logs: Iterator[Any], as_json: bool, limit: int | None = None) -> int:
    from otel_usage.query._render import log_line, to_json

    console = _console()
    color = console.is_terminal
    shown = 0
    for log in logs:
        if as_json:
            click.echo(to_json(log))
        else:
            console.print(log_line(log, color), markup=color)
        shown += 1
        if limit is not None and shown >= limit:
            break
    return shown


@cli.command(help="follow new usage logs as they are stored, one readable line each")
@_store_option
@_prefix_option
@click.option("-n", "--lines", type=click.IntRange(0), default=10, show_default=True, help="first show the last N logs")
@_filter_option
@click.option("--poll", type=click.FloatRange(0.05), default=1.0, show_default=True, help="seconds between checks")
@click.option("--no-follow", is_flag=True, help="show the last N logs and stop")
@click.option("--json", "as_json", is_flag=True, help="one JSON log per line")
@_reading
def tail(reading: _Reading, lines: int, filters: tuple[str, ...], poll: float, no_follow: bool, as_json: bool) -> int:
    wanted = _parse_filters(filters)
    if lines:
        last = reading.run(lambda: reading.store.get_usage(limit=lines, **wanted))
        _print_lines(iter(reversed(last)), as_json)
    sys.stdout.flush()
    if no_follow:
        return EXIT_OK
    for log in reading.store.follow(poll_seconds=poll, **wanted):
        if log is not None:
            _print_lines(iter([log]), as_json)
            sys.stdout.flush()
    return EXIT_OK  # pragma: no cover - follow never ends


@cli.command(help="usage logs whose JSON (or one field) matches a regular expression, one line each")
@click.argument("pattern")
@_store_option
@_prefix_option
@_since_option
@_until_option
@_filter_option
@click.option("--field", "field_name", default=None, help="search this field's value instead of the whole log")
@click.option("-i", "--ignore-case", is_flag=True, help="case-insensitive")
@click.option("-m", "--max-count", type=click.IntRange(1), default=None, help="stop after N matches")
@click.option("--json", "as_json", is_flag=True, help="one JSON log per line")
@_reading
def grep(
    reading: _Reading,
    pattern: str,
    since: str | None,
    until: str | None,
    filters: tuple[str, ...],
    field_name: str | None,
    ignore_case: bool,
    max_count: int | None,
    as_json: bool,
) -> int:
    from otel_usage.query._fields import field, value_of
    from otel_usage.query._render import grep_text, to_json

    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise _Failure(f"bad pattern {pattern!r}: {exc}", EXIT_BAD_USAGE) from None
    chosen = field(field_name) if field_name else None

    def text(log: Any) -> str:
        if chosen is None:
            return grep_text(log)
        value = value_of(log, chosen)
        return value if isinstance(value, str) else to_json(value)

    logs = reading.store.iter_usage(since, until, **_parse_filters(filters))
    shown = reading.run(lambda: _print_lines((log for log in logs if regex.search(text(log))), as_json, max_count))
    reading.warn_skipped()
    return EXIT_OK if shown else EXIT_NOT_FOUND


@cli.command(help="how many usage logs match (exit status 1 when none)")
@_store_option
@_prefix_option
@_since_option
@_until_option
@_filter_option
@_reading
def count(reading: _Reading, since: str | None, until: str | None, filters: tuple[str, ...]) -> int:
    n = reading.run(lambda: reading.store.count(since, until, **_parse_filters(filters)))
    reading.warn_skipped()
    click.echo(str(n))
    return EXIT_OK if n else EXIT_NOT_FOUND


@cli.command(help="serve the dashboard of a store on this machine (127.0.0.1) until Ctrl-C")
@_store_option
@_prefix_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="a loopback address: the standalone dashboard has no login (mount the blueprint with an auth "
    "hook to serve it to others)",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8050, show_default=True, help="0 picks a free port")
@_reading
def dashboard(reading: _Reading, host: str, port: int) -> int:
    import ipaddress

    from otel_usage.dashboard import serve

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise _Failure(
            f"--host {host}: the standalone dashboard serves only this machine (127.0.0.1, ::1); to serve others, "
            "mount otel_usage.dashboard.create_dashboard(store, auth=...) in an app with an auth hook",
            EXIT_BAD_USAGE,
        )
    serve(reading.store, host, port, _console())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``otel-usage`` command line; returns the exit status (see the module documentation)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        click.echo(cli.get_help(click.Context(cli, info_name="otel-usage")))
        return EXIT_BAD_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = cli.main(args=args, prog_name="otel-usage", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_USAGE
    except click.exceptions.Abort:
        _console(stderr=True).print("interrupted")
        return EXIT_INTERRUPTED
    except _Failure as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        return exc.code
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `otel-usage grep ... | head`
        return EXIT_OK
    return int(result) if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
