"""A projection runner in its own process, for the crash and takeover tests.

    python -m tests.projection_worker DATA_DIR DATABASE_URL|- [--pause SECONDS]

Follows the log with `SeenProjection` (one row per event, primary key = position, so a
duplicate would fail loudly) until killed. `--pause` sleeps inside every batch's transaction,
after its rows are written and before the commit, so a SIGKILL lands mid-batch.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from dockyard.bootstrap import registry_on
from dockyard.commands.persistence import event_store_env
from dockyard.projections.dialect import Dialect
from dockyard.projections.runner import ProjectionRunner, Recorded


class SeenProjection:
    name = "seen"
    topics: tuple[str, ...] = ()

    def __init__(self, suffix: str = "", pause: float = 0.0, fail_at: int | None = None) -> None:
        self.table, self.pause, self.fail_at = "seen" + suffix, pause, fail_at

    def with_suffix(self, suffix: str) -> SeenProjection:
        return SeenProjection(suffix)

    def tables(self) -> dict[str, str]:
        return {"seen": self.table}

    def create_statements(self, dialect: Dialect) -> list[str]:
        return [f"CREATE TABLE IF NOT EXISTS {self.table} (position {dialect.bigint} PRIMARY KEY, "
                "topic TEXT NOT NULL, pid INTEGER NOT NULL)"]

    def index_statements(self, dialect: Dialect) -> list[str]:
        return []

    def apply(self, dialect: Dialect, cursor: Any, events: Sequence[Recorded]) -> None:
        import os

        rows = [{"position": e.position, "topic": e.topic, "pid": os.getpid()} for e in events]
        cursor.executemany(dialect.sql(f"INSERT INTO {self.table} (position, topic, pid) "
                                       "VALUES (%(position)s, %(topic)s, %(pid)s)"), rows)
        if self.fail_at is not None and any(e.position == self.fail_at for e in events):
            raise ValueError(f"cannot fold event {self.fail_at}")
        if self.pause:
            time.sleep(self.pause)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("database_url")
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    registry = registry_on(event_store_env(args.data_dir, None if args.database_url == "-" else args.database_url))
    runner = ProjectionRunner(registry, SeenProjection(pause=args.pause), batch=args.batch, takeover_interval=0.1)
    runner.start()
    print("started", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    runner.stop()
    registry.close()


if __name__ == "__main__":
    main()
