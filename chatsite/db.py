"""Fewer round trips to the database on the hot path (a chat turn).

`run_together` sends several statements in one round trip on Postgres (one query of several
statements: the server still runs them one after another, each with its own snapshot, so a
`SELECT ... FOR UPDATE` followed by a read behaves exactly as two separate calls) and one
by one elsewhere (SQLite). `insert_statement` is the INSERT ... RETURNING id that
`Model.save()` would run, so a row can join such a batch; `new_ids` takes primary keys
from a table's sequence ahead of the inserts (Postgres), so that rows referring to each
other can go in one batch. `commit_with` sends a transaction's last statements with its
COMMIT (in an `ending_in_batch()` block), so the shared rows they lock are held for no
round trip of the client.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import DatabaseSyncToAsync
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.sql import InsertQuery
from django.db.models.sql.subqueries import UpdateQuery
from psycopg import _queries, errors, pq

Statement = tuple[str, Sequence[Any]]
_ROWS = pq.ExecStatus.TUPLES_OK  # a statement's result with rows to fetch


@functools.cache
def _orm_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.ORM_THREADS, thread_name_prefix="orm")


def orm(function: Callable) -> Callable:
    """`database_sync_to_async`, on a pool of ORM_THREADS threads instead of Channels' one
    (with ORM_THREADS = 1, the default on SQLite, on Channels' one).

    Each call is self-contained (its own connection from the pool, its own transaction), so
    calls of different turns need not wait for each other: with one thread, a turn's round
    trips queued behind every other turn's, and under load the reply's last frame waited
    0.4-0.9 s for the thread (measured at 300 streams). Old connections are closed before
    and after each call, as Channels does.
    """
    if settings.ORM_THREADS <= 1:  # Channels' one database thread (SQLite: one writer)
        return DatabaseSyncToAsync(function)
    return DatabaseSyncToAsync(function, thread_sensitive=False, executor=_orm_threads())


def close_orm_connections() -> None:
    """Close the connections each ORM thread holds (before a test database is dropped)."""
    if settings.ORM_THREADS <= 1:
        return  # `orm` runs on Channels' thread
    count = _orm_threads()._max_workers  # its size when it was made
    everyone = threading.Barrier(count)

    def close() -> None:
        everyone.wait(timeout=10)  # one task per thread: each waits for all the others
        connections.close_all()

    for done in [_orm_threads().submit(close) for _ in range(count)]:
        done.result()


SEPARATOR = ";\n"  # between the statements of a batch sent as one query (and in QueryLog)

# psycopg converts a query's %s placeholders with a regular expression, and remembers the
# result (an LRU of 128 queries) only for queries of at most 4,096 characters and 50
# parameters: a turn's batches are larger (a finished reply's has 89 parameters), so each was
# parsed again every time, 0.11 and 0.15 ms of an ORM thread's CPU per turn. Their text is
# the same every time: let psycopg remember them (at most 128 queries of 16 KB). (Its
# internals: tests/test_db.py fails if a psycopg release renames them.)
_REMEMBERED = {"MAX_CACHED_STATEMENT_LENGTH": 16_384, "MAX_CACHED_STATEMENT_PARAMS": 500}
for _name, _least in _REMEMBERED.items():
    if hasattr(_queries, _name):
        setattr(_queries, _name, max(getattr(_queries, _name), _least))


def run_together(statements: Sequence[Statement]) -> list[list[tuple]]:
    """Run the statements in order, in one round trip on Postgres; each one's rows.

    Inside a transaction (the caller's `atomic()`) they are part of it; outside one they
    run as one (Postgres runs a query of several statements in one transaction). A failing
    statement raises as it would alone (the ones after it are not run).

    On Postgres they go as one query of several statements (psycopg's client-side binding,
    Django's default): one send and one wait for the lot. psycopg's pipeline mode, used
    before, sent and polled once per statement, and an ORM thread gives up the GIL at each
    system call: under load each was a hand-over with the event loop (bench/README.md).
    Each statement is run as a statement prepared on the connection (`_Prepared`).
    """
    if not statements:
        return []
    connection.ensure_connection()
    if connection.vendor != "postgresql":
        results = []
        for sql, params in statements:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                results.append(cursor.fetchall() if cursor.description else [])
        return results
    batch, ours, reset = _PREPARED.batch(connection.connection, statements)
    sql = SEPARATOR.join(statement.rstrip().rstrip(";") for statement, _ in batch)
    params = [value for _, values in batch for value in values]
    results = []
    with connection.cursor() as cursor:
        try:
            cursor.execute(sql, params)  # Django's wrapper: its errors, its query log
        except Exception as exc:
            _PREPARED.failed(connection.connection, ours, reset, exc)
            raise
        _PREPARED.done(connection.connection, ours)
        # Every result has arrived with the execute (a failing statement raised there):
        # each is read on psycopg's own cursor, by its status. Django's wrapper made an
        # error wrapper per attribute read, and `description` a column object for every
        # column of every result: 13% of a turn start's instructions (bench/README.md).
        results_of = cursor.cursor
        with connection.wrap_database_errors:
            for _ in range(len(batch) - len(statements)):  # PREPARE, DEALLOCATE: no rows
                results_of.nextset()
            for _ in statements:
                result = results_of.pgresult
                rows = result is not None and result.status == _ROWS
                results.append(results_of.fetchall() if rows else [])
                results_of.nextset()
    return results


class _Prepared:
    """The statements of `run_together` batches, prepared on each connection (SQL `PREPARE`
    the first time a connection runs one, `EXECUTE` with its values from then on).

    A batch goes as one query of several statements, which only the simple query protocol
    carries, and psycopg prepares statements only through the extended one (server-side
    binding, one statement per query, or its pipeline: see run_together). Unprepared, the
    server parsed and planned every statement of every turn again: a turn's start spent
    about 0.6 ms of its 2.6 (median, Postgres on loopback) in it.

    The PREPAREs of a batch go first in it (they run nothing, so a failure after them means
    they are in place). If a batch fails otherwise, what is prepared on that connection is
    not known: its next batch starts with `DEALLOCATE ALL`. Prepared statements outlive a
    transaction's rollback and last as long as the connection (the pool keeps it open), and
    are made only for the statements of these batches (compiled once, so the same few dozen
    texts: at most MAX of them). DATABASE_PREPARED_STATEMENTS=false turns this off (a
    pooler in transaction mode, PgBouncer's, hands each transaction another server
    connection, which would not have the statement).
    """

    MAX = 256
    PREPARABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES")
    PLACEHOLDER = re.compile(r"%[%s]")
    # Errors of running a statement, never of a PREPARE: its PREPAREs ran before it.
    AFTER_PREPARE = ("22", "23", "40")  # data exception, integrity, rollback (deadlock)

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # SQL -> name
        self.sql: dict[str, str] = {}  # name -> SQL (QueryLog shows the statement)
        self.on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
        self.unsure: weakref.WeakSet[Any] = weakref.WeakSet()
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def name(self, sql: str) -> str | None:
        if not settings.DATABASE_PREPARED_STATEMENTS:
            return None
        found = self.names.get(sql)
        if found is not None:
            return found
        if not sql.lstrip().upper().startswith(self.PREPARABLE):
            return None
        with self._lock:
            found = self.names.get(sql)
            if found is None and len(self.names) < self.MAX:
                found = self.names[sql] = f"chatsite_{next(self._count)}"
                self.sql[found] = sql
        return found

    def batch(
        self, raw, statements: Sequence[Statement]
    ) -> tuple[list[Statement], list[str], bool]:
        """The statements to send (PREPAREs first, then each one, as EXECUTE where
        prepared), the names this batch prepares and whether it deallocates them all first."""
        prepared = self.on.get(raw)
        first: list[Statement] = []
        reset = raw in self.unsure
        if prepared is None or reset:
            if reset:
                first.append(("DEALLOCATE ALL", []))
                self.unsure.discard(raw)
            prepared = self.on[raw] = set()
        ours: list[str] = []
        executed: list[Statement] = []
        for sql, params in statements:
            name = self.name(sql)
            if name is None:
                executed.append((sql, params))
                continue
            if name not in prepared and name not in ours:
                ours.append(name)
                first.append((f"PREPARE {name} AS {self.numbered(sql)}", []))
            executed.append((self.execute(name, len(params)), params))
        return [*first, *executed], ours, reset

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def execute(name: str, count: int) -> str:
        return f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"

    def numbered(self, sql: str) -> str:
        """The statement with $1, $2, ... for its %s placeholders (a %% stays: the batch is
        formatted by psycopg, which makes it a %)."""
        number = itertools.count(1)
        return self.PLACEHOLDER.sub(
            lambda found: f"${next(number)}" if found[0] == "%s" else found[0],
            sql.rstrip().rstrip(";"),
        )

    def done(self, raw, ours: list[str]) -> None:
        self.on[raw].update(ours)

    def failed(self, raw, ours: list[str], reset: bool, exc: Exception) -> None:
        """After a failed batch: what it prepared is in place, or the connection is unsure
        (a batch that neither prepared nor deallocated changed nothing)."""
        cause = exc.__cause__ if isinstance(exc.__cause__, errors.Error) else exc
        if (getattr(cause, "sqlstate", None) or "")[:2] in self.AFTER_PREPARE:
            self.done(raw, ours)
        elif ours or reset:
            self.unsure.add(raw)

    def statement(self, sql: str) -> str | None:
        """The SQL a statement of a sent batch stands for; None for a PREPARE/DEALLOCATE."""
        if sql.startswith(("PREPARE chatsite_", "DEALLOCATE ALL")):
            return None
        if sql.startswith("EXECUTE chatsite_"):
            return self.sql[sql[len("EXECUTE ") :].split("(", 1)[0]]
        return sql


_PREPARED = _Prepared()


def statements_sent(sql: str) -> list[str]:
    """The statements a query sent by `run_together` (or any other) stands for, in order:
    each EXECUTE as the SQL prepared under its name, no PREPARE or DEALLOCATE."""
    return [s for s in map(_PREPARED.statement, sql.split(SEPARATOR)) if s is not None]


COMMIT = "COMMIT"
_COMMITS_IN_BATCH = "_chatsite_commits_in_batch"  # set on the connection by ending_in_batch


@contextlib.contextmanager
def ending_in_batch(*, last: bool = False) -> Iterator[None]:
    """`transaction.atomic()` whose last statements may go with its COMMIT (`commit_with`).

    Outermost, it is a transaction of its own, and its `commit_with` commits. Inside another
    block it joins that one (`atomic(savepoint=False)`) and its `commit_with` commits only
    with `last=True`, the caller's word that nothing runs in the transaction after this
    block, and only if the outer block is an `ending_in_batch` too: a helper that commits
    when it runs alone (a hold's release) never ends its caller's transaction, nor a test's.
    """
    outermost = not connection.in_atomic_block
    outer = False if outermost else getattr(connection, _COMMITS_IN_BATCH, False)
    with transaction.atomic(savepoint=False):  # outermost: a transaction of its own
        setattr(connection, _COMMITS_IN_BATCH, outermost or (outer and last))
        try:
            yield
        finally:
            setattr(connection, _COMMITS_IN_BATCH, outer)


def commit_with(statements: Sequence[Statement]) -> list[list[tuple]]:
    """Run the transaction's last statements; on Postgres, with its COMMIT in one round trip.

    The rows these statements lock (shared ones: a month's budget row, the site's day of
    spend) are then held only while the server runs them and commits, never while the
    client's thread comes back for another round trip: under load that thread waits for
    the GIL and the busy event loop for milliseconds, and every other turn of the site
    queued behind its locks. Only as the last database work of an `ending_in_batch()`
    block; where that cannot be known (SQLite, an outer transaction, a savepoint), the
    block's exit commits as usual.
    """
    if statements and commits_in_batch():
        *rows, _ = run_together([*statements, (COMMIT, [])])
        return rows  # the block's exit finds nothing left to commit (psycopg skips it)
    return run_together(statements)


def commits_in_batch() -> bool:
    """Whether `commit_with` here would send the COMMIT with its statements (Postgres, the
    last work of an `ending_in_batch()` block that may commit): a caller may then leave to
    the server a check that, failing, aborts the transaction before its COMMIT."""
    return (
        connection.vendor == "postgresql"
        and getattr(connection, _COMMITS_IN_BATCH, False)
        and connection.in_atomic_block
        and not any(connection.savepoint_ids)  # None: a block without a savepoint
        and not connection.needs_rollback
    )


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


def update_statement(obj: Model, fields: Sequence[str]) -> Statement:
    """The UPDATE that `obj.save(update_fields=fields)` would run, returning the primary key
    (no row: nothing was updated, where save() would raise), so a save can join a batch.

    Compiled once per model and fields, as `insert_statement`; unlike save(), it sends no
    `pre_save`/`post_save` signals.
    """
    meta = obj._meta
    concrete = [meta.get_field(name) for name in fields]
    raw = [(f, f.pre_save(obj, False)) for f in concrete]  # once: an auto_now field moves on
    values = [f.get_db_prep_save(value, connection) for f, value in raw]
    key = (type(obj), connection.vendor, tuple(fields))
    sql = _UPDATES.get(key)
    if sql is None:
        query = UpdateQuery(type(obj))
        query.add_update_fields([(f, None, value) for f, value in raw])
        query.add_filter("pk", obj.pk)
        sql, params = query.get_compiler(connection=connection).as_sql()
        sql += f" RETURNING {connection.ops.quote_name(meta.pk.column)}"
        if list(params) != [*values, obj.pk]:  # a field with its own SQL: no reuse
            return sql, list(params)
        _UPDATES[key] = sql
    return sql, [*values, obj.pk]


_UPDATES: dict[tuple[type[Model], str, tuple[str, ...]], str] = {}


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


def per_vendor[T](build: Callable[[], T]) -> Callable[[], T]:
    """`build()` once per database vendor (the SQL of Postgres and SQLite differs): for
    queries compiled once per process (`compiled`) and bound per call (`bind`)."""
    built: dict[str, T] = {}

    @functools.wraps(build)
    def once() -> T:
        found = built.get(connection.vendor)
        if found is None:
            found = built[connection.vendor] = build()
        return found

    return once


def bind(params: list[Any], values: dict[Any, Any]) -> list[Any]:
    """The parameters with each placeholder value (a key of `values`) replaced."""
    return [values.get(p, p) if isinstance(p, int) else p for p in params]


class QueryLog:
    """The SQL of every query the process runs while it is entered, in any thread: the ORM
    calls of a turn run on a pool of threads (`orm`), each with its own connection, of which
    Django's CaptureQueriesContext sees one. Tests and the bench count a turn's queries with
    it. (It wraps Django's cursor while entered: a measuring tool, not for serving.)"""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self._lock = threading.Lock()
        self._original = None

    def __enter__(self) -> QueryLog:
        original = self._original = CursorWrapper._execute_with_wrappers
        log = self

        def logged(cursor, sql, params, many, executor):
            with log._lock:  # a batch: each of its statements (a COMMIT is no query)
                log.sql.extend(s for s in statements_sent(sql) if s != COMMIT)
            return original(cursor, sql, params, many, executor)

        CursorWrapper._execute_with_wrappers = logged
        return self

    def __exit__(self, *exc: object) -> None:
        CursorWrapper._execute_with_wrappers = self._original
