"""Fewer round trips to the database on the hot path (a chat turn).

`run_together` sends several statements in one round trip on Postgres (psycopg's pipeline
mode: the server still runs them one after another, each with its own snapshot, so a
`SELECT ... FOR UPDATE` followed by a read behaves exactly as two separate calls) and one
by one elsewhere (SQLite). `insert_statement` is the INSERT ... RETURNING id that
`Model.save()` would run, so a row can join such a batch; `new_ids` takes primary keys
from a table's sequence ahead of the inserts (Postgres), so that rows referring to each
other can go in one batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.sql import InsertQuery

Statement = tuple[str, Sequence[Any]]


def run_together(statements: Sequence[Statement]) -> list[list[tuple]]:
    """Run the statements in order, in one round trip on Postgres; each one's rows.

    Inside a transaction (the caller's `atomic()`) they are part of it. A failing statement
    raises as it would alone (the ones after it are not run).
    """
    connection.ensure_connection()
    with contextlib.ExitStack() as stack:
        cursors = [stack.enter_context(connection.cursor()) for _ in statements]
        batch = (
            connection.connection.pipeline()
            if connection.vendor == "postgresql"
            else contextlib.nullcontext()
        )
        # An error surfaces when the batch is left, outside the cursors' own wrapping:
        # Django's wrapper turns it into django.db's exception classes all the same.
        with connection.wrap_database_errors, batch:  # leaving sends them, collects results
            for cursor, (sql, params) in zip(cursors, statements, strict=True):
                cursor.execute(sql, params)
        return [cursor.fetchall() if cursor.description else [] for cursor in cursors]


def insert_statement(obj: Model) -> Statement:
    """The INSERT of this unsaved object (every concrete field; an auto primary key only when
    it is set, see `new_ids`), returning its primary key: pass the row's value to `saved()`.

    The SQL of a model is compiled once per process (compiling costs more than the insert);
    each call only prepares the values, as the compiler does.
    """
    key = (type(obj), connection.vendor, obj.pk is not None)
    found = _INSERTS.get(key)
    if found is None:
        sql, params, compiler, fields = _compile_insert(obj)
        if params != _values(compiler, fields, obj):  # a field with its own SQL: no reuse
            return sql, params
        found = _INSERTS[key] = (sql, compiler, fields)
    sql, compiler, fields = found
    return sql, _values(compiler, fields, obj)


_INSERTS: dict[tuple[type[Model], str, bool], tuple[str, Any, list[Any]]] = {}


def _compile_insert(obj: Model) -> tuple[str, list[Any], Any, list[Any]]:
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field or obj.pk is not None]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, list(params), compiler, fields


def _values(compiler, fields: list[Any], obj: Model) -> list[Any]:
    return [compiler.prepare_value(f, compiler.pre_save_val(f, obj)) for f in fields]


def new_ids(model: type[Model], count: int) -> Statement | None:
    """The statement taking `count` primary keys from the model's sequence (ascending), or
    None where there is no sequence to take from (SQLite: insert, then read the key).

    Like any sequence value, a key taken by a transaction that rolls back is not reused.
    """
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(model._meta.db_table)
    column = model._meta.pk.column
    return (
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s) ORDER BY 1",
        [table, column, count],
    )


def saved(obj: Model, rows: list[tuple]) -> Model:
    """Mark an object inserted by `insert_statement` as saved, with its primary key."""
    obj.pk = rows[0][0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def compiled(queryset: QuerySet) -> tuple[str, list[Any]]:
    """A queryset's SQL and parameters: compile once (it costs more than running it), then
    `bind()` the values of each call in place of the ones compiled with."""
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def bind(params: list[Any], values: dict[Any, Any]) -> list[Any]:
    """The parameters with each placeholder value (a key of `values`) replaced."""
    return [values.get(p, p) if isinstance(p, int) else p for p in params]
