"""Workers start together (`serve` runs one per core) and each opens the event store on start.

On a fresh PostgreSQL database, four processes' worth of simultaneous schema creation (the
library's `CREATE TYPE`, `CREATE OR REPLACE FUNCTION`, our read-model tables) used to fail with
a duplicate `pg_type` key or "tuple concurrently updated" every time; one must never stop a start.
"""

from __future__ import annotations

import threading

from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry


def test_registries_opened_at_once_on_a_fresh_database_all_start(postgres, tmp_path) -> None:
    url = postgres.create()
    barrier = threading.Barrier(4)
    opened: list[Registry] = []
    errors: list[BaseException] = []

    def open_registry() -> None:
        barrier.wait(timeout=60)
        try:
            opened.append(Registry(event_store_env(str(tmp_path), url)))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=open_registry) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        assert len(opened) == 4
        # The schema they made is whole: each sees the same empty log.
        assert {r.recorder.max_notification_id() or 0 for r in opened} == {0}
    finally:
        for r in opened:
            r.close()
