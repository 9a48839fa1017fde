"""The ``otel-usage`` command (also ``python -m otel_usage``).

    otel-usage demo [--seconds 10] [--users 6] [--out ./otel_usage_demo]
    otel-usage replay SPOOL --to file|sql|otlp|console [--keep] [--batch-size 512]

Each subcommand is a function ``(args, console) -> int`` registered in :data:`COMMANDS` with the function
that adds its options, so later ones (``stats``) plug in the same way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from otel_usage.version import __version__

__all__ = ["COMMANDS", "build_parser", "main"]

Command = Callable[[argparse.Namespace, Any], int]


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


# --- demo ------------------------------------------------------------------------------------------------


def _demo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="otel_usage_demo", help="output directory (default: ./otel_usage_demo)")
    parser.add_argument("--seconds", type=_positive_float, default=10.0, help="how long users are simulated (10)")
    parser.add_argument("--users", type=_positive_int, default=6, help="simulated users at once (6)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the simulation (7)")
    parser.add_argument("--app-dir", default=None, help="the notes app package (default: examples/notes_app)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _demo(args: argparse.Namespace, console: Any) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from otel_usage._demo import SQL_COLUMNS, run_demo

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
    console.print(
        f"  sqlite3 {result.database} 'SELECT function, count(*), avg(duration) FROM usage_calls GROUP BY function'",
        soft_wrap=True,
    )
    return 0 if summary.logs else 1


# --- replay ----------------------------------------------------------------------------------------------


def _replay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spool", help="a spool directory (OTEL_USAGE_SPOOL_DIR) or one of its .jsonl files")
    parser.add_argument(
        "--to",
        required=True,
        choices=["file", "sql", "otlp", "console"],
        help="the exporter to send to, configured by the usual variables (OTEL_USAGE_FILE_PATH, "
        "OTEL_USAGE_SQL_URL, OTEL_EXPORTER_OTLP_*)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the spool as it is (default: remove what was sent)")
    parser.add_argument("--batch-size", type=_positive_int, default=512, help="logs per export call (512)")


def _replay(args: argparse.Namespace, console: Any) -> int:
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


#: name -> (help, add options, run)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {
    "demo": ("run the notes example app under simulated users and summarize its usage logs", _demo_options, _demo),
    "replay": ("send spooled usage logs (kept while a sink was down) to an exporter", _replay_options, _replay),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-usage", description="Usage logs on OpenTelemetry.")
    parser.add_argument("--version", action="version", version=f"otel-usage {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (text, add_options, _run) in COMMANDS.items():
        add_options(sub.add_parser(name, help=text, description=text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``otel-usage`` command line; returns the exit status."""
    from rich.console import Console

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console(stderr=False, highlight=False)
    run = COMMANDS[args.command][2]
    try:
        return run(args, console)
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
