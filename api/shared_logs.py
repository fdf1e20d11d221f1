"""Recent log lines of every process on one database, each tagged with its replica: what
`/api/v0/logs` and the portal's `Logs` tab read, so behind a load balancer an admin sees every
replica's lines whichever one answers.

Log lines are working state, not facts about the registry: they live in their own table
(`log_lines`) beside the read models, never in the event log.

Contract:
- `offer(replica, component, at, line)` (called by `RecentLogs` for each line, on the thread that
  logged) only appends to a bounded in-memory buffer: it never waits on the database and never
  raises. A full buffer drops the line; so does a batch the database refuses or cannot take (down,
  busy): each dropped line counts in `dropped` and through `on_drop` (`dockyard_log_lines_dropped`).
- A background thread writes the buffer every `flush_seconds` in one transaction, then keeps the
  table bounded: per replica and component the newest `keep` lines (a ring), and any replica's
  lines older than `max_age_seconds` go (the rings of processes that ended).
- Ids follow commit order (writers take one advisory lock on PostgreSQL; SQLite has one writer),
  so a follower asking for ids after the last it saw misses nothing.
- `since(component, after, limit)`: lines after id `after`, at most the newest `limit`, in time
  order (`at`, then id) — merged across replicas; each line names its replica.
- `generation()` changes when new lines may be there: a line logged here, on PostgreSQL a NOTIFY from any writer
  (`listen()` starts one LISTEN connection per process, on the first follow), and on every
  backend each `poll_seconds` (SQLite has no notifications; a lost NOTIFY costs at most that).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from dockyard.projections.dialect import Dialect

CHANNEL = "dockyard_logs"
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"dockyard.log_lines").digest()[:8], "big", signed=True)
_ID = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY"}
_CREATE = ("CREATE TABLE IF NOT EXISTS log_lines (id {id}, replica TEXT NOT NULL, component TEXT NOT NULL, "
           "at DOUBLE PRECISION NOT NULL, line TEXT NOT NULL)")
_INDEXES = ("CREATE INDEX IF NOT EXISTS log_lines_ring ON log_lines (replica, component, id)",
            "CREATE INDEX IF NOT EXISTS log_lines_component ON log_lines (component, id)")
_INSERT = ("INSERT INTO log_lines (replica, component, at, line) "
           "VALUES (%(replica)s, %(component)s, %(at)s, %(line)s)")
_PRUNE = ("DELETE FROM log_lines WHERE replica = %(replica)s AND component = %(component)s AND id <= "
          "(SELECT id FROM log_lines WHERE replica = %(replica)s AND component = %(component)s "
          "ORDER BY id DESC LIMIT 1 OFFSET %(keep)s)")
_EXPIRE = "DELETE FROM log_lines WHERE at < %(before)s"

Entry = tuple[int, str]  # (id, line)


class SharedLogs:
    def __init__(self, datastore: Any, dialect: Dialect, *, keep: int = 1000, flush_seconds: float = 1.0,
                 buffer: int = 10_000, poll_seconds: float = 1.0, max_age_seconds: float = 86_400.0,
                 on_drop: Callable[[int], None] = lambda n: None) -> None:
        self._datastore, self._dialect = datastore, dialect
        self.keep, self.flush_seconds, self.poll_seconds = keep, flush_seconds, poll_seconds
        self.max_age_seconds = max_age_seconds
        self._buffer: deque[tuple[str, str, float, str]] = deque()
        self._capacity = buffer
        self._guard = threading.Lock()
        self._writing = threading.Lock()  # one flush at a time (the thread's, or a reader's)
        self._offered = 0
        self._unpruned: dict[tuple[str, str], int] = {}
        self._expired_at = 0.0
        self.dropped = 0
        self._on_drop = on_drop
        self._written = 0  # local flushes: a follower in this process need not wait for a poll
        self._notified = 0
        self._listening = False
        self._listener_up = False  # LISTEN is in place on a live connection
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        with dialect.creating(datastore) as cursor:
            cursor.execute(_CREATE.format(id=_ID[dialect.name]))
            for statement in _INDEXES:
                cursor.execute(statement)

    # -- writing ---------------------------------------------------------------------------------

    def offer(self, replica: str, component: str, at: float, line: str) -> None:
        with self._guard:
            if len(self._buffer) < self._capacity:
                self._buffer.append((replica, component, at, line))
                self._offered += 1
                return
        self._drop(1)

    def _drop(self, n: int) -> None:
        self.dropped += n
        try:
            self._on_drop(n)
        except Exception:  # noqa: BLE001 — counting must not break logging
            pass

    def flush(self) -> int:
        """Write what is buffered (and prune); the number of lines written. Never raises."""
        with self._writing:
            with self._guard:
                batch, self._buffer = list(self._buffer), deque()
            if not batch:
                return 0
            try:
                self._write(batch)
            except Exception:  # noqa: BLE001 — the database is away or busy: drop, count, carry on
                self._drop(len(batch))
                return 0
            self._written += 1
            return len(batch)

    def _write(self, batch: list[tuple[str, str, float, str]]) -> None:
        sql = self._dialect.sql
        for replica, component, _, _ in batch:
            key = (replica, component)
            self._unpruned[key] = self._unpruned.get(key, 0) + 1
        due = [key for key, n in self._unpruned.items() if n >= max(1, self.keep // 10)]
        now = time.time()
        with self._datastore.transaction(commit=True) as cursor:
            if self._dialect.name == "postgres":
                cursor.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _LOCK_KEY})
            cursor.executemany(sql(_INSERT), [{"replica": r, "component": c, "at": at, "line": line}
                                              for r, c, at, line in batch])
            for replica, component in due:
                cursor.execute(sql(_PRUNE), {"replica": replica, "component": component, "keep": self.keep})
            if now - self._expired_at > 60:
                cursor.execute(sql(_EXPIRE), {"before": now - self.max_age_seconds})
            if self._dialect.name == "postgres":
                cursor.execute(f"NOTIFY {CHANNEL}")
        for key in due:
            self._unpruned.pop(key, None)
        if now - self._expired_at > 60:
            self._expired_at = now

    # -- reading ---------------------------------------------------------------------------------

    def since(self, component: str | None, after: int, limit: int = 500) -> tuple[list[Entry], int]:
        """(id, line) of one component (all when None) after id `after`, at most the newest `limit`,
        in time order; and the id to ask after next time. Blocking; raises when the database does.
        This process's buffered lines are written first: a reader sees its own process's at once."""
        self.flush()
        where = "id > %(after)s" + (" AND component = %(component)s" if component else "")
        with self._dialect.reading(self._datastore) as cursor:
            cursor.execute(self._dialect.sql(f"SELECT id, at, line FROM log_lines WHERE {where} "
                                             "ORDER BY id DESC LIMIT %(limit)s"),
                           {"after": after, "component": component, "limit": limit})
            rows = cursor.fetchall()
        rows.sort(key=lambda row: (row["at"], row["id"]))
        return [(row["id"], row["line"]) for row in rows], max([after, *(row["id"] for row in rows)])

    def lines(self, component: str | None = None, limit: int = 500) -> list[str]:
        return [line for _, line in self.since(component, 0, limit)[0]]

    def generation(self) -> int:
        """Changes when there may be new lines (see the module's contract). While LISTEN works,
        the poll is only the backstop for a lost NOTIFY: ten times rarer."""
        every = self.poll_seconds * (10 if self._listener_up else 1)
        return self._offered + self._written + self._notified + int(time.monotonic() / every)

    # -- the threads -----------------------------------------------------------------------------

    def start(self) -> SharedLogs:
        self._spawn(self._flushing, "log-lines-flush")
        return self

    def listen(self) -> None:
        """On PostgreSQL, follow other processes' writes by LISTEN (once per process)."""
        with self._guard:
            if self._listening or self._dialect.name != "postgres" or self._stop.is_set():
                return
            self._listening = True
        self._spawn(self._listening_loop, "log-lines-listen")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.flush()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _flushing(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def _listening_loop(self) -> None:
        import psycopg

        pool = self._datastore.pool
        while not self._stop.is_set():
            try:
                with psycopg.connect(pool.conninfo, autocommit=True, **{
                        k: v for k, v in pool.kwargs.items() if k != "autocommit"}) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._listener_up = True
                    self._notified += 1  # what was written before LISTEN: look once
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            self._notified += 1
            except Exception:  # noqa: BLE001 — the database went away: polling covers it meanwhile
                self._listener_up = False
                self._stop.wait(self.poll_seconds * 5)
        self._listener_up = False
