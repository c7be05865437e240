"""Statements over all the rows of a batch at once: one round trip whatever the batch's size.

On PostgreSQL a batch's rows travel as one array per column and become a relation with
`unnest(...)`: one statement, one plan and one round trip for any number of rows (a pipelined
`executemany` still costs the server a statement and the driver a message per row). On
SQLite a statement is a function call, not a round trip: the same changes run as `executemany`
of the one-row statement (`prepared.Prepared`), which the callers keep for that dialect.

Every name in these statements comes from the models; values are only ever parameters (hence
the `nosec B608` on the lines that join them into SQL text).

`one_of` is the matching WHERE clause for "any of these values": `= ANY(array)` on PostgreSQL
(one SQL text for any number of values, so the driver and the server parse it once), an
expanding `IN` elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Connection, String, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult, Dialect

from timedify.models import Base

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def one_of(column: ColumnElement[Any], name: str, dialect: str) -> Any:
    """`column` is one of the values bound as `name` (a list) in a statement for `dialect`:
    for a primary key of a large table (PostgreSQL: `= ANY(...)`, one index probe a value)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def among(column: ColumnElement[Any], name: str, dialect: str) -> Any:
    """As `one_of`, for a batch's keys over a table that may be small (the shops, their
    subscriptions): PostgreSQL gets `IN (SELECT unnest(...))`, a join it hashes. A small table is
    scanned, and `= ANY` of a bound array then compares every row with every value (only
    literal arrays are hashed): 200 values over 1,000 shops took 6 ms a statement."""
    if dialect == "postgresql":
        return column.in_(select(func.unnest(bindparam(name, type_=ARRAY(column.type)))))
    return column.in_(bindparam(name, expanding=True))


def insert_rows(
    conn: Connection,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: str = "",
    returning: str = "",
) -> CursorResult[Any]:
    """INSERT `rows` (PostgreSQL; all with the same keys) in one statement.

    `conflict` is the statement's ON CONFLICT clause as SQL (`(domain) DO UPDATE SET ...`),
    `returning` its RETURNING list.
    """
    columns = tuple(rows[0])
    relation, params = _relation(conn, model, columns, rows)
    names = ", ".join(columns)
    table = model.__tablename__
    sql = f"INSERT INTO {table} ({names}) SELECT {names} FROM {relation}"  # nosec B608
    if conflict:
        sql += f" ON CONFLICT {conflict}"
    if returning:
        sql += f" RETURNING {returning}"
    return conn.exec_driver_sql(sql, params)


def update_rows(
    conn: Connection,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    match: Sequence[str],
    assign: str,
    where: str = "",
) -> int:
    """UPDATE `model`'s table from `rows` (PostgreSQL) in one statement; the rows changed.

    Each row of `model`'s table whose `match` columns equal a row's gets `assign` (SQL in which `v.`
    names the row's values, e.g. `state = v.state`); `where` adds conditions on `model`'s table.
    """
    columns = tuple(rows[0])
    relation, params = _relation(conn, model, columns, rows)
    joined = " AND ".join(f"{model.__tablename__}.{c} = v.{c}" for c in match)
    condition = f"{joined} AND {where}" if where else joined
    table = model.__tablename__
    sql = f"UPDATE {table} SET {assign} FROM {relation} WHERE {condition}"  # nosec B608
    return int(conn.exec_driver_sql(sql, params).rowcount)


def delete_rows(
    conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]], *, match: Sequence[str]
) -> int:
    """DELETE the rows of `model`'s table whose `match` columns equal a row's (PostgreSQL)."""
    columns = tuple(rows[0])
    relation, params = _relation(conn, model, columns, rows)
    condition = " AND ".join(f"{model.__tablename__}.{c} = v.{c}" for c in match)
    table = model.__tablename__
    sql = f"DELETE FROM {table} USING {relation} WHERE {condition}"  # nosec B608
    return int(conn.exec_driver_sql(sql, params).rowcount)


def _relation(
    conn: Connection, model: type[Base], columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> tuple[str, dict[str, list[Any]]]:
    """`unnest(%(c0)s::type[], ...) AS v(columns)` over `rows`, and its array parameters."""
    relation, processors = _unnest(model, columns, conn.dialect)
    params: dict[str, list[Any]] = {}
    for index, (name, process) in enumerate(zip(columns, processors, strict=True)):
        values = [row[name] for row in rows]
        params[f"c{index}"] = values if process is None else [process(v) for v in values]
    return relation, params


@functools.cache
def _unnest(
    model: type[Base], columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    casts = []
    processors = []
    for index, name in enumerate(columns):
        column_type = model.__table__.c[name].type
        # A cast to VARCHAR(n) cuts a longer value short without a word; one to TEXT keeps it,
        # and assigning it to the column then refuses it, as a one-row statement does.
        sql_type = "TEXT" if isinstance(column_type, String) else column_type.compile(dialect=_PG)
        casts.append(f"%(c{index})b::{sql_type}[]")
        processors.append(column_type.dialect_impl(dialect).bind_processor(dialect))
    return f"unnest({', '.join(casts)}) AS v({', '.join(columns)})", tuple(processors)
