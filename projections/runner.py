"""The projection runner: folds the event log, in batches, into read models that follow it.

Contract (what `Projection` implementations rely on):
- A projection names the `topics` it folds (empty: every event) and `apply`s a batch of
  `Recorded` events, in log order, through a cursor inside the runner's transaction.
- Its position (`projection_positions`) is advanced by a compare-and-set in that same
  transaction, *before* its rows are written. So a crash at any instant leaves rows and position
  together: no event is applied twice or skipped, and a second runner that slipped past the
  leader lock fails its compare-and-set instead of writing (and just reloads the position).
  Taking the position row first also orders the runner before a rebuild's swap (`rebuild_swap`),
  which locks the same row: neither waits on a table the other holds.
- Catch-up reads `select_notifications` pages of `batch` events up to the head read before the
  page, so a projection whose topics are rare still advances its position to the head.
- Live follow: PostgreSQL `LISTEN` on the channel every append NOTIFYs (the library's recorder,
  kept by `commands.persistence`), with a poll as a safety net for a lost notification (library
  issue #305); SQLite polls the head. A fold that moved the position is followed by a pause of
  `batch_interval` before the next: under a stream of appends the leader writes a few batches a
  second instead of one transaction per append (each takes SQLite's single writer, which pushes
  wait for), while the first append after a quiet spell is folded at once.
- Exactly one active runner per projection: a session advisory lock on PostgreSQL (released
  when the process or its connection dies, so a standby takes over), an `flock` beside the
  SQLite file (released by the OS when the process dies). A PostgreSQL standby waits for the
  lock on one kept connection (woken when the leader goes, re-checking for a stop every
  `takeover_interval`); an SQLite standby retries every `takeover_interval`.
- A projection that raises on a batch stops there: the batch is rolled back, the position of the
  first event of the failing batch and the error are recorded (status `failed`), and nothing is
  skipped. A following runner keeps the lead and tries the same batch again after a bounded
  exponential backoff (`retry_delay`: 1 s doubling to 5 min by default), so a failure whose cause
  goes away (a full disk, a fixed bug in a rolling upgrade) heals without a restart. The time of
  the next try is stored (`retry_at`) so status shows it, and an admin's "retry now"
  (`commands.projections.retry_projection`) sets it to now, from any process.

Why not the library's `ProjectionRunner`: one transaction per event (~1k events/s here), no
SQLite subscription, no leader election (see /work/shared/eventsourcing-notes.md §2).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import orjson

from dockyard.projections.dialect import Dialect
from dockyard.projections.upcasting import current_shape

log = logging.getLogger("dockyard.projections")

DEFAULT_BATCH = 2000
# The following leader's pause after a fold that moved its position (see the module docstring).
DEFAULT_BATCH_INTERVAL = 0.2
MIN_BATCH, MAX_BATCH = 50, 20_000  # the bounds of a batch sized by time (`ProjectionRunner.budget`)
RETRY_INITIAL = 1.0  # seconds before the first retry of a failed projection
RETRY_MAX = 300.0  # the backoff's ceiling


def retry_delay(attempt: int, initial: float = RETRY_INITIAL, maximum: float = RETRY_MAX) -> float:
    """Seconds to wait before retry number `attempt` (1-based): `initial` doubling, at most `maximum`."""
    return min(maximum, initial * 2 ** min(max(attempt - 1, 0), 60))


@dataclass(frozen=True, slots=True)
class Recorded:
    """One event as stored: its log position, stable topic, aggregate id and version, and its
    state as the JSON object the transcoder wrote, upcast to its class's current `class_version`
    (`projections.upcasting`; a topic with no class, e.g. added later, is left as stored)."""

    position: int
    topic: str
    originator_id: UUID | str  # as the database returns it (SQLite: hex text)
    version: int
    state: dict[str, Any]


class Projection(Protocol):
    """A read model folded by the runner. `suffix` names a parallel set of tables (a rebuild)."""

    name: str
    topics: tuple[str, ...]

    def tables(self) -> dict[str, str]:
        """Canonical table name -> the table this instance writes (the canonical name plus suffix)."""
        ...

    def create_statements(self, dialect: Dialect) -> list[str]: ...

    def index_statements(self, dialect: Dialect) -> list[str]:
        """`CREATE INDEX` statements for the tables this instance writes (names carry the suffix)."""
        ...

    def apply(self, dialect: Dialect, cursor: Any, events: Sequence[Recorded]) -> None: ...

    def with_suffix(self, suffix: str) -> Projection: ...


class ProjectionFailed(Exception):
    def __init__(self, name: str, position: int, error: str) -> None:
        super().__init__(f"projection {name} failed at position {position}: {error}")
        self.name, self.position, self.error = name, position, error


# -- positions -----------------------------------------------------------------------------

_POSITIONS = ("CREATE TABLE IF NOT EXISTS projection_positions (name TEXT PRIMARY KEY, "
              "position {bigint} NOT NULL, updated_at TEXT NOT NULL, failed_position {bigint}, error TEXT, "
              "retry_at TEXT)")
_COLUMNS = "name, position, updated_at, failed_position, error, retry_at"


class Positions:
    """The `projection_positions` table, in the event store's database."""

    def __init__(self, datastore: Any, dialect: Dialect) -> None:
        self.datastore, self.dialect = datastore, dialect
        with dialect.creating(datastore) as cursor:
            cursor.execute(_POSITIONS.format(bigint=dialect.bigint))
            # Databases made before `retry_at` existed gain it (NULL: no retry scheduled).
            if dialect.name == "postgres":
                cursor.execute("ALTER TABLE projection_positions ADD COLUMN IF NOT EXISTS retry_at TEXT")
            else:
                cursor.execute("PRAGMA table_info(projection_positions)")
                if "retry_at" not in {r["name"] for r in cursor.fetchall()}:
                    cursor.execute("ALTER TABLE projection_positions ADD COLUMN retry_at TEXT")

    def ensure(self, cursor: Any, name: str) -> None:
        cursor.execute(self.dialect.sql(
            "INSERT INTO projection_positions (name, position, updated_at) VALUES (%(name)s, 0, %(at)s) "
            "ON CONFLICT (name) DO NOTHING"), {"name": name, "at": _now()})

    def get(self, name: str) -> dict[str, Any] | None:
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(f"SELECT {_COLUMNS} FROM projection_positions WHERE name = %(name)s"),
                           {"name": name})
            rows = cursor.fetchall()
        return dict(rows[0]) if rows else None

    def all(self) -> list[dict[str, Any]]:
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(f"SELECT {_COLUMNS} FROM projection_positions ORDER BY name")
            return [dict(r) for r in cursor.fetchall()]

    def position(self, name: str) -> int:
        row = self.get(name)
        return int(row["position"]) if row else 0

    def advance(self, cursor: Any, name: str, old: int, new: int) -> bool:
        """Compare-and-set the position inside the caller's transaction; False if it moved."""
        cursor.execute(self.dialect.sql(
            "UPDATE projection_positions SET position = %(new)s, updated_at = %(at)s, failed_position = NULL, "
            "error = NULL, retry_at = NULL WHERE name = %(name)s AND position = %(old)s"),
            {"name": name, "old": old, "new": new, "at": _now()})
        return _rowcount(cursor) == 1

    def record_failure(self, name: str, position: int, error: str) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.dialect.sql(
                "UPDATE projection_positions SET failed_position = %(pos)s, error = %(error)s, updated_at = %(at)s "
                "WHERE name = %(name)s"), {"name": name, "pos": position, "error": error[:2000], "at": _now()})

    def schedule_retry(self, name: str, at: datetime) -> None:
        """Record when the leading runner tries a failed projection again (shown by status)."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.dialect.sql(
                "UPDATE projection_positions SET retry_at = %(at)s WHERE name = %(name)s AND error IS NOT NULL"),
                {"name": name, "at": at.isoformat()})

    def request_retry(self, name: str) -> bool:
        """Bring a failed projection's next try forward to now; False when it has not failed.
        The leading runner, in whichever process, notices within its check interval."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.dialect.sql(
                "UPDATE projection_positions SET retry_at = %(at)s WHERE name = %(name)s AND error IS NOT NULL"),
                {"name": name, "at": _now()})
            return _rowcount(cursor) == 1

    def wait(self, name: str, position: int, timeout: float = 10.0, stop: threading.Event | None = None) -> bool:
        """Block until projection `name` has folded the log up to `position` (in any process);
        False after `timeout` seconds, at once when the projection has failed before it, or as
        soon as `stop` is set (a background thread being stopped does not wait out `timeout`)."""
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            row = self.get(name)
            if row is not None and row["position"] >= position:
                return True
            if row is not None and row["failed_position"] is not None and row["failed_position"] <= position:
                return False
            if time.monotonic() >= deadline:
                return False
            if stop is None:
                time.sleep(pause)
            elif stop.wait(pause):
                return False
            pause = min(pause * 2, 0.05)


def _rowcount(cursor: Any) -> int:
    """Rows changed by the last statement (the library's SQLite cursor wraps sqlite3's)."""
    inner = getattr(cursor, "sqlite_cursor", cursor)
    return int(inner.rowcount)


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- leadership ----------------------------------------------------------------------------

_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class Leadership:
    """Exactly one holder per projection name across processes (and threads) sharing a database."""

    def __init__(self, registry: Any, name: str) -> None:
        self.registry, self.name = registry, name
        self._connection: Any = None
        self._standby: Any = None  # PostgreSQL: the connection a standby waits on, kept between waits
        self._waiting: Any = None  # PostgreSQL: that connection while it sits in the lock's queue
        self._file: Any = None
        self._local: threading.Lock | None = None

    @property
    def postgres(self) -> bool:
        return self.registry.dialect.name == "postgres"

    def try_acquire(self, wait: float = 0.0) -> bool:
        """Take the lead if free. On PostgreSQL, wait up to `wait` seconds for it (in the lock's
        queue, so a leader's end wakes this at once); elsewhere `wait` is ignored."""
        if self.postgres:
            import psycopg
            import psycopg.errors

            conn, self._standby = self._standby, None
            if conn is None or conn.closed:
                pool = self.registry.recorder.datastore.pool
                conn = psycopg.connect(pool.conninfo, autocommit=True, **{
                    k: v for k, v in pool.kwargs.items() if k not in ("autocommit",)})
            key = int.from_bytes(hashlib.sha256(b"dockyard.projection:" + self.name.encode()).digest()[:8],
                                 "big", signed=True)
            try:
                if wait > 0:
                    conn.execute(f"SET lock_timeout = {max(1, int(wait * 1000))}")
                    self._waiting = conn
                    try:
                        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                        ok = True
                    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
                        ok = False  # the wait ran out, or `interrupt` ended it
                    finally:
                        self._waiting = None
                else:
                    row: Any = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (key,)).fetchone()
                    ok = row["ok"] if isinstance(row, dict) else row[0]
            except BaseException:
                conn.close()
                raise
            if not ok:
                self._standby = conn  # kept: the next wait needs no new connection
                return False
            self._connection = conn
            return True
        path = self._sqlite_path()
        if path is None:  # in-memory database: one process by construction, guard threads
            with _LOCAL_GUARD:
                lock = _LOCAL_LOCKS.setdefault(f"{id(self.registry.recorder.datastore)}:{self.name}", threading.Lock())
            if not lock.acquire(blocking=False):
                return False
            self._local = lock
            return True
        handle = open(f"{path}.{self.name}.lock", "a+")  # noqa: SIM115 - held for the leadership's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def try_acquire_safely(self) -> bool:
        """`try_acquire`, False (logged) when the database cannot be reached."""
        try:
            return self.try_acquire()
        except Exception:  # noqa: BLE001 - e.g. PostgreSQL restarting: try again later
            log.warning("projection %s: cannot take the lead now", self.name, exc_info=True)
            return False

    def interrupt(self) -> None:
        """End a PostgreSQL standby's wait in the lock's queue now (from another thread), so a
        stopping process does not sit out the rest of it; the wait answers "not taken"."""
        conn = self._waiting
        if conn is not None:
            try:
                conn.cancel_safe(timeout=1.0)
            except Exception:  # noqa: BLE001 - the wait ends by its own timeout anyway
                log.debug("projection %s: could not interrupt the standby's wait", self.name, exc_info=True)

    def stand_by(self, stop: threading.Event, interval: float) -> bool:
        """Wait about `interval` seconds (less if `stop` is set) to take the lead; True once
        taken. A PostgreSQL standby sits in the lock's queue on its kept connection; an SQLite
        one tries once and sleeps; an unreachable database is logged and slept on."""
        try:
            if self.try_acquire(wait=interval if self.postgres else 0.0):
                return True
            if self.postgres:
                return False
        except Exception:  # noqa: BLE001 - e.g. PostgreSQL restarting: try again later
            log.warning("projection %s: cannot take the lead now", self.name, exc_info=True)
        stop.wait(interval)
        return False

    def _sqlite_path(self) -> str | None:
        pool = self.registry.recorder.datastore.pool
        return None if pool.is_sqlite_memory_mode else str(pool.db_name)

    @property
    def connection(self) -> Any:
        """The leader's own PostgreSQL connection (autocommit), used to LISTEN; None on SQLite."""
        return self._connection

    def close(self) -> None:
        """`release`, and close a standby's kept connection (its runner stops)."""
        self.release()
        if self._standby is not None:
            self._standby.close()
            self._standby = None

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # ends the session: the advisory lock goes with it
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._local is not None:
            self._local.release()
            self._local = None


# -- the runner ----------------------------------------------------------------------------

class ProjectionRunner:
    """Folds one projection; `catch_up()` for a one-shot run, `start()`/`stop()` to follow."""

    def __init__(self, registry: Any, projection: Projection, *, batch: int = DEFAULT_BATCH,
                 poll_interval: float = 0.05, takeover_interval: float = 1.0,
                 batch_interval: float = DEFAULT_BATCH_INTERVAL,
                 positions: Positions | None = None, create_indexes: bool = True, name: str | None = None,
                 retry_initial: float = RETRY_INITIAL, retry_max: float = RETRY_MAX,
                 budget: float | None = None) -> None:
        """`budget`: seconds of writing per transaction; when given, each batch after the first is
        sized so its transaction takes about that long (between `MIN_BATCH` and `MAX_BATCH`
        events), e.g. a rebuild on SQLite, where every write transaction holds the one writer
        lock that pushes wait for."""
        self.registry = registry
        self.budget = budget
        self.projection = projection
        self.name = name or projection.name  # its position row (a rebuild folds under another name)
        self.batch = batch
        self.poll_interval = poll_interval
        self.takeover_interval = takeover_interval
        self.batch_interval = batch_interval
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self.attempts = 0  # failed tries in a row (the backoff's exponent); 0 once a batch commits
        self.dialect: Dialect = registry.dialect
        self.datastore = registry.recorder.datastore
        self.positions = positions or Positions(self.datastore, self.dialect)
        self.state = "stopped"
        self.error: ProjectionFailed | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leadership = Leadership(registry, self.name)
        self._advanced = False  # whether the last `catch_up` moved the position
        recorder = registry.recorder
        table, column = ((f"{self.datastore.schema}.{recorder.events_table_name}", "notification_id")
                         if self.dialect.name == "postgres" else (recorder.events_table_name, "rowid"))
        self._select = (f"SELECT {column} AS position, originator_id, originator_version AS version, topic, state "
                        f"FROM {table} "
                        f"WHERE {column} > %(after)s AND {column} <= %(head)s{{where}} ORDER BY {column} "
                        f"LIMIT %(limit)s")
        with self.dialect.creating(self.datastore) as cursor:
            for statement in projection.create_statements(self.dialect):
                cursor.execute(statement)
            if create_indexes:
                for statement in projection.index_statements(self.dialect):
                    cursor.execute(statement)
            self.positions.ensure(cursor, self.name)

    # -- folding ---------------------------------------------------------------------------

    def _read(self, after: int, head: int) -> list[Recorded]:
        """The next batch after `after`, up to `head`, decoded (a plain SELECT rather than the
        library's `select_notifications`, which converts every originator id to a UUID)."""
        topics = self.projection.topics
        params: dict[str, Any] = {"after": after, "head": head, "limit": self.batch}
        where = ""
        if topics:
            where = " AND topic IN (" + ", ".join(f"%(t{i})s" for i in range(len(topics))) + ")"
            params.update({f"t{i}": t for i, t in enumerate(topics)})
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(self._select.format(where=where)), params)
            rows = cursor.fetchall()
        loads = orjson.loads
        return [Recorded(r["position"], r["topic"], r["originator_id"], r["version"],
                         current_shape(r["topic"], loads(r["state"])))
                for r in rows]

    def run_batch(self, head: int | None = None) -> int:
        """Fold the next batch (up to `head`, default the current head); returns events applied.

        Raises `ProjectionFailed` (after recording it) when the projection raises.
        """
        name = self.name
        after = self.positions.position(name)
        if head is None:
            head = self.registry.recorder.max_notification_id() or 0
        if after >= head:
            return 0
        events = self._read(after, head)
        # A short page means everything up to `head` has been seen: the position moves there
        # even if the last matching event is older (rare topics still report no lag).
        new_position = events[-1].position if len(events) == self.batch else head
        try:
            with self.datastore.transaction(commit=True) as cursor:
                writing = time.perf_counter()
                if not self.positions.advance(cursor, name, after, new_position):
                    return 0  # another runner (or a rebuild's swap) moved it: reload and go on
                self.projection.apply(self.dialect, cursor, events)
            if self.budget is not None and len(events) == self.batch:  # a full batch: resize to the budget
                held = max(time.perf_counter() - writing, 1e-4)
                self.batch = max(MIN_BATCH, min(MAX_BATCH, int(self.batch * min(2.0, self.budget / held))))
        except Exception as exc:  # noqa: BLE001 - any failure stops the projection, recorded
            first = events[0].position if events else new_position
            failed = ProjectionFailed(name, first, f"{type(exc).__name__}: {exc}")
            self.positions.record_failure(name, first, failed.error)
            raise failed from exc
        return len(events)

    def catch_up(self, until: int | None = None, progress: Callable[[int, int], None] | None = None) -> int:
        """Fold batches until the position reaches `until` (default: the head when called)."""
        target = until if until is not None else (self.registry.recorder.max_notification_id() or 0)
        applied = 0
        start: int | None = None
        while not self._stop.is_set():
            position = self.positions.position(self.name)
            if start is None:
                start = position
            self._advanced = position > start
            if position >= target:
                break
            applied += self.run_batch(head=target)
            if progress is not None:
                progress(self.positions.position(self.name), target)
        return applied

    def wait(self, position: int, timeout: float = 10.0) -> bool:
        return self.positions.wait(self.name, position, timeout)

    def catch_up_unless_led(self) -> int | None:
        """Catch up here if no runner leads this projection (no serving process follows it);
        None, doing nothing, when one does (that runner folds). Raises `ProjectionFailed`."""
        if not self._leadership.try_acquire_safely():
            return None
        try:
            return self.catch_up()
        finally:
            self._leadership.release()

    # -- following -------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the log in a daemon thread: wait to lead, catch up, then follow."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"projection-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._leadership.interrupt()  # a standby waiting for the lead stops at once
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        """Stand by until leading, then follow. A projection that fails on an event stays there
        (its position and error recorded, state `failed`) and, still leading, tries the same
        batch again after the backoff or when an admin asks; any other error (the database went
        away, a dropped LISTEN connection) gives up the lead, and this runner stands by again."""
        while not self._stop.is_set():
            # A failed projection stays `failed` through its retries until a batch commits.
            if not self.attempts:
                self.state = "standby"
            if not self._leadership.stand_by(self._stop, self.takeover_interval):
                continue
            if not self.attempts:
                self.state = "running"
            try:
                self._follow()
            except ProjectionFailed as exc:
                self.state, self.error = "failed", exc
                self.attempts += 1
                delay = retry_delay(self.attempts, self.retry_initial, self.retry_max)
                log.error("%s; trying again in %.3g s (attempt %d)", exc, delay, self.attempts)
                try:
                    self.positions.schedule_retry(self.name, datetime.now(UTC) + timedelta(seconds=delay))
                    self._await_retry()
                except Exception:  # noqa: BLE001 - e.g. the database went away: stand by, retry
                    log.exception("projection %s: cannot schedule its retry; standing by", self.name)
                    self._stop.wait(self.takeover_interval)
            except Exception:  # noqa: BLE001 - reported; leadership goes, and we retry
                log.exception("projection %s interrupted; standing by to retry", self.name)
                self._stop.wait(self.takeover_interval)
            finally:
                self._leadership.release()
        self._leadership.close()
        self.state = "stopped"

    def _await_retry(self) -> None:
        """Wait, holding the lead, until the stored `retry_at` has come (the backoff ran out or an
        admin asked for now) or the failure was cleared elsewhere (a CLI catch-up went through).
        Reads the row every `takeover_interval` at most; the stop event ends the wait at once."""
        while not self._stop.is_set():
            row = self.positions.get(self.name)
            if row is None or row["error"] is None or not row["retry_at"]:
                return
            remaining = (datetime.fromisoformat(row["retry_at"]) - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, self.takeover_interval))

    def _follow(self) -> None:
        listener = self._leadership.connection
        if listener is not None:
            from psycopg.sql import SQL, Identifier

            listener.execute(SQL("LISTEN {}").format(Identifier(self.registry.recorder.channel_name)))
        while not self._stop.is_set():
            self._advanced = False
            self.catch_up()
            if self.attempts:  # the batch that failed went through: the backoff starts over
                self.attempts, self.error, self.state = 0, None, "running"
                log.info("projection %s resumed", self.name)
            if self._advanced:
                # Appends keep coming: let them gather into the next batch (one transaction).
                self._stop.wait(self.batch_interval)
            else:
                if listener is not None:
                    # Woken by any append's NOTIFY; the timeout re-checks anyway (a lost NOTIFY
                    # never stalls the projection for longer than this).
                    for _ in listener.notifies(timeout=0.5, stop_after=1):
                        pass
                else:
                    self._stop.wait(self.poll_interval)

