"""Start the tamper-evident chain on a log that has events stored before it existed.

The recorders chain every append (`projections.chain.append`), and an append that finds
unchained events before it chains them first, in its own transaction. `start_chain` makes that
first append an `AuditChain.Created` event saying how many were backfilled, so the backfill is
itself in the log. Safe to call from every process at start: a second caller's save conflicts
on the aggregate id and is ignored.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import IntegrityError

from dockyard.domain.actor import SYSTEM, current_actor
from dockyard.domain.audit_chain import AuditChain
from dockyard.projections.chain import CHAIN_TABLE


def start_chain(registry: Any) -> int:
    """Chain events stored before the chain existed; returns how many (0: nothing to do)."""
    recorder, dialect = registry.recorder, registry.dialect
    table = (f"{recorder.datastore.schema}.{recorder.events_table_name}" if dialect.name == "postgres"
             else recorder.events_table_name)
    column = "notification_id" if dialect.name == "postgres" else "rowid"
    with dialect.reading(recorder.datastore) as cursor:
        cursor.execute(f"SELECT COUNT(*) AS n, MIN({column}) AS first, MAX({column}) AS last FROM {table} "
                       f"WHERE {column} > (SELECT COALESCE(MAX(position), 0) FROM {CHAIN_TABLE})")
        row = cursor.fetchall()[0]
    if not row["n"]:
        return 0
    token = current_actor.set(SYSTEM)
    try:
        registry.save(AuditChain(backfilled=int(row["n"]), first_position=int(row["first"]),
                                 last_position=int(row["last"])))
    except IntegrityError:
        return 0  # another process started it
    finally:
        current_actor.reset(token)
    return int(row["n"])
