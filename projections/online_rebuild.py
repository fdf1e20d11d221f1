"""Rebuild a followed projection while the old tables keep serving, then swap atomically.

1. Fold the whole log into fresh tables (`<table>__rebuild`, position row `<name>__rebuild`) in
   batches, with no lock on anything the registry uses: pushes, pulls and the live runner go on.
2. Build the fresh tables' indexes (faster after the bulk load than during it). PostgreSQL only:
   SQLite cannot rename an index, so there they are built after the swap (step 4).
3. One short transaction: lock the live projection's position row (the live runner takes that
   row first in each batch, so it is between batches), fold the few events appended since step
   1 into the fresh tables, drop the old tables, rename the fresh ones (and their indexes) to
   the canonical names, and set the live position to the fresh one's. Readers see the old rows
   until the commit and the new ones after it; the live runner's next compare-and-set fails,
   it reloads the position and goes on against the new tables (the names are the same).
4. SQLite: the canonical indexes, one transaction each. Building an index holds SQLite's single
   writer lock for the whole build (seconds on a loaded machine for 200k rows), which pushes
   wait behind: one index at a time lets them in between. Until the last one is built, queries
   on the table are correct but slower; a crash in between leaves an index to the next start's
   `CREATE INDEX IF NOT EXISTS` (every runner runs it).

On SQLite the fold's transactions are sized by time (`SQLITE_BUDGET` of writing each, the batch
grows or shrinks to fit): each holds the writer lock that pushes queue for, and a fixed count of
events takes ten times longer on a machine ten times as loaded.

The inline read models (registry, identity) are not rebuilt here: they are written in the
event transaction (`projections.rebuild` replays them under the log's write lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dockyard.projections.runner import Positions, ProjectionRunner, Recorded
from dockyard.projections.upcasting import current_shape

SUFFIX = "__rebuild"
# Events per transaction (on SQLite the first; then sized by `SQLITE_BUDGET`). PostgreSQL writes
# other tables than the pushes do, so its batches only need to be large enough to be efficient.
BATCH = {"sqlite": 1000, "postgres": 5000}
# Seconds of writing per transaction on SQLite: each holds the single writer lock a push waits for.
SQLITE_BUDGET = 0.075


@dataclass(frozen=True)
class RebuildResult:
    name: str
    events: int
    seconds: float
    position: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def rebuild(registry: Any, live: ProjectionRunner, *, batch: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> RebuildResult:
    """Rebuild `live`'s projection from the log into fresh tables, then swap them in."""
    dialect, datastore = registry.dialect, registry.recorder.datastore
    batch = batch or BATCH[dialect.name]
    fresh = live.projection.with_suffix(SUFFIX)
    shadow = live.name + SUFFIX
    positions: Positions = live.positions
    started = time.perf_counter()
    # Step 0: whatever a crashed rebuild left behind goes.
    with datastore.transaction(commit=True) as cursor:
        for table in fresh.tables().values():
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(dialect.sql("DELETE FROM projection_positions WHERE name = %(name)s"), {"name": shadow})
    # Step 1: the bulk of the log, in batches, no locks.
    sqlite = dialect.name == "sqlite"
    runner = ProjectionRunner(registry, fresh, batch=batch, positions=positions, create_indexes=False, name=shadow,
                              budget=SQLITE_BUDGET if sqlite else None)
    events = runner.catch_up(progress=progress)
    # Step 2: indexes after the load (SQLite: after the swap, step 4), and on PostgreSQL the
    # planner's statistics of the fresh tables (`analyze_fresh`).
    if not sqlite:
        with datastore.transaction(commit=True) as cursor:
            for statement in fresh.index_statements(dialect):
                cursor.execute(statement)
        analyze_fresh(datastore, list(fresh.tables().values()))
    # Step 3: the swap.
    with datastore.transaction(commit=True) as cursor:
        if dialect.name == "postgres":
            cursor.execute("SELECT position FROM projection_positions WHERE name = %(name)s FOR UPDATE",
                           {"name": live.name})
        else:  # a write first: SQLite's BEGIN is deferred, this makes us the writer now
            cursor.execute(dialect.sql("UPDATE projection_positions SET updated_at = updated_at "
                                       "WHERE name = %(name)s"), {"name": live.name})
        # Reads go through this transaction's cursor: on SQLite another connection could wait
        # for this writer (the library's pool excludes readers from in-memory databases).
        cursor.execute(dialect.sql("SELECT position FROM projection_positions WHERE name = %(name)s"),
                       {"name": shadow})
        position = int(cursor.fetchall()[0]["position"])
        while True:
            cursor.execute(dialect.sql(_after(registry)), {"after": position, "limit": batch})
            rows = cursor.fetchall()
            if not rows:
                break
            fresh.apply(dialect, cursor, [
                Recorded(int(r["position"]), r["topic"], r["originator_id"], r["originator_version"],
                         current_shape(r["topic"], orjson.loads(bytes(r["state"]))))
                for r in rows if not fresh.topics or r["topic"] in fresh.topics])
            events += len(rows)
            position = int(rows[-1]["position"])
        for canonical, table in fresh.tables().items():
            cursor.execute(f"DROP TABLE IF EXISTS {canonical}")
            cursor.execute(f"ALTER TABLE {table} RENAME TO {canonical}")
        if not sqlite:
            for name in _index_names(fresh.index_statements(dialect)):
                cursor.execute(f"ALTER INDEX {name} RENAME TO {name.replace(SUFFIX, '', 1)}")
        cursor.execute(dialect.sql(
            "UPDATE projection_positions SET position = %(p)s, failed_position = NULL, error = NULL "
            "WHERE name = %(name)s"), {"p": position, "name": live.name})
        cursor.execute(dialect.sql("DELETE FROM projection_positions WHERE name = %(name)s"), {"name": shadow})
    # Step 4 (SQLite): the canonical indexes, each in its own turn at the writer lock.
    if sqlite:
        build_indexes_one_by_one(datastore, live.projection.index_statements(dialect))
    return RebuildResult(live.name, events, time.perf_counter() - started, position)


def analyze_fresh(datastore: Any, tables: list[str]) -> None:
    """PostgreSQL: gather the planner's statistics of freshly loaded `tables` before they are
    swapped in (statistics belong to the table, so they survive its rename).

    A table that has never been analyzed is planned from guesses; autovacuum analyzes it only
    after its next threshold of changes (never where it is off), and until then the catalog and
    tag pages of a large registry could take a sequential scan where an index serves them
    (benchmarks/scale.py saw it). SQLite is left alone: its planner needs no statistics, and
    `sqlite_stat1` rows that nothing refreshes would age as the tables grow.
    """
    with datastore.transaction(commit=True) as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


def build_indexes_one_by_one(datastore: Any, statements: list[str]) -> None:
    """Run each `CREATE INDEX` in its own transaction (SQLite: each a separate hold of the
    writer lock, so writers waiting for it get in between the builds)."""
    for statement in statements:
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(statement)


def _after(registry: Any) -> str:
    recorder = registry.recorder
    if registry.dialect.name == "postgres":
        table, column = f"{recorder.datastore.schema}.{recorder.events_table_name}", "notification_id"
    else:
        table, column = recorder.events_table_name, "rowid"
    return (f"SELECT {column} AS position, originator_id, originator_version, topic, state FROM {table} "
            f"WHERE {column} > %(after)s ORDER BY {column} LIMIT %(limit)s")


def _index_names(statements: list[str]) -> list[str]:
    """The index names of `CREATE INDEX IF NOT EXISTS <name> ON ...` statements."""
    return [s.split(" IF NOT EXISTS ", 1)[1].split(" ", 1)[0] for s in statements]
