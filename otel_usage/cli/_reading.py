"""The reading commands: ``stats``, ``show``, ``tail``, ``grep``, ``count`` and ``dashboard``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from otel_usage.cli._base import EXIT_BAD_USAGE, EXIT_NOT_FOUND, EXIT_OK, EXIT_STORE, Failure, cli, make_console, tty

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


class _Reading:
    """A reading command's store, with a progress bar on stderr (terminals only) while a file is scanned."""

    def __init__(self, store: str, table_prefix: str) -> None:
        from otel_usage.query import JsonlStore, open_store

        self.err = make_console(stderr=True)
        self.progress: Any = None
        self.task: Any = None
        if tty(sys.stderr):
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
            raise Failure(str(exc), EXIT_BAD_USAGE) from None
        except StoreError as exc:
            raise Failure(str(exc), EXIT_STORE) from None
        try:
            return command(reading, **options)
        except QueryError as exc:
            raise Failure(str(exc), EXIT_BAD_USAGE) from None
        except StoreError as exc:
            raise Failure(str(exc), EXIT_STORE) from None
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
        raise Failure("choose one of --json and --csv", EXIT_BAD_USAGE)
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
        console = make_console()
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
        raise Failure(f"bad trace id {trace_id!r}: expected up to 32 hexadecimal digits", EXIT_BAD_USAGE)
    logs = reading.run(lambda: reading.store.get_trace(trace_id.lower().rjust(32, "0")))
    if not logs:
        make_console(stderr=True).print(f"no usage log of trace {trace_id} in {reading.store.url}", markup=False)
        return EXIT_NOT_FOUND
    if as_json:
        click.echo(to_json(logs, indent=2))
        return EXIT_OK
    console = make_console()
    color = console.is_terminal
    for i, log in enumerate(logs):
        if i:
            console.print()
        for line in timeline(log, width or max(60, console.width), color):
            console.print(line, markup=color)
    return EXIT_OK


def _print_lines(logs: Iterator[Any], as_json: bool, limit: int | None = None) -> int:
    from otel_usage.query._render import log_line, to_json

    console = make_console()
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
        raise Failure(f"bad pattern {pattern!r}: {exc}", EXIT_BAD_USAGE) from None
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
        raise Failure(
            f"--host {host}: the standalone dashboard serves only this machine (127.0.0.1, ::1); to serve others, "
            "mount otel_usage.dashboard.create_dashboard(store, auth=...) in an app with an auth hook",
            EXIT_BAD_USAGE,
        )
    serve(reading.store, host, port, make_console())
    return EXIT_OK
