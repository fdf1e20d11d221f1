"""How the event log is stored: recorders that also write the registry read model in the
event transaction, the orjson transcoder, and the environment that selects SQLite or PostgreSQL.

The `Registry` application passes its pending domain events to `save(..., view_events=...)`;
the recorders below fold them into the read-model tables inside the very transaction that
appends them (SQLite: after the inserts, under SQLite's single writer; PostgreSQL: after the
events-table lock and insert, so read-model writes happen in log order).
"""

from __future__ import annotations

import contextvars
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

import orjson
import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, Mapper, OperationalError, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection, SQLiteTransaction
from eventsourcing.utils import get_topic, retry

from dockyard.commands import database
from dockyard.projections import chain, inline
from dockyard.projections.dialect import POSTGRES, SCHEMA_LOCK_KEY, SQLITE, Dialect

# A check run inside an event transaction while it holds the log's single write lock (SQLite's
# writer lock, PostgreSQL's EXCLUSIVE lock on the events table): what it reads cannot change
# until the transaction ends, and raising rolls the transaction back. `save(..., fence=f)`
# passes one; GC's sweep and the manifest push agree through it (DESIGN.md rule 4).
Fence = Callable[[Dialect, Any], None]


class OrjsonTranscoder(Transcoder):
    """Events hold only JSON-native values (plus `timestamp`, restored by `RegistryMapper`)."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class RegistryMapper(Mapper):
    """The default mapper plus: `timestamp` comes back as a `datetime` (orjson wrote a string)."""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        ts = event.__dict__.get("timestamp")
        if isinstance(ts, str):
            event.__dict__["timestamp"] = datetime.fromisoformat(ts)
        return event


def _chain_rows(ids: Sequence[int], stored_events: Sequence[StoredEvent]) -> list[chain.StoredRow]:
    return [chain.StoredRow(i, e.topic, e.originator_id, e.originator_version, e.state)
            for i, e in zip(ids, stored_events, strict=True)]


class _WriteFirstTransaction(SQLiteTransaction):
    """The library's SQLite transaction, but a writing one begins `BEGIN IMMEDIATE`.

    In WAL mode a deferred transaction that reads and then writes fails at once with "database is
    locked" (SQLITE_BUSY_SNAPSHOT, no busy wait) when another connection committed in between —
    as a second process starting its projection runners beside a busy first one did. Taking the
    write lock at BEGIN makes the writer wait its turn (the lock timeout) instead. Read-only
    transactions stay deferred.
    """

    def __enter__(self) -> Any:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if self.commit else "BEGIN")
        return cursor


@contextmanager
def _transaction(self: SQLiteConnection, *, commit: bool) -> Iterator[Any]:
    with _WriteFirstTransaction(self, commit=commit) as curs, curs:
        yield curs


SQLiteConnection.transaction = _transaction  # type: ignore[method-assign]


# Seconds a write waits for SQLite, both for the process's one writer connection (the library's
# pool, 5 s fixed) and then for SQLite's file lock (another process writing: a rebuild, a CLI
# command). `DOCKYARD_SQLITE_WRITE_WAIT` sets it. Past it the write is refused (503, retry).
SQLITE_WRITE_WAIT_ENV = "DOCKYARD_SQLITE_WRITE_WAIT"
SQLITE_WRITE_WAIT = 30


def sqlite_write_wait() -> int:
    """The write wait in whole seconds (the library reads SQLITE_LOCK_TIMEOUT as an int)."""
    value = os.environ.get(SQLITE_WRITE_WAIT_ENV, "").strip()
    try:
        return max(1, int(float(value))) if value else SQLITE_WRITE_WAIT
    except ValueError:
        raise ValueError(f"{SQLITE_WRITE_WAIT_ENV} must be a number of seconds, not {value!r}") from None


class SQLiteRegistryRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        # A push queues for the process's writer connection while the writer ahead of it waits
        # for SQLite's file lock: with the library's fixed 5 s for the first, and every read
        # queued behind the waiting writer, pushes were answered 503 while a rebuild in another
        # process took its turns at the lock (benchmarks/RESULTS.md). Both waits get one bound.
        database.queue_sqlite_writers(self.datastore, float(self.datastore.pool.lock_timeout or SQLITE_WRITE_WAIT))
        database.guard_sqlite(self.datastore)  # a full disk: StorageFull, not a 500
        database.tune_sqlite(self.datastore)

    def construct_create_table_statements(self) -> list[str]:
        return (super().construct_create_table_statements() + inline.create_statements(SQLITE)
                + chain.create_statements(SQLITE))

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], *,
                       view_events: Sequence[Any] = (), fence: Fence | None = None,
                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if fence is not None:  # after the INSERT, which took SQLite's single write lock
            fence(SQLITE, c)
        # The tamper-evident chain, under SQLite's single writer: positions chain in order.
        chain.append(SQLITE, c, self.events_table_name, _chain_rows(ids or (), stored_events))
        inline.apply(SQLITE, c, view_events)
        return ids


# Above this many bytes of event state, a write is sent without libpq pipeline mode: psycopg
# 3.3 can wait forever in `Pipeline.sync()` while the server still waits for the rest of a
# multi-megabyte message (seen here with a 4 MiB manifest: server in ClientRead, client in
# Connection.wait). Pipelining only saves round trips, which matter for small writes.
PIPELINE_MAX_BYTES = 256 * 1024


# At most this many saves share one PostgreSQL transaction (group commit, below).
GROUP_MAX_SAVES = 16


class _RunAlone(Exception):
    """The group's transaction failed for another reason than a fence: run this save on its own."""


class _Refused(Exception):
    """A save's fence raised inside a group's transaction: roll the group back, retry without it."""

    def __init__(self, save: _Save) -> None:
        super().__init__()
        self.save = save


def _size(stored_events: Sequence[StoredEvent]) -> int:
    return sum(len(e.state) for e in stored_events)


@dataclass(eq=False)
class _Save:
    """One `save()` waiting for, or in, a group's transaction; its outcome once that has committed."""

    stored_events: Sequence[StoredEvent]
    view_events: Sequence[Any]
    fence: Fence | None
    ids: list[int] | None = None
    error: BaseException | None = None
    done: bool = False
    context: contextvars.Context = field(default_factory=contextvars.copy_context)

    def outcome(self) -> list[int]:
        if self.error is not None:
            raise self.error
        assert self.ids is not None
        return self.ids


class PostgresRegistryRecorder(PostgresApplicationRecorder):
    """The library's application recorder, with the read model and the audit chain written in the
    event transaction, concurrent saves of this process committed together, and each transaction
    sent in as few round trips as it can be.

    Every save takes the events table's EXCLUSIVE lock (so notification ids commit in the order
    they were issued: the projection runners and the chain read the log as a gap-free sequence),
    which makes all writers of all processes queue for it: the time a transaction holds it bounds
    the registry's write throughput (benchmarks/RESULTS.md: ~12 ms per save under load, the lock
    busy all the time during small-image pushes). Two levers:

    - **Group commit.** Saves that arrive while this process's transaction is running wait, and
      the next transaction takes all of them (up to `GROUP_MAX_SAVES`): one lock, one NOTIFY,
      one WAL flush for the group. Each save's insert is guarded (`NOT EXISTS` over its
      (originator id, version) pairs, exact under the lock), so a version conflict inserts
      nothing and is raised to that save alone; a fence that refuses rolls the transaction back
      and it runs again without that save. Nothing is answered before COMMIT has answered.
    - **Pipelining.** One flush begins the transaction, takes the lock, inserts and reads the
      chain's head; each save's fence reads follow (a round trip each); then the chain rows, the
      read-model rows and COMMIT go in one more flush (the library's path, with a fence or the
      read-model writes, sent a round trip per statement under the lock: 12 for a blob link).

    Saves of more than `PIPELINE_MAX_BYTES` go alone, statement by statement.
    """

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        database.guard_postgres(self.datastore)  # bounded waits; Unavailable when it is gone
        from psycopg.sql import SQL, Identifier

        self.sql_create_statements.extend(SQL(s).format() for s in inline.create_statements(POSTGRES))
        self.sql_create_statements.extend(SQL(s).format() for s in chain.create_statements(POSTGRES))
        # The library's INSERT, with the events array sent in binary (`%b`): its text form is
        # escaped in pure Python, ~0.7 s for one 5 MB event against ~0.09 s in binary. Guarded:
        # when any (originator id, version) of the save is stored already (a version conflict)
        # it inserts nothing and takes no id, instead of failing the whole transaction.
        table = SQL("{schema}.{table}").format(schema=Identifier(self.datastore.schema),
                                                 table=Identifier(self.events_table_name))
        self._insert_guarded_statement = SQL(
            "INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%(events)b::{schema}.{stored_event_type}[]) AS e "
            "WHERE NOT EXISTS (SELECT 1 FROM {table} AS s JOIN unnest(%(events)b::{schema}.{stored_event_type}[]) "
            "AS n ON s.originator_id = n.originator_id AND s.originator_version = n.originator_version) "
            "RETURNING notification_id"
        ).format(table=table, schema=Identifier(self.datastore.schema),
                 stored_event_type=Identifier(self.stored_event_type_name))
        self._chain_events_table = f"{self.datastore.schema}.{self.events_table_name}"
        self._group = threading.Condition()
        self._waiting: list[_Save] = []
        self._group_running = False

    def create_table(self) -> None:
        """The library's schema creation, one process at a time.

        `serve` starts one worker per core and each creates the schema on start; PostgreSQL
        fails concurrent runs of the same DDL (`CREATE TYPE`, `CREATE OR REPLACE FUNCTION`,
        `IF NOT EXISTS` on one name) with a duplicate `pg_type` key or "tuple concurrently
        updated", which stopped a fresh two-worker start.
        A session advisory lock, held on its own connection, serialises them.
        """
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))

    def insert_events(self, stored_events: Sequence[StoredEvent], *, view_events: Sequence[Any] = (),
                      fence: Fence | None = None, **kwargs: Any) -> Sequence[int] | None:
        """Append `stored_events`, their chain rows and `view_events`' read-model rows in one
        transaction; a `fence` runs after the insert (so a version conflict is raised before it
        acts) and before the read-model rows; if it raises, nothing of this save is recorded.
        Returns the notification ids once the transaction has committed; a version conflict
        raises IntegrityError."""
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)
        save = _Save(stored_events, view_events, fence)
        if _size(stored_events) > PIPELINE_MAX_BYTES:
            return self._alone(save, pipelined=False)
        with self._group:
            self._waiting.append(save)
            while self._group_running and not save.done:
                self._group.wait()
            if save.done:  # another thread's transaction carried it
                return self._outcome(save)
            self._group_running = True  # this thread runs the next transaction, for all waiting
            group = self._take_group(save)
        try:
            self._commit_group(group)
        finally:
            with self._group:
                for other in group:
                    if other.ids is None and other.error is None:
                        other.error = OperationalError("the group's transaction did not finish")
                    other.done = True
                self._group_running = False
                self._group.notify_all()
        return self._outcome(save)

    def _outcome(self, save: _Save) -> list[int]:
        if isinstance(save.error, _RunAlone):
            return self._alone(save, pipelined=True)
        return save.outcome()

    def _take_group(self, leader: _Save) -> list[_Save]:
        """`leader` and the waiting saves that fit with it: `GROUP_MAX_SAVES`, and no more
        bytes than one pipelined flush should carry (`PIPELINE_MAX_BYTES`). Holds `_group`."""
        group, size = [leader], _size(leader.stored_events)
        for other in self._waiting:
            if other is not leader and len(group) < GROUP_MAX_SAVES:
                if size + _size(other.stored_events) <= PIPELINE_MAX_BYTES:
                    group.append(other)
                    size += _size(other.stored_events)
        self._waiting = [s for s in self._waiting if s not in group]
        return group

    def _commit_group(self, group: list[_Save]) -> None:
        """Commit `group` in one transaction, setting each save's ids or error. A fence that
        refuses fails its own save and the rest run again; any other failure (a lost connection,
        an unexpected server error) makes each save's own thread run it alone (`_RunAlone`), so
        each gets its own outcome and retries, as without a group."""
        remaining = list(group)
        while remaining:
            try:
                self._transaction(remaining, pipelined=True)
                return
            except _Refused as refused:  # its error is the fence's; the others start afresh
                remaining = [s for s in remaining if s is not refused.save]
            except Exception:  # each thread then runs its own save, with the library's retries
                for save in remaining:
                    save.ids, save.error = None, _RunAlone()
                return

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _alone(self, save: _Save, *, pipelined: bool) -> list[int]:
        save.error = None
        try:
            self._transaction([save], pipelined=pipelined)
        except _Refused:
            pass
        return save.outcome()

    def _transaction(self, saves: list[_Save], *, pipelined: bool) -> None:
        """One transaction for `saves`: on return each has its ids (committed) or its error
        (a version conflict: nothing of it inserted). Raises `_Refused` after rolling back when a
        save's fence raised (that save's error is set), and whatever else went wrong."""
        for save in saves:
            save.ids, save.error = None, None
        with self.datastore.get_connection() as conn:
            # No server-side prepared statements in this transaction (psycopg prepares one after
            # five uses): a statement prepared inside a pipeline that then failed stays in
            # psycopg's cache unknown to the server ('prepared statement "_pg3_9" does not exist').
            threshold, conn.prepare_threshold = conn.prepare_threshold, None
            failure: BaseException | None = None
            try:
                with conn.pipeline() if pipelined else nullcontext() as pipeline:
                    try:
                        with conn.transaction():
                            self._write(conn, pipeline, saves)
                    except Exception as exc:  # raised after leaving the pipeline (psycopg warns otherwise)
                        failure = exc
            finally:
                conn.prepare_threshold = threshold
            if failure is not None:
                for save in saves:
                    save.ids = None
                raise failure
        # Here COMMIT has answered: only now are the saves' ids their outcome.

    def _write(self, conn: Any, pipeline: Any, saves: list[_Save]) -> None:
        with conn.cursor() as curs, conn.cursor() as head, conn.cursor() as view_cursor:
            # One flush: BEGIN, lock_timeout, LOCK TABLE ... EXCLUSIVE, NOTIFY (delivered at commit),
            # the chain's head and every save's insert, executed by the server in that order.
            for statement in self.lock_table_statements:
                curs.execute(statement)
            self._notify_channel(curs)
            chain.ask_head(POSTGRES, head)
            inserts = []
            for save in saves:
                insert = conn.cursor()
                insert.execute(self._insert_guarded_statement, {"events": [
                    self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                    for e in save.stored_events]})
                inserts.append(insert)
            if pipeline is not None:
                pipeline.sync()
            head_rows = head.fetchall()
            for save, insert in zip(saves, inserts, strict=True):
                ids = [row["notification_id"] for row in insert.fetchall()]
                insert.close()
                if len(ids) != len(save.stored_events):  # the guard found one stored: nothing inserted
                    save.error = IntegrityError("version conflict: an event of this save is stored already")
                    continue
                if save.fence is not None:  # after its insert, as on SQLite: a version conflict comes first
                    try:  # in the context of the thread that saved (its actor, its request)
                        save.context.run(save.fence, POSTGRES, view_cursor)
                    except psycopg.Error:
                        raise  # the database's, maybe for an earlier save's statement: each runs alone
                    except Exception as exc:
                        save.error = exc
                        raise _Refused(save) from exc
                # The chain positions in log order, still under the table lock; then the read model.
                head_rows = chain.append(POSTGRES, view_cursor, self._chain_events_table,
                                         _chain_rows(ids, save.stored_events), head_rows=head_rows)
                inline.apply(POSTGRES, view_cursor, save.view_events)
                save.ids = ids


# An SQLite database in memory, private to the `Registry` built on it (the in-process tests).
MEMORY_DATABASE_URL = "sqlite://:memory:"


def event_store_env(data_dir: str, database_url: str | None) -> dict[str, str]:
    """The eventsourcing environment for the embedded default, a PostgreSQL URL, or
    `MEMORY_DATABASE_URL` (a fresh in-memory database each time this is called)."""
    env = {
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
        "MAPPER_TOPIC": get_topic(RegistryMapper),
    }
    if not database_url or database_url == MEMORY_DATABASE_URL:
        if database_url:
            # A named shared-cache URI: every connection of the library's pool sees the same
            # database (a bare ":memory:" would give each connection its own, empty one).
            dbname = f"file:dockyard-{uuid.uuid4().hex}?mode=memory&cache=shared"
        else:
            os.makedirs(data_dir, exist_ok=True)
            dbname = os.path.join(os.path.abspath(data_dir), "dockyard.db")
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=dbname,
            SQLITE_LOCK_TIMEOUT=str(sqlite_write_wait()),
            APPLICATION_RECORDER_TOPIC=get_topic(SQLiteRegistryRecorder),
        )
        return env
    url = urlparse(database_url)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError("the database URL must be postgresql://user:password@host:port/dbname")
    env.update(
        PERSISTENCE_MODULE="eventsourcing.postgres",
        POSTGRES_DBNAME=unquote(url.path.lstrip("/")) or "dockyard",
        POSTGRES_HOST=url.hostname or "127.0.0.1",
        POSTGRES_PORT=str(url.port or 5432),
        POSTGRES_USER=unquote(url.username or "postgres"),
        POSTGRES_PASSWORD=unquote(url.password or ""),
        POSTGRES_POOL_SIZE="4",
        POSTGRES_MAX_OVERFLOW="8",
        POSTGRES_LOCK_TIMEOUT="10",
        # The pool's wait for a connection, in s (the library's default is 30, times 10 retries).
        POSTGRES_CONNECT_TIMEOUT=str(database.CONNECT_TIMEOUT),
        POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT="5",
        APPLICATION_RECORDER_TOPIC=get_topic(PostgresRegistryRecorder),
    )
    return env
