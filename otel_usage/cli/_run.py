"""The ``demo`` and ``replay`` commands."""

from __future__ import annotations

import types
from typing import Any

import click

from otel_usage.cli._base import cli, make_console

__all__ = ["demo", "replay"]

# --- demo ------------------------------------------------------------------------------------------------


def _demo(args: Any, console: Any) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from otel_usage.cli._demo import SQL_COLUMNS, next_commands, run_demo

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

    from otel_usage._resolve import build_exporter
    from otel_usage.exporters._replay import replay
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
    return _demo(types.SimpleNamespace(**options), make_console())


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
    return _replay(types.SimpleNamespace(**options), make_console())


# --- reading ---------------------------------------------------------------------------------------------
