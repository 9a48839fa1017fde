"""Reading a SQL store (the tables :class:`SqlUsageExporter` writes), read only, statistics in the database.

Statistics are one ``GROUP BY`` query: the fields come out of the ``info`` JSON column (``json_extract`` on
SQLite, ``#>`` on PostgreSQL) or from stored columns; percentiles are PostgreSQL's ``percentile_cont``, and
on SQLite (which has none) the same interpolation over ``row_number()`` window ranks. Buckets are in the
asked time zone: ``timezone()`` on PostgreSQL; on SQLite (no zone database) the zone's UTC offsets over the
queried range are computed here and applied with a ``CASE`` on ``start``, so daylight saving is exact.

The connection is read only: SQLite opens the file with ``mode=ro`` (a missing file is an error, never
created), PostgreSQL runs its transactions ``READ ONLY``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    cast,
    create_engine,
    exists,
    func,
    inspect,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql.expression import ColumnElement

from otel_usage._schema import UsageLog
from otel_usage._suppress import suppressed
from otel_usage.exporters._sql_schema import SqlTables, normalize_url
from otel_usage.query._fields import (
    FIELDS,
    HTTP_STATUS_PATH,
    PERCENTILES,
    PERIODS,
    TRANSFER_PATH,
    Field,
    Filter,
    QueryError,
    StoreError,
)
from otel_usage.query._results import StatsRow, order_rows
from otel_usage.query._sql_logs import newest_first, stored_columns
from otel_usage.query._store import Query, UsageStore, check_page

__all__ = ["SqlStore"]

_PG_FORMATS = {"hour": 'YYYY-MM-DD"T"HH24:00', "day": "YYYY-MM-DD", "month": "YYYY-MM"}


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SqlStore(UsageStore):
    """Usage logs in a SQLite or PostgreSQL database (read only).

    Args:
        url: a SQLAlchemy URL (``sqlite:///usage.db``, ``postgresql+psycopg://user@host/db``).
        table_prefix: the exporter's table prefix (default ``usage_``).

    Raises:
        StoreError: no such SQLite file, the database cannot be reached, or it has no usage tables.
        QueryError: the URL is not a SQLite or PostgreSQL one.
    """

    def __init__(self, url: str | URL, table_prefix: str = "usage_") -> None:
        try:
            parsed = normalize_url(url)
        except ValueError as exc:
            raise QueryError(f"{exc} ({url!r})") from None
        except ImportError as exc:
            raise StoreError(str(exc)) from None
        self.backend = parsed.get_backend_name()
        self.url = parsed.render_as_string(hide_password=True)
        try:
            self._tables = SqlTables(table_prefix, {})
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        options: dict[str, Any] = {}
        if self.backend == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:"):
                raise QueryError("an in-memory SQLite database has no stored usage logs to read")
            path = os.path.abspath(database)
            if not os.path.isfile(path):
                raise StoreError(f"no usage database at {path}: no such file")
            if not os.access(path, os.R_OK):
                raise StoreError(f"cannot read {path}: permission denied")
            parsed = parsed.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
            options["connect_args"] = {"timeout": 10}
        else:
            if "connect_timeout" not in parsed.query:
                options["connect_args"] = {"connect_timeout": 10}
            options["execution_options"] = {"postgresql_readonly": True}
        self._engine = create_engine(parsed, **options)
        self._json_pg = self.backend == "postgresql"
        with self._connect() as conn:
            try:
                present = inspect(conn).has_table(self._tables.logs.name)
            except sa_exc.SQLAlchemyError as exc:
                raise StoreError(f"cannot read {self.url}: {_first_line(exc)}") from None
        if not present:
            self.close()
            raise StoreError(f"{self.url} has no usage tables ({self._tables.logs.name}): not a usage store")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        with suppressed():
            try:
                with self._engine.connect() as conn:
                    yield conn
            except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DatabaseError) as exc:
                raise StoreError(f"cannot read {self.url}: {_first_line(exc)}") from None

    def close(self) -> None:
        self._engine.dispose()

    # --- expressions -----------------------------------------------------------------------------------

    def _path(self, path: Sequence[str]) -> ColumnElement[Any]:
        if self._json_pg:
            info = type_coerce(self._tables.logs.c.info, JSONB)
            return func.nullif(info[tuple(path)], cast(literal("null"), JSONB))
        return func.json_extract(self._tables.logs.c.info, "$." + ".".join(f'"{part}"' for part in path))

    def _number(self, path: Sequence[str]) -> ColumnElement[Any]:
        if self._json_pg:
            value = type_coerce(self._tables.logs.c.info, JSONB)[tuple(path)]
            return case((func.jsonb_typeof(value) == "number", cast(value.astext, Float)))
        return func.json_extract(self._tables.logs.c.info, "$." + ".".join(f'"{part}"' for part in path))

    def _expr(self, f: Field) -> ColumnElement[Any]:
        if f.kind == "column":
            return self._tables.logs.c["service" if f.name == "server" else f.name]
        if f.kind == "function":
            return self._tables.calls.c.function
        values = [self._path(path) for path in f.paths]
        return values[0] if len(values) == 1 else func.coalesce(*values)

    def _bind(self, f: Field, value: Any) -> Any:
        if f.kind == "info" and self._json_pg:
            return cast(literal(json.dumps(value)), JSONB)
        return value

    def _condition(self, flt: Filter, by_function: bool) -> ColumnElement[bool]:
        f = flt.field
        wanted = [v for v in flt.values if v is not None]
        if f.kind == "function" and not by_function:
            calls, logs = self._tables.calls, self._tables.logs
            some = exists().where(calls.c.log_id == logs.c.id)
            clauses: list[ColumnElement[bool]] = []
            if wanted:
                clauses.append(some.where(calls.c.function.in_(wanted)))
            if None in flt.values:
                clauses.append(~some.where(calls.c.function.is_not(None)))
            return or_(*clauses)
        expr = self._expr(f)
        clauses = []
        if wanted:
            binds = [self._bind(f, v) for v in wanted]
            clauses.append(expr == binds[0] if len(binds) == 1 else expr.in_(binds))
        if None in flt.values:
            clauses.append(expr.is_(None))
        return or_(*clauses) if len(clauses) > 1 else clauses[0]

    def _where(self, query: Query, by_function: bool = False) -> list[ColumnElement[bool]]:
        start = self._tables.logs.c.start
        conditions: list[ColumnElement[bool]] = []
        if query.start is not None:
            conditions.append(start >= query.start)
        if query.end is not None:
            conditions.append(start < query.end)
        conditions += [self._condition(f, by_function) for f in query.filters]
        return conditions

    def _bucket(self, conn: Connection, per: str, query: Query) -> ColumnElement[Any]:
        start = self._tables.logs.c.start
        tz = query.tz
        if self._json_pg:
            fmt = _PG_FORMATS[per]
            if tz.offset_minutes is not None:
                local = func.timezone("UTC", start) + func.make_interval(0, 0, 0, 0, 0, tz.offset_minutes)
            else:
                local = func.timezone(tz.name, start)
            return func.to_char(local, fmt)
        fmt = PERIODS[per]
        if tz.offset_minutes is not None:
            return func.strftime(fmt, start, f"{tz.offset_minutes} minutes")
        bounds = select(func.min(start), func.max(start)).where(*self._where(Query(query.start, query.end)))
        lo, hi = conn.execute(bounds).one()
        if lo is None:
            return func.strftime(fmt, start)
        offsets = tz.transitions(_aware(lo), _aware(hi))
        if len(offsets) == 1:
            return func.strftime(fmt, start, f"{offsets[0][1]} minutes")
        whens = [(start < moment, f"{offsets[i - 1][1]} minutes") for i, (moment, _) in enumerate(offsets) if i]
        return func.strftime(fmt, start, case(*whens, else_=f"{offsets[-1][1]} minutes"))

    # --- UsageStore ------------------------------------------------------------------------------------

    def _columns(self) -> list[Any]:
        return stored_columns(self._tables)

    def get_usage(
        self, start: Any = None, end: Any = None, limit: int = 500, page: int = 1, **filters: Any
    ) -> list[UsageLog]:
        check_page(limit, page)
        query = Query(start, end, filters)
        statement = newest_first(self._tables, self._where(query), limit, page)
        with self._connect() as conn:
            rows = conn.execute(statement).mappings().all()
        return [self._tables.log_from_row(row) for row in rows]

    def iter_usage(self, start: Any = None, end: Any = None, **filters: Any) -> Iterator[UsageLog]:
        query = Query(start, end, filters)
        logs = self._tables.logs
        statement = select(*self._columns()).where(*self._where(query)).order_by(logs.c.start, logs.c.id)
        with self._connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=500).execute(statement).mappings()
            for row in result:
                yield self._tables.log_from_row(row)

    def count(self, start: Any = None, end: Any = None, **filters: Any) -> int:
        query = Query(start, end, filters)
        with self._connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(self._tables.logs).where(*self._where(query))
                ).scalar_one()
            )

    def get_trace(self, trace_id: str) -> list[UsageLog]:
        if not isinstance(trace_id, str) or not trace_id:
            raise QueryError(f"bad trace id {trace_id!r}")
        logs = self._tables.logs
        statement = select(*self._columns()).where(logs.c.trace_id == trace_id).order_by(logs.c.start, logs.c.id)
        with self._connect() as conn:
            return [self._tables.log_from_row(row) for row in conn.execute(statement).mappings()]

    def follow(self, poll_seconds: float = 1.0, **filters: Any) -> Iterator[UsageLog | None]:
        import time

        query = Query(filters=filters)
        logs = self._tables.logs
        with self._connect() as conn:
            last = conn.execute(select(func.max(logs.c.id))).scalar_one() or 0
        while True:
            with self._connect() as conn:
                top = conn.execute(select(func.max(logs.c.id))).scalar_one() or last
                statement = (
                    select(*self._columns())
                    .where(logs.c.id > last, logs.c.id <= top, *self._where(query))
                    .order_by(logs.c.id)
                )
                rows = conn.execute(statement).mappings().all()
            last = top
            for row in rows:
                yield self._tables.log_from_row(row)
            if not rows:
                yield None
                time.sleep(poll_seconds)

    def _stats_rows(
        self, fields: list[Field], per: str | None, query: Query, names: list[str], top: int | None
    ) -> tuple[list[StatsRow], int]:
        by_function = any(f.kind == "function" for f in fields)
        logs, calls = self._tables.logs, self._tables.calls
        with self._connect() as conn:
            keys: list[ColumnElement[Any]] = []
            if per:
                keys.append(self._bucket(conn, per, query))
            keys += [self._expr(f) for f in fields]
            http = self._number(HTTP_STATUS_PATH)
            if by_function:
                source: Any = calls.join(logs, calls.c.log_id == logs.c.id)
                duration: ColumnElement[Any] = calls.c.duration
                error: ColumnElement[Any] = case((calls.c.exception == True, 1), else_=0)  # noqa: E712
                transfer: ColumnElement[Any] = cast(literal_column("NULL"), Float)
            else:
                source = logs
                duration = logs.c.duration
                error = case((or_(logs.c.status == "error", and_(http.is_not(None), http >= 500)), 1), else_=0)
                transfer = self._number(TRANSFER_PATH)
            inner_columns = [key.label(f"k{i}") for i, key in enumerate(keys)]
            inner_columns += [
                duration.label("d"),
                self._expr(FIELDS["user"]).label("u"),
                self._expr(FIELDS["visitor"]).label("v"),
                transfer.label("t"),
                error.label("e"),
            ]
            partition = [key for key in keys]
            if not self._json_pg:
                inner_columns += [
                    func.row_number()
                    .over(partition_by=partition or None, order_by=[duration.is_(None), duration])
                    .label("rn"),
                    func.count(duration).over(partition_by=partition or None).label("n"),
                ]
            inner = select(*inner_columns).select_from(source).where(*self._where(query, by_function)).subquery()
            group = [inner.c[f"k{i}"] for i in range(len(keys))]
            figures: list[Any] = [
                func.count().label("hits"),
                func.count(inner.c.u.distinct()).label("users"),
                func.count(inner.c.v.distinct()).label("visitors"),
                func.coalesce(func.sum(inner.c.t), 0).label("transfer"),
                func.coalesce(func.sum(inner.c.e), 0).label("errors"),
                func.avg(inner.c.d).label("mean"),
            ]
            for i, p in enumerate(PERCENTILES):
                if self._json_pg:
                    figures.append(func.percentile_cont(p).within_group(inner.c.d).label(f"p{i}"))
                    continue
                rank = cast((inner.c.n - 1) * p, Integer) + 1
                low = func.max(case((inner.c.rn == rank, inner.c.d)))
                high = func.max(case((inner.c.rn == rank + 1, inner.c.d)))
                fraction = func.max((inner.c.n - 1) * p - cast((inner.c.n - 1) * p, Integer))
                figures.append((low + fraction * (func.coalesce(high, low) - low)).label(f"p{i}"))
            statement = select(*group, *figures).group_by(*group)
            if top is not None and not per:
                statement = statement.order_by(literal_column("hits").desc(), *group).limit(top)
            rows = conn.execute(statement).all()
        result = []
        for row in rows:
            values = list(row)
            key, (hits, users, visitors, transfer_sum, errors, mean, p50, p95, p99) = (
                values[: len(keys)],
                values[len(keys) :],
            )
            if transfer_sum is not None and float(transfer_sum).is_integer():
                transfer_sum = int(transfer_sum)
            result.append(
                StatsRow(
                    group=dict(zip(names, key, strict=True)),
                    hits=int(hits),
                    users=int(users),
                    visitors=int(visitors),
                    transfer=transfer_sum or 0,
                    errors=int(errors),
                    duration_mean=_float(mean),
                    duration_p50=_float(p50),
                    duration_p95=_float(p95),
                    duration_p99=_float(p99),
                )
            )
        return order_rows(result, names, per is not None, top), 0


def _aware(value: Any) -> dt.datetime:
    moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
