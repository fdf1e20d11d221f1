"""`projections rebuild` for followed projections, on SQLite and PostgreSQL: the audit trail is
rebuilt into fresh tables while the live runner follows and events keep being appended, swapped
in atomically, and the result equals a from-scratch fold row for row."""

from __future__ import annotations

import threading
from typing import Any

from dockyard.commands.registry import Registry
from dockyard.projections import inline
from dockyard.projections.audit_trail import AuditTrail
from dockyard.projections.online_rebuild import rebuild
from dockyard.projections.rebuild import rebuild_inline_online
from dockyard.projections.runner import ProjectionRunner
from tests.integration.test_projection_runner import append
from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures


def rows(registry: Registry, table: str) -> list[tuple[Any, ...]]:  # noqa: F811
    with registry.dialect.reading(registry.recorder.datastore) as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY position")
        return [tuple(r) for r in cursor.fetchall()]


def test_rebuild_while_appending_equals_a_fold_from_scratch(registry: Registry) -> None:  # noqa: F811
    append(registry, 3000)
    live = ProjectionRunner(registry, AuditTrail(), batch=500)
    live.start()
    stop = threading.Event()
    appended: list[int] = []

    def writer() -> None:  # pushes go on during the rebuild
        while not stop.is_set():
            appended.append(append(registry, 10, prefix=f"during{len(appended)}/r"))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # Step 1: the rebuild folds into fresh tables and swaps them in while events arrive.
        result = rebuild(registry, live, batch=700)
        assert result.events >= 3000 and result.position >= 3000
    finally:
        stop.set()
        thread.join()
    try:
        head = registry.recorder.max_notification_id()
        # Step 2: the live runner goes on against the swapped-in tables up to the head.
        assert live.wait(head, timeout=60)
    finally:
        live.stop()
    assert appended, "no event was appended during the rebuild"
    # Step 3: a fold from scratch into other tables gives the very same rows.
    check = ProjectionRunner(registry, AuditTrail("__check"), name="audit__check")
    check.catch_up()
    assert rows(registry, "audit_events") == rows(registry, "audit_events__check")
    assert len(rows(registry, "audit_events")) == head
    # The canonical indexes are in place after the swap (the next rebuild can make them again).
    assert rebuild(registry, live).events == head
    assert rows(registry, "audit_events") == rows(registry, "audit_events__check")


def _analyzed(registry: Registry, tables: list[str]) -> dict[str, bool]:  # noqa: F811
    """Whether each table has been ANALYZEd by a command (autovacuum's own runs do not count)."""
    with registry.dialect.reading(registry.recorder.datastore) as cursor:
        cursor.execute("SELECT relname, last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables "
                       "WHERE relname = ANY(%(t)s)", {"t": tables})
        return {r["relname"]: r["analyzed"] for r in cursor.fetchall()}


def test_a_rebuild_swaps_in_tables_with_statistics_on_postgresql_only(registry: Registry) -> None:  # noqa: F811
    append(registry, 200)
    live = ProjectionRunner(registry, AuditTrail())
    # Step 1: a followed projection (the audit trail), then the inline read models (what pulls
    # and catalog pages read), each rebuilt online.
    rebuild(registry, live)
    rebuild_inline_online(registry)
    if registry.dialect.name == "postgres":
        # Step 2: every swapped-in table was analyzed before the swap.
        tables = ["audit_events", *inline.TABLES]
        assert _analyzed(registry, tables) == {name: True for name in tables}
    else:
        # Step 2: SQLite is left without statistics (nothing would keep them fresh).
        with registry.dialect.reading(registry.recorder.datastore) as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            assert cursor.fetchall() == []
