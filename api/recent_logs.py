"""The process's recent log lines, per component, in bounded memory — what the portal's `Logs`
tab shows (DTR's per-component log view).

A `logging.Handler` attached to Dockyard's and uvicorn's loggers; each record goes to the ring
of its component (the second part of a `dockyard.<component>` logger name; uvicorn's are
`api`). Each ring keeps the last `per_component` lines. Each line names the process that logged
it (`replica`: DOCKYARD_REPLICA_NAME, else hostname:pid) and goes to each of `sinks` too
(`api.shared_logs`, which gathers every replica's lines in the database).
Each line has a sequence number, so a follower (`/api/v0/logs?follow=true`) asks for what came
after the last one it saw (`since`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable

COMPONENTS = ("api", "auth", "registry", "storage", "projections", "gc", "database")
_TEXT = "%(asctime)s %(levelname)-7s %(component)-11s %(replica)s %(message)s"  # api/log_format.TEXT + replica


def replica_name(configured: str | None = None) -> str:
    """What a process's lines are tagged with: the configured name, else hostname:pid."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


def component_of(logger_name: str) -> str:
    parts = logger_name.split(".")
    if parts[0] == "dockyard" and len(parts) > 1 and parts[1] in COMPONENTS:
        return parts[1]
    return "api" if parts[0] == "uvicorn" else "registry"


# Not uvicorn.access: Dockyard's own access log (`dockyard.api.access`) has a line per request
# with the user and duration; uvicorn's would repeat each one.
_LOGGERS = ("dockyard", "uvicorn", "uvicorn.error")


class RecentLogs(logging.Handler):
    def __init__(self, per_component: int = 1000, replica: str | None = None) -> None:
        super().__init__(logging.INFO)
        self.replica = replica_name(replica)
        # Each also gets (replica, component, time, line); it must not block (SharedLogs.offer).
        self.sinks: list[Callable[[str, str, float, str], None]] = []
        self._rings: dict[str, deque[tuple[int, str]]] = {c: deque(maxlen=per_component) for c in COMPONENTS}
        self._guard = threading.Lock()
        self._seq = 0
        self._format = logging.Formatter(_TEXT)

    def emit(self, record: logging.LogRecord) -> None:
        component = component_of(record.name)
        try:
            record.component, record.replica = component, self.replica
            line = self._format.format(record)
        except Exception:  # noqa: BLE001 — a bad log call must not break the request that made it
            return
        with self._guard:
            self._seq += 1
            self._rings[component].append((self._seq, line))
        for sink in self.sinks:
            sink(self.replica, component, record.created, line)

    def generation(self) -> int:
        """Changes when a line is added (what a follower waits for)."""
        return self._seq

    def lines(self, component: str | None = None, limit: int = 500) -> list[str]:
        """The last `limit` lines of one component, or of all of them in time order."""
        return [line for _, line in self.since(component, 0, limit)[0]]

    def since(self, component: str | None, after: int, limit: int = 500) -> tuple[list[tuple[int, str]], int]:
        """(sequence, line) of one component (all when None) after sequence `after`, oldest first,
        at most the last `limit` of them; and the sequence to ask after next time."""
        with self._guard:
            rings = [self._rings[component]] if component in self._rings else list(self._rings.values())
            entries = sorted(e for ring in rings for e in ring if e[0] > after)
            last = self._seq
        return entries[-limit:], last

    def attach(self) -> None:
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)

    def detach(self) -> None:
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(self)
