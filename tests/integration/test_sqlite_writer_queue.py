"""SQLite: requests that only read are not held up by writers queued for the writer connection
(while another process holds SQLite's write lock, e.g. a rebuild), and the queued writers go
through once the lock is free (commands.database.queue_sqlite_writers)."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry


def _wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _asking_the_pool(thread: threading.Thread) -> bool:
    """Whether `thread` is blocked asking the pool for a connection."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name in ("get", "get_connection") and "sqlite" not in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def test_a_read_is_not_queued_behind_writers_waiting_for_another_process(tmp_path: Path) -> None:
    registry = Registry(event_store_env(str(tmp_path), None))
    datastore = registry.recorder.datastore
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("CREATE TABLE queue_probe (n INTEGER)")
    other = sqlite3.connect(str(tmp_path / "dockyard.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction: a rebuild's batch
    done: list[int] = []

    def write(n: int) -> None:
        with datastore.transaction(commit=True) as cursor:
            cursor.execute("INSERT INTO queue_probe (n) VALUES (:n)", {"n": n})
        done.append(n)

    first = threading.Thread(target=write, args=(1,))
    first.start()
    _wait_for(lambda: datastore.pool._num_writers == 1)  # it has the writer connection, waits for the lock
    second = threading.Thread(target=write, args=(2,))
    second.start()
    _wait_for(lambda: _asking_the_pool(second))  # queued for the writer connection
    try:
        with datastore.transaction(commit=False) as cursor:  # the library's pool held this for 5 s, then refused it
            cursor.execute("SELECT count(*) AS n FROM queue_probe")
            assert cursor.fetchall()[0]["n"] == 0
        assert done == []
    finally:
        other.execute("ROLLBACK")
        first.join()
        second.join()
        other.close()
    assert sorted(done) == [1, 2]
    registry.close()
