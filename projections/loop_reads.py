"""`LoopReads`: one-statement reads of the read model run from the event loop without a thread hop.

A `/v2/` pull made one hop to a read thread per statement (`api.read_threads`): the loop hands the
call to a thread, the thread takes a connection from the library's pool, runs the statement and
wakes the loop again. On this 2-core machine that hand-over cost more than the statement itself
(benchmarks/RESULTS.md, "Session 7"). Here, by backend:

- SQLite in a file: the statement runs on the loop's thread, on a connection of that thread's
  own outside the library's pool (so it never waits for a pool slot a writer holds). In WAL mode a
  reader never waits for writers, and one statement in autocommit sees every transaction committed
  before it started, by any process: a tag pushed through another worker is there at once.
- PostgreSQL: the statement goes through psycopg's asynchronous pool on the loop (autocommit, as
  the library's pool: each statement sees everything committed before it), so the loop waits for
  the round trip as for any socket, with no thread.
- SQLite in memory (the in-process tests): reads and writes of its shared cache exclude each
  other, so the statement still goes to a read thread through the library's pool, as before.

Every statement is a `Read` that `RegistryQueries` builds, the same SQL its blocking methods run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dockyard.projections.dialect import Dialect
from dockyard.projections.registry_queries import Read

T = TypeVar("T")

# The asynchronous pool of each worker: enough for the reads in flight at once on one loop (each
# holds its connection for one round trip); the library's pool keeps serving the threads.
ASYNC_POOL_MIN, ASYNC_POOL_MAX = 1, 4


class LoopReads:
    """Runs `Read`s for callers on one event loop. `offload` runs a blocking call in a thread and
    awaits it (the API's read threads): the fallback for an in-memory SQLite database."""

    def __init__(self, datastore: Any, dialect: Dialect,
                 offload: Callable[[Callable[[], Any]], Awaitable[Any]]) -> None:
        self._datastore = datastore
        self._dialect = dialect
        self._offload = offload
        self._sqlite_path: str | None = None
        if dialect.name == "sqlite":
            name = str(datastore.pool.db_name)
            if not datastore.pool.detect_memory_mode(name):
                self._sqlite_path = name
        self._local = threading.local()  # SQLite: the connection of each thread that reads inline
        self._async_pool: Any = None  # PostgreSQL: psycopg's AsyncConnectionPool, opened on first use
        self._async_lock = asyncio.Lock()

    @property
    def inline(self) -> bool:
        """Whether statements run on the caller's thread (SQLite in a file)."""
        return self._sqlite_path is not None

    async def run(self, read: Read[T]) -> T:
        """`read`'s answer, from everything committed before it ran."""
        if self._sqlite_path is not None:
            return read.answer(self._sqlite_rows(read))
        if self._dialect.name == "postgres":
            return read.answer(await self._postgres_rows(read))
        return await self._offload(lambda: read.answer(self._pooled_rows(read)))

    # -- SQLite ------------------------------------------------------------------------------

    def _sqlite_rows(self, read: Read[Any]) -> list[Any]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._sqlite_connect()
        return connection.execute(self._dialect.sql(read.statement), read.params).fetchall()

    def _sqlite_connect(self) -> sqlite3.Connection:
        # Autocommit (each SELECT its own read transaction, ended by fetchall), read only, bound to
        # this thread (sqlite3's same-thread check stays on). The busy timeout only matters while
        # SQLite recovers a WAL after a crash: a reader never waits for writers otherwise.
        assert self._sqlite_path is not None
        connection = sqlite3.connect(self._sqlite_path, uri=True, isolation_level=None, timeout=5.0)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA query_only = 1")
        return connection

    # -- PostgreSQL ----------------------------------------------------------------------------

    async def _postgres_rows(self, read: Read[Any]) -> list[Any]:
        pool = self._async_pool or await self._open_async_pool()
        async with pool.connection() as connection:
            cursor = await connection.execute(read.statement, read.params)
            return await cursor.fetchall()

    async def _open_async_pool(self) -> Any:
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        async with self._async_lock:
            if self._async_pool is None:
                library = self._datastore.pool  # the same server, user and database as the library's pool
                kwargs = {k: v for k, v in dict(library.kwargs or {}).items() if k != "row_factory"}
                pool: Any = AsyncConnectionPool(
                    library.conninfo or "", kwargs={**kwargs, "autocommit": True, "row_factory": dict_row},
                    connection_class=AsyncConnection, min_size=ASYNC_POOL_MIN, max_size=ASYNC_POOL_MAX,
                    open=False, name="dockyard-loop-reads")
                await pool.open(wait=True)
                self._async_pool = pool
        return self._async_pool

    # -- in-memory SQLite ----------------------------------------------------------------------

    def _pooled_rows(self, read: Read[Any]) -> list[Any]:
        with self._dialect.reading(self._datastore) as cursor:
            cursor.execute(self._dialect.sql(read.statement), read.params)
            return cursor.fetchall()

    async def close(self) -> None:
        """Close the asynchronous pool (PostgreSQL); this thread's SQLite connection."""
        pool, self._async_pool = self._async_pool, None
        if pool is not None:
            await pool.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            connection.close()
