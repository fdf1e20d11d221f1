"""`dockyard serve --workers N`'s supervisor: N worker processes on one listening socket, kept running.

It does what uvicorn's `Multiprocess` supervisor does, with the standard library alone. uvicorn's
starts each worker with multiprocessing's spawn, which on POSIX also starts multiprocessing's
resource tracker: a third interpreter (~13 MiB RSS) that nothing here uses; and it needs uvicorn
imported in the supervisor (~11 MiB). This one starts each worker as `python -m dockyard.worker`
(worker.py), handing it the socket and one end of a socket pair for health checks.

Behaviour, as uvicorn's: every 0.5 s each worker must answer a health check within 5 s; one that
died or hangs is killed and replaced, unless it failed to start (exit status 3: the app, TLS or
the socket is broken and would fail the same way again), which stops the supervisor. SIGINT and
SIGTERM stop every worker (SIGTERM: uvicorn's graceful shutdown) and wait for them; SIGHUP
replaces the workers one by one, each replacement serving before the old one stops (given up to
60 s to start, where uvicorn gives 5); SIGTTIN and SIGTTOU add and remove one. The log lines
are uvicorn's, on its `uvicorn.error` logger.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from dockyard.worker import STARTUP_FAILURE

SIGNALS = {getattr(signal, f"SIG{x}"): x for x in "INT TERM HUP QUIT TTIN TTOU USR1 USR2 WINCH".split()
           if hasattr(signal, f"SIG{x}")}
HEALTH_CHECK_SECONDS = 5.0  # uvicorn's timeout_worker_healthcheck
# How long a replacement worker (SIGHUP) may take to serve. uvicorn allows it the 5 s of a health
# check, which a worker importing the app on a loaded 2-core machine overran (8 s was seen): the
# restart was abandoned, keeping the old workers.
READY_SECONDS = 60.0
LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}  # uvicorn's names

log = logging.getLogger("uvicorn.error")


class Worker:
    """One worker process, and the socket its health checks go over."""

    def __init__(self, sock: socket.socket, plan: dict[str, Any]) -> None:
        self._check, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dockyard.worker", str(sock.fileno()), str(theirs.fileno()), json.dumps(plan)],
                pass_fds=(sock.fileno(), theirs.fileno()))
        self.pid = self.process.pid

    def health(self, timeout: float) -> bool | None:
        """Whether the worker's server has started (True) or not yet (False); None if it does not
        answer within `timeout` seconds."""
        try:
            self._check.sendall(b"?")
            if not select.select([self._check], [], [], timeout)[0]:
                return None
            answer = self._check.recv(1)
        except OSError:
            return None
        return answer == b"1" if answer else None

    def is_alive(self, timeout: float) -> bool:
        return self.process.poll() is None and self.health(timeout) is not None

    def wait_until_ready(self, timeout: float, stopping: threading.Event) -> bool:
        """True once the worker serves; False if it exits, the supervisor stops, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stopping.is_set() and self.process.poll() is None:
            if self.health(1.0):
                return True
            time.sleep(0.1)
        return False

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            log.info("Terminated child process [%d]", self.pid)
        self._check.close()

    def kill(self) -> None:
        self.process.kill()
        self._check.close()

    def join(self) -> None:
        log.info("Waiting for child process [%d]", self.pid)
        self.process.wait()


class Supervisor:
    def __init__(self, sock: socket.socket, plan: dict[str, Any]) -> None:
        self.sock, self.plan = sock, plan
        self.count = plan["workers"]
        self.workers: list[Worker] = []
        self.stopping = threading.Event()
        self.signals: list[int] = []
        for sig in SIGNALS:
            signal.signal(sig, lambda sig, frame: self.signals.append(sig))

    def run(self) -> None:
        log.info("Started parent process [%d]", os.getpid())
        self.workers = [Worker(self.sock, self.plan) for _ in range(self.count)]
        while not self.stopping.wait(0.5):
            self._handle_signals()
            self._keep_alive()
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.join()
        log.info("Stopping parent process [%d]", os.getpid())

    def _keep_alive(self) -> None:
        for i, worker in enumerate(self.workers):
            if self.stopping.is_set():
                return
            if worker.is_alive(HEALTH_CHECK_SECONDS):
                continue
            worker.kill()  # it died or hangs
            worker.join()
            if worker.process.returncode == STARTUP_FAILURE:
                log.error("Child process [%d] failed to start, stopping the parent process.", worker.pid)
                self.stopping.set()
                return
            log.info("Child process [%d] died", worker.pid)
            self.workers[i] = Worker(self.sock, self.plan)

    def _handle_signals(self) -> None:
        while self.signals:
            sig = SIGNALS[self.signals.pop(0)]
            if sig in ("INT", "TERM"):
                log.info("Received SIG%s, exiting.", sig)
                self.stopping.set()
            elif sig == "HUP":
                log.info("Received SIGHUP, restarting processes.")
                self._restart_all()
            elif sig == "TTIN":
                log.info("Received SIGTTIN, increasing the number of processes.")
                self.count += 1
                self.workers.append(Worker(self.sock, self.plan))
            elif sig == "TTOU":
                log.info("Received SIGTTOU, decreasing number of processes.")
                if self.count <= 1:
                    log.info("Already reached one process, cannot decrease the number of processes anymore.")
                    continue
                self.count -= 1
                worker = self.workers.pop()
                worker.terminate()
                worker.join()
            else:
                log.debug("Received signal SIG%s, but no handler is defined for it.", sig)

    def _restart_all(self) -> None:
        """Replace each worker, its replacement serving before the old one stops."""
        for i, old in enumerate(self.workers):
            if self.stopping.is_set():
                return
            new = Worker(self.sock, self.plan)
            if not new.wait_until_ready(READY_SECONDS, self.stopping):
                new.kill()
                new.join()
                if not self.stopping.is_set():
                    log.error("New child process [%d] was not ready in time; keeping worker [%d] and aborting "
                              "the restart.", new.pid, old.pid)
                return
            old.terminate()
            old.join()
            self.workers[i] = new


def configure_logging(plan: dict[str, Any]) -> None:
    """The supervisor's own lines (uvicorn.error) on stderr, in Dockyard's format: as a worker's."""
    import logging.config

    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": {"()": "dockyard.api.log_format.ComponentFormatter", "fmt": plan["log_format"]}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {"uvicorn.error": {"handlers": ["default"], "level": LEVELS.get(plan["log_level"].lower(), 20),
                                      "propagate": False}},
    })
