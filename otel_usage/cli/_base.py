"""What every ``otel-usage`` command shares: the command group, exit codes, clean failures, the console."""

from __future__ import annotations

import sys
from typing import Any

import click

from otel_usage.version import __version__

__all__ = [
    "EXIT_BAD_USAGE",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_STORE",
    "Failure",
    "cli",
    "make_console",
    "tty",
]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_BAD_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130


class Failure(Exception):
    """A clean failure of a command: its message and exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def make_console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # off a terminal (a pipe, a file), tables are not squeezed into 80 columns
    width = None if tty(stream) else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


# --- demo ------------------------------------------------------------------------------------------------


def tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="otel-usage", message="%(prog)s %(version)s")
def cli() -> None:
    """Usage logs on OpenTelemetry: run the demo, replay spooled logs, and read stored usage logs."""
