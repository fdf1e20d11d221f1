"""Workers start together (`serve` runs one per core) and each opens the event store on start.

On a fresh PostgreSQL database, four processes' worth of simultaneous schema creation (the
library's `CREATE TYPE`, `CREATE OR REPLACE FUNCTION`, our read-model tables) used to fail with
a duplicate `pg_type` key or "tuple concurrently updated" every time; one must never stop a start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dockyard.api.settings import Settings
from dockyard.bootstrap import build_services
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry


def _at_once(start: Callable[[], Any], opened: list[Any], errors: list[BaseException], n: int = 4) -> None:
    """Call `start` in `n` threads released together; what each returns goes to `opened`."""
    barrier = threading.Barrier(n)

    def run() -> None:
        barrier.wait(timeout=60)
        try:
            opened.append(start())
        except BaseException as exc:  # reported by the caller, with the others
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def test_registries_opened_at_once_on_a_fresh_database_all_start(postgres, tmp_path) -> None:
    url = postgres.create()
    opened: list[Registry] = []
    errors: list[BaseException] = []
    _at_once(lambda: Registry(event_store_env(str(tmp_path), url)), opened, errors)
    try:
        assert not errors, errors
        assert len(opened) == 4
        # The schema they made is whole: each sees the same empty log.
        assert {r.recorder.max_notification_id() or 0 for r in opened} == {0}
    finally:
        for r in opened:
            r.close()


def test_every_table_a_worker_makes_at_start_is_made_once_when_four_start_at_once(postgres, tmp_path) -> None:
    """Beyond the log: the secret store, portal sessions, projection positions and tables, webhook
    state and shared logs are created by each worker too (each failed so here, 1 to 3 of 4 workers
    per try, before their creation took the schema lock)."""
    settings = Settings(data_dir=str(tmp_path), database_url=postgres.create(), storage=f"file://{tmp_path}/blobs")
    built: list[Any] = []
    errors: list[BaseException] = []
    _at_once(lambda: build_services(settings), built, errors)
    try:
        assert not errors, errors
        assert len(built) == 4
    finally:
        for services in built:
            services.registry.close()
