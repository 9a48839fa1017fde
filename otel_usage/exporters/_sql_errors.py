"""How the SQL exporter tells a log's fault from the database's: :func:`is_data_error`, :func:`is_transient`.

A data error (a value out of range, a NUL character on PostgreSQL, a bind value the driver cannot convert)
fails the same log again on a retry: the exporter isolates it, one log per transaction, and drops it. A
transient failure (the database unreachable, locked, its schema missing) fails the batch, for the caller to
retry. Anything else is raised (and reported by the exporter as an internal error).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

__all__ = ["is_data_error", "is_transient"]

#: Errors that come from one log's values: isolate the log instead of failing the batch.
_DATA_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.DataError,
    sa_exc.IntegrityError,
    OverflowError,
    ValueError,
    TypeError,
    UnicodeError,
)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` is about the values of a row (retrying the same row cannot help)."""
    if isinstance(exc, sqlite3.Error):  # raised by the SQLite write path, on the driver's own cursor
        return isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError))
    if isinstance(exc, sa_exc.DBAPIError):
        return isinstance(exc, (sa_exc.DataError, sa_exc.IntegrityError)) and not exc.connection_invalidated
    if isinstance(exc, sa_exc.StatementError):  # a bind value the driver could not convert
        return exc.orig is None or isinstance(exc.orig, _DATA_ERRORS)
    return isinstance(exc, _DATA_ERRORS)


def is_transient(exc: BaseException) -> bool:
    """True for a failure of the database rather than of the data: unreachable, locked, schema missing."""
    if isinstance(exc, (sa_exc.DBAPIError, sqlite3.Error)):
        return not is_data_error(exc)
    return isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError, sa_exc.ResourceClosedError, OSError))
