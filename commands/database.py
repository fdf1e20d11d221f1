"""Every database wait bounded, and database failures turned into domain errors.

With PostgreSQL gone, the library's defaults made a request wait minutes: each read and write
is retried 10 times, and each try waited up to 30 s for a pool connection the pool could not
make (libpq itself has no connect timeout by default). `guard_postgres` bounds each wait:

- a new connection: `CONNECT_TIMEOUT` s (libpq `connect_timeout`), TCP keepalives for a peer
  that vanished without closing;
- a connection from the pool: `POSTGRES_CONNECT_TIMEOUT` (the pool's wait, set in
  `persistence.event_store_env`); past it `Unavailable` is raised, which the library does not
  retry, and for `COOLDOWN` s after that requests fail at once instead of each waiting again;
- a statement: `STATEMENT_TIMEOUT_MS` (server side), lock waits `POSTGRES_LOCK_TIMEOUT`; both
  end as `Unavailable` too, not as 10 retries;
- the pool stops retrying a lost connection after `RECONNECT_TIMEOUT` s (default 5 min), so the
  next request makes a fresh one: the registry recovers within seconds of the database's return.

Every other operational failure (a connection lost under a request) is `Unavailable` as well:
503, which asks the client to retry, and never a 500. Not covered: a server that stops
answering without closing its connections (SIGSTOP) waits on the kernel's TCP timeouts.

A full disk under SQLite ("database or disk is full") or PostgreSQL (`DiskFull`) raises
`StorageFull` (507), on both backends through `guard_sqlite` / `guard_postgres`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError

from dockyard.domain.errors import StorageFull, Unavailable

log = logging.getLogger("dockyard.database")

CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 30_000
RECONNECT_TIMEOUT = 5.0
COOLDOWN = 1.0


def _failure(cause: BaseException | None) -> str | None:
    """What a library error's cause means: "full" (no space), "down" (no connection within the
    pool's wait), "slow" (a statement or lock wait timed out), or None (let the library retry)."""
    if isinstance(cause, sqlite3.OperationalError):
        return "full" if getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL else None
    from psycopg import errors as pg
    from psycopg_pool import PoolTimeout, TooManyRequests

    if isinstance(cause, pg.DiskFull):
        return "full"
    if isinstance(cause, PoolTimeout | TooManyRequests):
        return "down"
    if isinstance(cause, pg.QueryCanceled | pg.LockNotAvailable):
        return "slow"
    return None


class _Guarded:
    """Wraps a datastore's `get_connection` or `transaction` context manager.

    With `pool` (PostgreSQL) every operational failure is `Unavailable`: reads through the read
    models have no retries of their own, and a 500 would say the request was wrong. When a
    connection died under a request (the server restarted or went away), the pool's idle
    connections are checked at once, so the dead ones are dropped now rather than each failing
    a later request: after a restart at most the requests already running see a 503.
    """

    def __init__(self, inner: Callable[..., AbstractContextManager[Any]], pool: Any = None) -> None:
        self._inner = inner
        self._pool = pool
        self._down_until = 0.0

    @contextmanager
    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        if self._pool is not None and time.monotonic() < self._down_until:
            raise Unavailable()
        try:
            with self._inner(*args, **kwargs) as value:
                yield value
        except (OperationalError, InterfaceError) as exc:
            failure = _failure(exc.__cause__)
            if failure == "full":
                log.warning("database write failed: %s", exc)
                raise StorageFull() from None
            if self._pool is None:
                raise
            log.warning("database unavailable: %s", exc)
            if failure == "down":  # the next requests fail at once, for a moment
                self._down_until = time.monotonic() + COOLDOWN
            elif failure is None:  # the connection was lost: drop the pool's other dead ones now
                try:
                    self._pool.check()
                except Exception as check_error:  # noqa: BLE001 - best effort; the pool recovers anyway
                    log.info("pool check failed: %s", check_error)
            raise Unavailable() from None


def guard_postgres(datastore: Any) -> None:
    """Bound the waits of an `eventsourcing.postgres.PostgresDatastore` (before it is used)."""
    pool = datastore.pool
    pool.kwargs.update(connect_timeout=CONNECT_TIMEOUT, options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                       keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
    pool.reconnect_timeout = RECONNECT_TIMEOUT
    datastore.get_connection = _Guarded(datastore.get_connection, pool)


# Each SQLite connection's page cache, in KiB (SQLite's default is 2,000 KiB): a reader's search
# or listing visits a few hundred rows spread over the whole file, which evicted one another from
# the default cache on every query (benchmarks/RESULTS.md, issue 12). It grows only as pages are read.
SQLITE_CACHE_KIB = 16384


def guard_sqlite(datastore: Any) -> None:
    """Turn a full disk under an `eventsourcing.sqlite.SQLiteDatastore` into `StorageFull`."""
    datastore.transaction = _Guarded(datastore.transaction)


def tune_sqlite(datastore: Any) -> None:
    """Give each connection of an `eventsourcing.sqlite.SQLiteDatastore` a page cache of
    `SQLITE_CACHE_KIB` (the library opens them with SQLite's defaults)."""
    pool = datastore.pool
    create = pool._create_connection

    def create_connection() -> Any:
        connection = create()
        connection._sqlite_conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        return connection

    pool._create_connection = create_connection


def ping(datastore: Any, timeout: float = 2.0) -> bool:
    """Whether the database answers `SELECT 1` now (PostgreSQL: within `timeout` s). Blocking."""
    try:
        if hasattr(datastore.pool, "getconn"):  # PostgreSQL: the pool's own wait, shorter
            datastore.pool.open(wait=False)
            with datastore.pool.connection(timeout=timeout) as conn:
                conn.execute("SELECT 1")
        else:
            with datastore.transaction(commit=False) as cursor:
                cursor.execute("SELECT 1")
        return True
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness check: database unavailable: %s", exc)
        return False


def queue_sqlite_writers(datastore: Any, wait: float) -> None:
    """Writers of a file-based `eventsourcing.sqlite.SQLiteDatastore` queue for the writer
    connection outside the pool, each for up to `wait` seconds; readers no longer queue behind them.

    The library's pool lets one thread at a time ask for a connection (a semaphore), and a writer
    keeps that turn while it waits for the process's writer connection. So while the writer
    ahead waited for SQLite's file lock (another process writing, e.g. `projections rebuild`),
    every request — reads too — queued, and after the pool's wait answered 503 busy. Here a
    writer first takes `gate` (held until its connection is returned), so when it asks the pool
    the writer connection is free and its turn is short. In-memory databases keep the library's
    behaviour (there readers must wait for the writer anyway).
    """
    from eventsourcing.persistence import ConnectionUnavailableError

    pool = datastore.pool
    if pool.is_sqlite_memory_mode:
        pool.pool_timeout = wait
        return
    gate = threading.Lock()
    get_connection, put_connection = pool.get_connection, pool.put_connection

    def get(timeout: float | None = None, *, is_writer: bool | None = None) -> Any:
        if is_writer is not True:
            return get_connection(timeout, is_writer=is_writer)
        if not gate.acquire(timeout=wait if timeout is None else timeout):
            raise ConnectionUnavailableError("Timed out waiting for the writer connection")
        try:
            return get_connection(timeout, is_writer=True)
        except BaseException:
            gate.release()
            raise

    def put(conn: Any) -> None:
        writer = conn.is_writer is True
        try:
            put_connection(conn)
        finally:
            if writer:
                gate.release()

    pool.get_connection, pool.put_connection = get, put
