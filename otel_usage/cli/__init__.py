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

import logging
import sys
from collections.abc import Sequence

import click

from otel_usage.cli import _reading, _run  # noqa: F401 - the commands register on the group
from otel_usage.cli._base import (
    EXIT_BAD_USAGE,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_STORE,
    Failure,
    cli,
    make_console,
)

__all__ = ["EXIT_BAD_USAGE", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_STORE", "cli", "main"]


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
        make_console(stderr=True).print("interrupted")
        return EXIT_INTERRUPTED
    except Failure as exc:
        make_console(stderr=True).print(f"error: {exc}", markup=False)
        return exc.code
    except KeyboardInterrupt:
        make_console(stderr=True).print("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `otel-usage grep ... | head`
        return EXIT_OK
    return int(result) if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
