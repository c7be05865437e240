"""Hot statements, compiled once per dialect and run on the raw DBAPI cursor.

The worker runs a handful of statements for every event it applies. Through SQLAlchemy's
execution layer each costs ~100 µs of Python (cache key, execution context, result object)
against ~10 µs in SQLite itself: most of the drain rate. A `Prepared` statement is a Core
statement that SQLAlchemy compiles once per dialect — the same SQL text and the same bind and
result processing of the column types as `Connection.execute` — and that then runs on the
connection's DBAPI cursor, inside the caller's transaction. Errors are raised as SQLAlchemy's
own exception classes, as `Connection.execute` raises them. The ingest INSERT does the same by
hand (`store.events._EventInsert`).

`dialect_insert` is the one place that picks the dialect's INSERT (for ON CONFLICT clauses).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

Processor = Callable[[Any], Any] | None
_CURSOR = "timedify.store.prepared.cursor"


def dialect_insert(dialect: str, table: Table | Any) -> Any:
    """The INSERT of `dialect` (named), which has `on_conflict_do_nothing`/`_do_update`."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


@dataclass(frozen=True)
class _Compiled:
    """One dialect's SQL text and how to turn named values into the driver's parameters."""

    sql: str
    positional: bool
    names: tuple[str, ...]  # in the order of the placeholders (positional) or once each
    defaults: Mapping[str, Any]  # values the statement fixes itself (`state = 'processing'`)
    binds: Mapping[str, Processor]
    results: tuple[Processor, ...]
    keys: tuple[str, ...]


class Prepared:
    """A Core statement run on the raw DBAPI cursor with SQLAlchemy's type processing.

    `column_keys` names the columns an INSERT without `.values()` is given (as with
    `Connection.execute(insert(table), row)`, whose keys choose them). Only plain bound values
    are supported: no expanding `IN` lists and no Python-side column defaults.
    """

    def __init__(self, statement: Any, column_keys: Sequence[str] | None = None) -> None:
        self._statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run once; the number of rows it changed."""
        with _Cursor(conn, self._for(conn.dialect)) as cursor:
            cursor.execute(params)
            return cursor.rowcount

    def executemany(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> int:
        """Run once per row in one driver call; the number of rows changed in all."""
        with _Cursor(conn, self._for(conn.dialect)) as cursor:
            cursor.executemany(rows)
            return cursor.rowcount

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row it returns (SELECT or RETURNING), values converted to Python types."""
        with _Cursor(conn, self._for(conn.dialect)) as cursor:
            cursor.execute(params)
            return cursor.fetchall()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row it returns as a mapping of column keys to values, or None."""
        compiled = self._for(conn.dialect)
        found = self.rows(conn, params)
        return dict(zip(compiled.keys, found[0], strict=True)) if found else None

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        found = self.rows(conn, params)
        return found[0][0] if found else None

    def _for(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or _compile(
                    self._statement, dialect, self._column_keys
                )
                self._compiled[key] = compiled
        return compiled


def _compile(statement: Any, dialect: Dialect, column_keys: list[str] | None) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError("a prepared statement needs every column's value: no Python defaults")
    binds: dict[str, Processor] = {}
    defaults: dict[str, Any] = {}
    for param, name in compiled.bind_names.items():
        if param.expanding:
            raise ValueError("a prepared statement cannot expand IN lists")
        binds[name] = param.type.dialect_impl(dialect).bind_processor(dialect)
        if not param.required:
            defaults[name] = param.effective_value
    columns = list(getattr(statement, "exported_columns", ()))
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup) if positional else tuple(binds)
    escaped = getattr(compiled, "escaped_bind_names", None) or {}
    if escaped and not positional:
        raise ValueError("a prepared statement needs plain parameter names")
    return _Compiled(
        sql=compiled.string,
        positional=positional,
        names=names,
        defaults=defaults,
        binds=binds,
        results=results,
        keys=tuple(c.key for c in columns),
    )


class _Cursor:
    """A DBAPI cursor of the connection for one statement: parameters in, rows out."""

    def __init__(self, conn: Connection, compiled: _Compiled) -> None:
        self._conn = conn
        self._compiled = compiled
        self._cursor: Any = None

    def __enter__(self) -> _Cursor:
        # One cursor per DBAPI connection, kept for as long as that connection lives (SQLAlchemy
        # clears `info` when it replaces the connection): making a psycopg cursor costs more
        # than SQLite spends on one of these statements.
        pooled = self._conn.connection
        cached = pooled.info.get(_CURSOR)
        if cached is None or cached[0] is not pooled.dbapi_connection:
            dbapi: Any = pooled.dbapi_connection
            cached = pooled.info[_CURSOR] = (dbapi, dbapi.cursor())
        self._cursor = cached[1]
        return self

    def __exit__(self, *_exc: object) -> None:
        pass  # the cursor stays with its connection

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def execute(self, params: Mapping[str, Any]) -> None:
        values = self._values(params)
        self._run(lambda: self._cursor.execute(self._compiled.sql, values), values)

    def executemany(self, rows: Iterable[Mapping[str, Any]]) -> None:
        values = [self._values(row) for row in rows]
        self._run(lambda: self._cursor.executemany(self._compiled.sql, values), values)

    def fetchall(self) -> list[tuple[Any, ...]]:
        results = self._compiled.results
        return [
            tuple(
                value if process is None else process(value)
                for process, value in zip(results, row, strict=True)
            )
            for row in self._cursor.fetchall()
        ]

    def _values(self, params: Mapping[str, Any]) -> Any:
        compiled = self._compiled
        values = {}
        for name in compiled.binds:
            value = params[name] if name in params else compiled.defaults[name]
            process = compiled.binds[name]
            values[name] = value if process is None else process(value)
        if compiled.positional:
            return [values[name] for name in compiled.names]
        return values

    def _run(self, call: Callable[[], object], values: Any) -> None:
        dialect = self._conn.dialect
        try:
            call()
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                self._compiled.sql,
                values,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=dialect,
            ) from exc
