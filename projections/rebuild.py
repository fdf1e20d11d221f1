"""Rebuild the registry view from the event log: drop its rows, replay every event.

Runs in one transaction that holds the log's write lock (PostgreSQL: the same EXCLUSIVE lock
every append takes; SQLite: the single writer lock), so the registry keeps serving reads from
the old rows until the commit, no append can slip between the replay and the swap, and the
result is exactly what folding the whole log gives — identical to the rows written inline.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from dockyard.projections import inline

PAGE = 1000


def rebuild_registry_view(registry: Any) -> int:
    """Replay the whole log into the registry view; return the number of events replayed."""
    dialect = registry.dialect
    recorder = registry.recorder
    table = recorder.events_table_name
    if dialect.name == "postgres":
        select = (f"SELECT notification_id AS position, originator_id, originator_version, topic, state "
                  f"FROM {recorder.datastore.schema}.{table} WHERE notification_id > %(after)s "
                  f"ORDER BY notification_id LIMIT %(limit)s")
    else:
        select = (f"SELECT rowid AS position, originator_id, originator_version, topic, state FROM {table} "
                  f"WHERE rowid > %(after)s ORDER BY rowid LIMIT %(limit)s")
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
            events = [
                registry.mapper.to_domain_event(StoredEvent(
                    originator_id=UUID(str(r["originator_id"])), originator_version=r["originator_version"],
                    topic=r["topic"], state=bytes(r["state"])))
                for r in rows
            ]
            inline.apply(dialect, cursor, events)
            count += len(rows)
            after = rows[-1]["position"]
    return count
