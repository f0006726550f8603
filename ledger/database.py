"""The database handle: engine, read and write transactions, and the bulk row writer.

Writers are serialised by one ledger-wide write lock, taken as the first thing a write
transaction does: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on
PostgreSQL. The journal is hash-chained in journal order, so positions must be assigned
one writer at a time; holding the lock also makes every validation (idempotency keys,
closed periods, balance constraints) see the state it will write against. Writers batch
thousands of entries per transaction, so the lock is taken once per batch, not per entry.
See docs/decisions.md ("One writer at a time").
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table, create_engine, event, insert, text
from sqlalchemy.engine import Engine, make_url

from config.limits import SQLITE_BUSY_TIMEOUT_SECONDS

_WRITE_OPTION = "ecoledger_write"


class DatabaseError(RuntimeError):
    """The database cannot be reached or is not an ecoledger database."""


class Database:
    """One ecoledger database. Cheap to keep for the life of a process; thread-safe."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.dialect_name = self.url.get_backend_name()
        if self.dialect_name not in ("sqlite", "postgresql"):
            raise DatabaseError(
                f"unsupported database {self.dialect_name!r}: use sqlite or postgresql"
            )
        self.engine: Engine = create_engine(self.url, echo=echo, **self._engine_options())
        if self.dialect_name == "sqlite":
            _configure_sqlite(self.engine)

    def _engine_options(self) -> dict[str, Any]:
        if self.dialect_name == "sqlite":
            return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
        return {"pool_pre_ping": True}

    @property
    def is_sqlite(self) -> bool:
        return self.dialect_name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def write(self, *, ledger_lock: bool = True) -> Iterator[Connection]:
        """A write transaction holding the ledger's write lock; commits when the block ends.

        Any exception rolls everything back: a rejected batch writes nothing. Writes that
        do not touch the ledger's state (the jobs table: heartbeats, progress) pass
        ``ledger_lock=False`` so that they do not queue behind a posting batch on
        PostgreSQL; SQLite has one writer at a time whatever we ask.
        """
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                if ledger_lock and self.dialect_name == "postgresql":
                    # Scoped to the schema, so that ledgers in separate schemas of one
                    # database (tests, tenants) do not wait for each other.
                    conn.execute(
                        text(
                            "SELECT pg_advisory_xact_lock("
                            "hashtextextended(current_schema() || '.ecoledger-write', 0))"
                        )
                    )
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction over one consistent snapshot (several queries, one state)."""
        with self.engine.connect() as conn:
            if self.dialect_name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Take transaction control away from the sqlite3 module (which would BEGIN lazily,
        # after the first SELECT) so that SQLAlchemy's begin below decides the mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed batch survives a power cut, not only a crash of the process.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection, _record) -> None:
        # SQLite plans queries without statistics until someone runs ANALYZE; its advice is
        # PRAGMA optimize as a connection closes. analysis_limit bounds each table's sample,
        # and no busy wait: if another writer holds the lock, the statistics wait for the
        # next close rather than this process waiting for the writer.
        try:
            dbapi_connection.execute("PRAGMA busy_timeout = 0")
            dbapi_connection.execute("PRAGMA analysis_limit = 400")
            dbapi_connection.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock now, so a writer never reads a snapshot it then
        # cannot write from; readers keep a plain deferred BEGIN and never block writers.
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class BulkWriter:
    """Appends rows to one table at the driver's full speed.

    SQLAlchemy compiles the INSERT (or names the columns for COPY) once; rows are plain
    tuples in column order, converted by the column types' own bind processors (dates on
    SQLite, UTC timestamps), so stored values are exactly what SQLAlchemy itself would
    store. SQLite gets one ``executemany``; PostgreSQL gets ``COPY ... FROM STDIN``.
    """

    def __init__(self, conn: Connection, table: Table, columns: Sequence[str]) -> None:
        self._conn = conn
        self._table = table
        self._columns = tuple(columns)
        dialect = conn.dialect
        processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        ]
        self._processed = [(i, p) for i, p in enumerate(processors) if p is not None]
        self._copy = dialect.name == "postgresql"
        if self._copy:
            quote = dialect.identifier_preparer.quote
            self._sql = (
                f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
            )
        else:
            compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
            if list(compiled.positiontup or ()) != list(columns):
                raise ValueError(f"{table.name}: give columns in table order, not {columns}")
            self._sql = str(compiled)

    def converter(self, column: str) -> Callable[[Any], Any]:
        """What the driver receives for a value of ``column``, memoised: for values that
        repeat (dates, the batch's timestamp) callers convert once and write prepared rows."""
        index = self._columns.index(column)
        process = dict(self._processed).get(index)
        if process is None:
            return lambda value: value
        memo: dict[Any, Any] = {}

        def convert(value: Any) -> Any:
            converted = memo.get(value)
            if converted is None:
                if len(memo) >= 10_000:
                    memo.clear()
                converted = memo[value] = process(value)
            return converted

        return convert

    def _convert(self, rows: Iterable[tuple]) -> Iterable[tuple]:
        if not self._processed:
            return rows
        processed = self._processed

        def convert(row: tuple) -> tuple:
            values = list(row)
            for index, process in processed:
                values[index] = process(values[index])
            return tuple(values)

        return map(convert, rows)

    def write(self, rows: Sequence[tuple], *, prepared: bool = False) -> None:
        """Append ``rows`` (tuples in column order). ``prepared``: every value that needs
        conversion already went through ``converter``."""
        if not rows:
            return
        converted = rows if prepared else self._convert(rows)
        if self._copy:
            cursor = self._conn.connection.driver_connection.cursor()
            with cursor.copy(self._sql) as copy:
                for row in converted:
                    copy.write_row(row)
        else:
            self._conn.exec_driver_sql(self._sql, list(converted))


def rows_matching(conn: Connection, select_where: str, values: list, chunk_size: int) -> Iterator[tuple]:
    """Rows of ``select_where`` (SQL ending in ``WHERE column``) whose column is one of
    ``values``, in chunks. Driver-level SQL: SQLAlchemy's expanding IN renders thousands
    of parameters per call and measured 4x slower than the lookup itself. PostgreSQL gets
    one array parameter."""
    for start in range(0, len(values), chunk_size):
        chunk = values[start : start + chunk_size]
        if conn.dialect.name == "postgresql":
            yield from conn.exec_driver_sql(f"{select_where} = ANY(%s)", (chunk,))
        else:
            yield from conn.exec_driver_sql(f"{select_where} IN ({','.join('?' * len(chunk))})", tuple(chunk))


def scratch_postgres_schema(url: str, prefix: str = "scratch") -> tuple[str, Callable[[], None]]:
    """Create a new, empty schema in the PostgreSQL database at ``url``; return a URL whose
    connections work in it (through search_path) and a function that drops it. For tests
    and benchmarks that each need a ledger of their own in one database."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop
