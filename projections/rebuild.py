"""Rebuild the inline read models (registry and identity views) from the event log.

`rebuild_inline_online` (what `dockyard projections rebuild registry|identity|--all` runs)
folds the log into fresh tables while the old ones serve, then swaps them in with a short
transaction. `rebuild_registry_view` (`dockyard projections rebuild` with no name) drops the
rows and replays every event in one transaction that holds the log's write lock (PostgreSQL:
the same EXCLUSIVE lock every append takes; SQLite: the single writer lock), so the registry
keeps serving reads from the old rows until the commit, no append can slip between the replay and the swap, and the
result is exactly what folding the whole log gives — identical to the rows written inline.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from dockyard.projections import inline
from dockyard.projections.online_rebuild import SQLITE_BUDGET, analyze_fresh, build_indexes_one_by_one
from dockyard.projections.runner import MAX_BATCH, MIN_BATCH, Positions

PAGE = 1000


def _select(registry: Any) -> str:
    """A page of the log after `%(after)s`, at most `%(limit)s` events, with their positions."""
    recorder = registry.recorder
    table = recorder.events_table_name
    if registry.dialect.name == "postgres":
        return (f"SELECT notification_id AS position, originator_id, originator_version, topic, state "
                f"FROM {recorder.datastore.schema}.{table} WHERE notification_id > %(after)s "
                f"ORDER BY notification_id LIMIT %(limit)s")
    return (f"SELECT rowid AS position, originator_id, originator_version, topic, state FROM {table} "
            f"WHERE rowid > %(after)s ORDER BY rowid LIMIT %(limit)s")


def _domain_event(registry: Any, r: Any) -> Any:
    return registry.mapper.to_domain_event(StoredEvent(
        originator_id=UUID(str(r["originator_id"])), originator_version=r["originator_version"],
        topic=r["topic"], state=bytes(r["state"])))


def rebuild_registry_view(registry: Any) -> int:
    """Replay the whole log into the registry view; return the number of events replayed."""
    dialect = registry.dialect
    recorder = registry.recorder
    table = recorder.events_table_name
    select = _select(registry)
    count = 0
    with recorder.datastore.transaction(commit=True) as cursor:
        if dialect.name == "postgres":
            cursor.execute(f"LOCK TABLE {recorder.datastore.schema}.{table} IN EXCLUSIVE MODE")
        for name in inline.TABLES:
            cursor.execute(f"DELETE FROM {name}")
        after = 0
        while True:
            cursor.execute(dialect.sql(select), {"after": after, "limit": PAGE})
            rows = cursor.fetchall()
            if not rows:
                break
            events = [_domain_event(registry, r) for r in rows]
            inline.apply(dialect, cursor, events)
            count += len(rows)
            after = rows[-1]["position"]
    if dialect.name == "postgres":  # every row of the tables was replaced: their statistics too
        analyze_fresh(recorder.datastore, list(inline.TABLES))
    return count


# -- online: fresh tables, then a short swap -------------------------------------------------

SUFFIX = "__rebuild"


def _renamer(tables: tuple[str, ...]) -> Callable[[str], str]:
    """Rewrite a view's statement to use the fresh tables (and fresh index names): table names
    after the SQL keywords that introduce one, never a column of the same name (an access
    token's `repositories`)."""
    names = "|".join(sorted(tables, key=len, reverse=True))
    table = re.compile(rf"\b(INTO|UPDATE|FROM|JOIN|EXISTS|ON)\s+({names})\b")
    qualified = re.compile(rf"(?<![\w.])({names})\.(?=\w)")  # `credential_epochs.epoch`
    index = re.compile(r"\bINDEX IF NOT EXISTS (\w+)")

    @lru_cache(maxsize=1024)
    def rename(statement: str) -> str:
        statement = index.sub(rf"INDEX IF NOT EXISTS \1{SUFFIX}", statement)
        statement = qualified.sub(rf"\1{SUFFIX}.", statement)
        return table.sub(lambda m: f"{m.group(1)} {m.group(2)}{SUFFIX}", statement)

    return rename


class _RenamingCursor:
    """A cursor that sends every statement to the fresh tables."""

    def __init__(self, cursor: Any, rename: Callable[[str], str]) -> None:
        self._cursor, self._rename = cursor, rename

    def execute(self, statement: str, params: Any = None) -> Any:
        return self._cursor.execute(self._rename(statement), params)

    def fetchall(self) -> Any:
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        return self._cursor.fetchone()


def _fold_page(registry: Any, cursor: Any, rename: Callable[[str], str], after: int, limit: int) -> tuple[int, int]:
    """Fold the events after `after` (at most `limit`) into the fresh tables; (count, last position)."""
    cursor.execute(registry.dialect.sql(_select(registry)), {"after": after, "limit": limit})
    rows = cursor.fetchall()
    if not rows:
        return 0, after
    inline.apply(registry.dialect, _RenamingCursor(cursor, rename), [_domain_event(registry, r) for r in rows])
    return len(rows), int(rows[-1]["position"])


def rebuild_inline_online(registry: Any, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild the inline read models into fresh tables while the old ones keep serving; then,
    in one short transaction that takes the log's append lock (PostgreSQL: the EXCLUSIVE lock
    every append takes, for the few events since; SQLite: the single writer), fold the tail and
    swap the tables in. Returns the number of events folded."""
    dialect, datastore = registry.dialect, registry.recorder.datastore
    positions = Positions(datastore, dialect)  # its table: the swap's first write on SQLite
    rename = _renamer(inline.TABLES)
    with datastore.transaction(commit=True) as cursor:
        for name in inline.TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {name}{SUFFIX}")
        for statement in inline.create_statements(dialect):
            cursor.execute(rename(statement))
    head = registry.recorder.max_notification_id() or 0
    count, position, page = 0, 0, PAGE
    while position < head:  # the bulk up to the head seen at the start, a page per transaction, no lock
        with datastore.transaction(commit=True) as cursor:
            writing = time.perf_counter()
            folded, position = _fold_page(registry, cursor, rename, position, page)
        count += folded
        if progress is not None:
            progress(position, head)
        if folded < page:
            break
        if dialect.name == "sqlite":  # each page holds the writer lock pushes wait for: size it by time
            held = max(time.perf_counter() - writing, 1e-4)
            page = max(MIN_BATCH, min(MAX_BATCH, int(page * min(2.0, SQLITE_BUDGET / held))))
    if dialect.name == "postgres":  # statistics for the fresh tables, before the swap (outside the lock)
        analyze_fresh(datastore, [name + SUFFIX for name in inline.TABLES])
    with datastore.transaction(commit=True) as cursor:
        if dialect.name == "postgres":  # appends wait here for the tail and the renames (milliseconds)
            cursor.execute(f"LOCK TABLE {registry.recorder.datastore.schema}."
                           f"{registry.recorder.events_table_name} IN EXCLUSIVE MODE")
        else:  # a write first: SQLite's BEGIN is deferred, this makes us the single writer now
            positions.ensure(cursor, "inline" + SUFFIX)
            cursor.execute(dialect.sql("DELETE FROM projection_positions WHERE name = %(n)s"),
                           {"n": "inline" + SUFFIX})
        while True:
            folded, position = _fold_page(registry, cursor, rename, position, PAGE)
            count += folded
            if folded < PAGE:
                break
        fresh_indexes = [m.group(1) for s in inline.create_statements(dialect)
                         if (m := re.search(r"INDEX IF NOT EXISTS (\w+)", s))]
        for name in inline.TABLES:
            cursor.execute(f"DROP TABLE {name}")
            cursor.execute(f"ALTER TABLE {name}{SUFFIX} RENAME TO {name}")
        for name in fresh_indexes:
            if dialect.name == "postgres":
                cursor.execute(f"ALTER INDEX {name}{SUFFIX} RENAME TO {name}")
            else:  # SQLite cannot rename an index: drop the fresh one, make the canonical one below
                cursor.execute(f"DROP INDEX {name}{SUFFIX}")
    if dialect.name != "postgres":
        # After the swap, one index per transaction: a build holds SQLite's writer lock throughout
        # (seconds on a loaded machine), and pushes waiting for it get in between the builds.
        build_indexes_one_by_one(datastore, [s for s in inline.create_statements(dialect) if "INDEX" in s])
    return count
