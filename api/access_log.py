"""The access log: one line per HTTP request, component `api` (logger `dockyard.api.access`):
method, path (without the query, which may carry tokens), status, bytes sent, duration, the user
the request acted as (`-` when it named none) and the client address. Fed by the request meter
(api/metrics.py), which already holds the status, sizes and duration, so the hot path is wrapped once.

This runs once per request on the event loop, so it makes one record and nothing more: the
message is formatted here, once (it has no `args` left for each handler to apply), and the record
goes straight to the logger's handlers (`Logger.handle`): `Logger.info` would also walk the stack
to find its caller (`findCaller`), which no line of ours shows. Record and line are as before:
same message, same `http` fields; the terminal's handler writes it off the loop
(`log_format.BackgroundStreamHandler`, installed by `dockyard serve`).
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from dockyard.domain.actor import SYSTEM, current_actor

access = logging.getLogger("dockyard.api.access")
_INFO = logging.INFO


def log_request(scope: Scope, status: int, received: int, sent: int, seconds: float) -> None:
    if not access.isEnabledFor(_INFO):
        return
    actor = current_actor.get()
    # A request that named nobody still runs under the process's actor (`system`, or the OS user
    # `dockyard serve` was started by, address `local`): that is not who called.
    user = actor.name if actor is not SYSTEM and actor.address != "local" else "-"
    client = scope.get("client")
    address = client[0] if client else "-"
    method, path, ms = scope.get("method", "-"), scope.get("path", "-"), seconds * 1000
    message = "%s %s %d %dB %.1fms user=%s client=%s" % (method, path, status, sent, ms, user, address)
    record = access.makeRecord(access.name, _INFO, __file__, 0, message, (), None, "log_request")
    record.http = {"method": method, "path": path, "status": status, "received": received,
                   "sent": sent, "ms": round(ms, 2), "user": user, "client": address}
    access.handle(record)
