"""The process's recent log lines, per component, in bounded memory — what the portal's `Logs`
tab shows (DTR's per-component log view).

A `logging.Handler` attached to Dockyard's and uvicorn's loggers; each record goes to the ring
of its component (the second part of a `dockyard.<component>` logger name; uvicorn's are
`api`). Each ring keeps the last `per_component` lines. Per process: each replica shows its own.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

COMPONENTS = ("api", "auth", "registry", "storage", "projections", "gc", "database")
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def component_of(logger_name: str) -> str:
    parts = logger_name.split(".")
    if parts[0] == "dockyard" and len(parts) > 1 and parts[1] in COMPONENTS:
        return parts[1]
    return "api" if parts[0] == "uvicorn" else "registry"


class RecentLogs(logging.Handler):
    def __init__(self, per_component: int = 1000) -> None:
        super().__init__(logging.INFO)
        self._rings: dict[str, deque[tuple[float, str]]] = {c: deque(maxlen=per_component) for c in COMPONENTS}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = _FORMAT.format(record)
        except Exception:  # noqa: BLE001 — a bad log call must not break the request that made it
            return
        with self._guard:
            self._rings[component_of(record.name)].append((record.created, line))

    def lines(self, component: str | None = None, limit: int = 500) -> list[str]:
        """The last `limit` lines of one component, or of all of them in time order."""
        with self._guard:
            if component in self._rings:
                entries = list(self._rings[component])
            else:
                entries = sorted(e for ring in self._rings.values() for e in ring)
        return [line for _, line in entries[-limit:]]

    def attach(self) -> None:
        for name in ("dockyard", "uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)

    def detach(self) -> None:
        for name in ("dockyard", "uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).removeHandler(self)
