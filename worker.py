"""One process serving the app: uvicorn with Dockyard's options, on a socket `dockyard serve` bound.

    python -m dockyard.worker LISTEN_FD CHECK_FD PLAN

is how the supervisor (supervisor.py) starts each of `--workers N`: LISTEN_FD is the listening
socket, CHECK_FD one end of a socket pair on which the worker answers the supervisor's health
checks (one byte: "1" once its server has started, "0" before), PLAN the JSON `serve` prepared
(cli.py `_prepare`). With `--workers 1`, `serve` runs `config(plan)` in its own process instead.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any

STARTUP_FAILURE = 3  # uvicorn's exit status for a server whose app did not start
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def tune_malloc() -> None:
    """Fixed glibc malloc thresholds for a serving process, unless MALLOC_MMAP_THRESHOLD_ or
    MALLOC_TRIM_THRESHOLD_ set them: a block of 4 MiB or more is a mapping of its own, returned
    to the system when freed; the heap's top is given back once more than 1 MiB of it is free.

    glibc's default raises the mmap threshold to the size of any mapped block freed, up to
    32 MiB, and the trim threshold to twice that. A transient block between 128 KiB and 32 MiB
    then stays resident in the heap of the thread that freed it: after argon2 sign-ins with a
    19 MiB memory cost, two workers idled at 284 MiB instead of 213 (benchmarks/RESULTS.md,
    session 7). The trim threshold is set too: left at 128 KiB, the request body's 256 KiB
    chunks moved the heap's top back and forth, +15-20 % of a push's CPU; at 1 MiB, in the noise.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    import ctypes

    libc = ctypes.CDLL(None)
    libc.mallopt(M_MMAP_THRESHOLD, 4 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 20)


def config(plan: dict[str, Any]) -> Any:  # uvicorn.Config: uvicorn is imported here, not at module level
    """The `uvicorn.Config` that serves the app as `plan` says (listen address, workers, log level
    and format, keep-alive, TLS)."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    # Dockyard's own loggers (`dockyard.*`) print beside uvicorn's, in its format.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["dockyard"] = {"handlers": ["default"], "level": plan["log_level"].upper(),
                                         "propagate": False}
    # Every line names its component; text for a terminal, JSON lines with --log-format json.
    log_config["formatters"]["default"] = {"()": "dockyard.api.log_format.ComponentFormatter",
                                           "fmt": plan["log_format"]}
    # Formatted and written on a thread of its own: the access log's line per request costs the
    # event loop a queue put, not a format, a write and a flush (api/log_format.py).
    log_config["handlers"]["default"]["class"] = "dockyard.api.log_format.BackgroundStreamHandler"
    # What is printed is what --log-level says, also when the portal's Logs view (api/recent_logs.py)
    # has raised the loggers to INFO to collect its own lines.
    log_config["handlers"]["default"]["level"] = plan["log_level"].upper()
    # httptools with header size, header time and body stall limits (api/http_limits.py, under plain_http).
    return uvicorn.Config("dockyard.api.app:factory", factory=True, host=plan["host"], port=plan["port"],
                          workers=plan["workers"], http="dockyard.api.plain_http:PlainHttpProtocol", loop="uvloop",
                          log_level=plan["log_level"], log_config=log_config, access_log=False,
                          timeout_graceful_shutdown=10, timeout_keep_alive=plan["keepalive"],
                          **_tls_options(plan["tls"]))


def _tls_options(tls: dict[str, Any] | None) -> dict[str, Any]:
    """uvicorn's TLS options; for a generated certificate, a context factory that lets each worker
    load a new one when the domain name changes (api/tls.py), where this uvicorn has it."""
    if not tls:
        return {}
    import inspect

    import uvicorn

    options: dict[str, Any] = {"ssl_certfile": tls["certfile"], "ssl_keyfile": tls["keyfile"]}
    if tls["generated"] and "ssl_context_factory" in inspect.signature(uvicorn.Config).parameters:
        from dockyard.api.tls import context_factory

        options["ssl_context_factory"] = context_factory
    return options


class _Checks(threading.Thread):
    """Answers the supervisor's health checks: a byte in, "1" (started) or "0" (not yet) out.
    Started before anything slow is imported, so a worker that is still starting answers too."""

    def __init__(self, channel: socket.socket) -> None:
        super().__init__(name="dockyard-health", daemon=True)
        self.channel = channel
        self.server: Any = None

    def run(self) -> None:
        try:
            while self.channel.recv(1):
                self.channel.sendall(b"1" if self.server is not None and self.server.started else b"0")
        except OSError:
            pass  # the supervisor went away; it is not our place to stop serving


def main(argv: list[str]) -> int:
    listen_fd, check_fd, plan = int(argv[0]), int(argv[1]), json.loads(argv[2])
    checks = _Checks(socket.socket(fileno=check_fd))
    checks.start()
    tune_malloc()
    import uvicorn

    server = uvicorn.Server(config(plan))
    checks.server = server
    try:
        server.run(sockets=[socket.socket(fileno=listen_fd)])
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the supervisor stops us too
        pass
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
