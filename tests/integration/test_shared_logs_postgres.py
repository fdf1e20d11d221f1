"""`api.shared_logs` on PostgreSQL: workers creating the table at once all start, and a follower
is woken by another process's NOTIFY (LISTEN), not only by its poll."""

from __future__ import annotations

import threading
import time

from dockyard.api.shared_logs import SharedLogs
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry


def test_workers_creating_the_table_at_once_all_start(postgres, tmp_path) -> None:
    registry = Registry(event_store_env(str(tmp_path), postgres.create()))
    barrier, errors = threading.Barrier(4), []

    def open_logs() -> None:
        barrier.wait(timeout=60)
        try:
            SharedLogs(registry.datastore, registry.dialect)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=open_logs) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    registry.close()
    assert not errors, errors


def test_a_follower_is_woken_by_another_process_notify(postgres, tmp_path) -> None:
    url = postgres.create()
    mine, theirs = (Registry(event_store_env(str(tmp_path / name), url)) for name in ("a", "b"))
    reader = SharedLogs(mine.datastore, mine.dialect)
    writer = SharedLogs(theirs.datastore, theirs.dialect)
    try:
        reader.listen()
        deadline = time.monotonic() + 30
        while not reader._listener_up:
            assert time.monotonic() < deadline, "LISTEN never took"
            time.sleep(0.05)
        before = reader._notified
        writer.offer("replica-b", "api", time.time(), "GET /v2/ 200 on replica-b")
        assert writer.flush() == 1
        while reader._notified == before:
            assert time.monotonic() < deadline, "no NOTIFY reached the follower"
            time.sleep(0.05)
        assert reader.lines("api") == ["GET /v2/ 200 on replica-b"]
    finally:
        reader.stop()
        writer.stop()
        mine.close()
        theirs.close()
