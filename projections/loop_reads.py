"""`LoopReads`: one-statement reads of the read model run from the event loop without a thread hop.

A `/v2/` pull made one hop to a read thread per statement (`api.read_threads`): the loop hands the
call to a thread, the thread takes a connection from the library's pool, runs the statement and
wakes the loop again. On this 2-core machine that hand-over cost more than the statement itself
(benchmarks/RESULTS.md, "Session 7"). Here, by backend:

- SQLite in a file: the statement runs on the loop's thread, on a connection of that thread's
  own outside the library's pool (so it never waits for a pool slot a writer holds). In WAL mode a
  reader never waits for writers, and one statement in autocommit sees every transaction committed
  before it started, by any process: a tag pushed through another worker is there at once.
- PostgreSQL: the statement goes over one of a few asynchronous psycopg connections of the loop's
  own (autocommit, as the library's pool: each statement sees everything committed before it), so
  the loop waits for the round trip as for any socket, with no thread. They are a free list, not
  psycopg_pool's `AsyncConnectionPool`, whose checkout machinery (a timed wait per checkout) cost
  ~30 µs of CPU a statement more on this machine (benchmarks/RESULTS.md, "Session 7"). A
  connection that fails is dropped with every idle one (the server went away or restarted), and
  the request answers `Unavailable` (503) as the library's pool does (commands.database); for a
  moment after a failed connect, requests fail at once instead of each waiting again.
- SQLite in memory (the in-process tests): reads and writes of its shared cache exclude each
  other, so the statement still goes to a read thread through the library's pool, as before.

Every statement is a `Read` that `RegistryQueries` builds, the same SQL its blocking methods run.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dockyard.domain.errors import Unavailable
from dockyard.projections.dialect import Dialect
from dockyard.projections.registry_queries import Read

T = TypeVar("T")
log = logging.getLogger("dockyard.projections")

# PostgreSQL connections of each worker's loop, opened as needed: enough for the reads in flight at
# once on one loop (each holds its connection for one round trip); the library's pool keeps
# serving the threads.
LOOP_CONNECTIONS = 4
COOLDOWN = 1.0  # s after a failed connect during which reads answer Unavailable at once


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
        # PostgreSQL: the loop's connections — all of them, the idle ones, and the callers waiting
        # for one (a future that gets a connection, or None: open one yourself).
        self._connections: set[Any] = set()
        self._idle: list[Any] = []
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._down_until = 0.0

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
        import psycopg

        connection = self._idle.pop() if self._idle else await self._checkout()
        try:
            cursor = await connection.execute(read.statement, read.params)
            rows = await cursor.fetchall()
        except psycopg.OperationalError as exc:  # the connection or the server failed
            log.warning("database unavailable: %s", exc)
            await self._drop(connection, *self._idle)
            raise Unavailable() from None
        except BaseException:  # a statement error, or cancelled mid-statement: its state is unknown
            await self._drop(connection)
            raise
        self._checkin(connection)
        return rows

    async def _checkout(self) -> Any:
        """An idle connection, a new one while fewer than LOOP_CONNECTIONS are open, else the next
        one given back."""
        while True:
            if self._idle:
                return self._idle.pop()
            if len(self._connections) < LOOP_CONNECTIONS:
                return await self._connect()
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            connection = await waiter
            if connection is not None:
                return connection

    async def _connect(self) -> Any:
        from psycopg import AsyncConnection, OperationalError
        from psycopg.rows import dict_row

        if time.monotonic() < self._down_until:
            raise Unavailable()
        library = self._datastore.pool  # the same server, user, database and settings as its pool
        kwargs = {k: v for k, v in dict(library.kwargs or {}).items() if k != "row_factory"}
        placeholder = object()  # counts towards LOOP_CONNECTIONS while connecting
        self._connections.add(placeholder)
        try:
            connection = await AsyncConnection.connect(library.conninfo or "", **kwargs, autocommit=True,
                                                       row_factory=dict_row)
        except BaseException as exc:
            self._connections.discard(placeholder)
            self._wake_one(None)  # a waiter may try the connection this one did not open
            if not isinstance(exc, OperationalError):
                raise
            log.warning("database unavailable: %s", exc)
            self._down_until = time.monotonic() + COOLDOWN
            raise Unavailable() from None
        self._connections.discard(placeholder)
        self._connections.add(connection)
        return connection

    def _checkin(self, connection: Any) -> None:
        if not self._wake_one(connection):
            self._idle.append(connection)

    def _wake_one(self, connection: Any) -> bool:
        """Hand `connection` (None: the right to open one) to the first caller still waiting."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    async def _drop(self, *connections: Any) -> None:
        for connection in connections:
            self._connections.discard(connection)
            if connection in self._idle:
                self._idle.remove(connection)
            self._wake_one(None)
            try:
                await connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection: nothing left to do
                pass

    # -- in-memory SQLite ----------------------------------------------------------------------

    def _pooled_rows(self, read: Read[Any]) -> list[Any]:
        with self._dialect.reading(self._datastore) as cursor:
            cursor.execute(self._dialect.sql(read.statement), read.params)
            return cursor.fetchall()

    async def close(self) -> None:
        """Close the loop's PostgreSQL connections; this thread's SQLite connection."""
        connections, self._connections, self._idle = list(self._connections), set(), []
        for connection in connections:
            if hasattr(connection, "close"):
                await connection.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            connection.close()
