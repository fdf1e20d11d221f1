"""The followed read models of one process: their runners, positions and query objects.

Built by the composition root (`api.app.create_app`'s lifespan, the CLI) from the `Registry`
application, whose database holds the log; started runners compete for leadership, so every
serving process may start them and exactly one folds each projection.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.to_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dockyard.projections.audit_queries import AuditQueries
from dockyard.projections.audit_trail import AuditTrail
from dockyard.projections.checkpoints import Checkpoints
from dockyard.projections.dialect import SQLITE, Dialect
from dockyard.projections.repository_search import RepositorySearch
from dockyard.projections.runner import Positions, Projection, ProjectionRunner
from dockyard.projections.search_queries import SearchQueries

WAIT_TIMEOUT = 10.0


def followed_projections(checkpoint_key: Ed25519PrivateKey | None = None,
                         checkpoint_every: int = 1000, dialect: Dialect = SQLITE) -> list[Projection]:
    """Every projection that follows the log (the inline ones are in `projections.inline`);
    the checkpoint signer only where its key is given (the CLI's readers go without)."""
    found: list[Projection] = [AuditTrail(), RepositorySearch(fts=dialect.name == "sqlite")]
    if checkpoint_key is not None:
        found.append(Checkpoints(checkpoint_key, every_events=checkpoint_every))
    return found


class ReadSide:
    def __init__(self, registry: Any, checkpoint_key: Ed25519PrivateKey | None = None,
                 checkpoint_every: int = 1000) -> None:
        self.registry = registry
        self.checkpoint_key = checkpoint_key
        datastore, dialect = registry.recorder.datastore, registry.dialect
        self.positions = Positions(datastore, dialect)
        self.runners = {p.name: ProjectionRunner(registry, p, positions=self.positions)
                        for p in followed_projections(checkpoint_key, checkpoint_every, dialect)}
        self.audit = AuditQueries(datastore, dialect)
        self.search = SearchQueries(datastore, dialect)

    def start(self) -> None:
        for runner in self.runners.values():
            runner.start()

    def stop(self) -> None:
        for runner in self.runners.values():
            runner.stop()

    def head(self) -> int:
        return self.registry.recorder.max_notification_id() or 0

    def wait(self, name: str, position: int, timeout: float = WAIT_TIMEOUT,
             stop: threading.Event | None = None) -> bool:
        """Whether projection `name` reached `position` within `timeout` (folded by any process);
        False at once when `stop` is set."""
        return self.positions.wait(name, position, timeout, stop)

    async def advanced(self, name: str, beyond: int, timeout: float) -> int:
        """Projection `name`'s position once it is past `beyond`, or as it is after `timeout`
        seconds: for async followers (the change feed) that must not hold a worker thread while
        idle. Reads the position row with a backoff (20 ms up to 0.5 s): no busy loop."""
        deadline = anyio.current_time() + timeout
        pause = 0.02
        while True:
            position = await anyio.to_thread.run_sync(self.positions.position, name)
            if position > beyond or anyio.current_time() >= deadline:
                return position
            await anyio.sleep(min(pause, max(0.0, deadline - anyio.current_time())))
            pause = min(pause * 2, 0.5)
