"""How Dockyard's log lines look: every line names its component (`api`, `auth`, `registry`,
`storage`, `projections`, `gc`, `database`; `api.recent_logs.component_of` maps logger names).

    text (a terminal):  2026-11-28 11:20:01,123 INFO    api          GET /v2/ 200 0B 1.2ms user=admin client=127.0.0.1
    json (--log-format json), one object a line:
        {"time": "...", "level": "INFO", "component": "api", "logger": "dockyard.api.access",
         "message": "GET /v2/ 200 ...", "http": {"method": "GET", "path": "/v2/", ...}}

`dockyard serve` installs `ComponentFormatter` for Dockyard's and uvicorn's loggers in every worker;
the `http` object is what the access log passes as `extra` (api/access_log.py).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from dockyard.api.recent_logs import component_of

TEXT = "%(asctime)s %(levelname)-7s %(component)-11s %(message)s"


class ComponentFormatter(logging.Formatter):
    """Text or JSON lines, each with the record's component. `fmt` is "text" or "json"."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__(TEXT)
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        component = component_of(record.name)
        setattr(record, "component", component)  # for `%(component)s`: LogRecord takes extra attributes
        if not self.json:
            return super().format(record)
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "component": component, "logger": record.name,
            "message": record.getMessage()}
        http = getattr(record, "http", None)
        if http is not None:
            entry["http"] = http
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class BackgroundStreamHandler(logging.StreamHandler):
    """A `StreamHandler` whose formatting and writing happen on a thread of its own, off the
    event loop: `emit` only queues the record. The thread formats what has queued and writes it
    in one write and one flush (a line a write under load cost the loop a system call per
    request, and the GIL handed to other threads while it ran; benchmarks/RESULTS.md).

    Lines come out in the order logged, within milliseconds. `flush()` returns once every
    record queued before it is written (`logging.shutdown` calls it at exit, so an ending
    worker loses nothing it logged); a process killed outright loses what was still queued."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._queue: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._queued = self._written = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self._thread is None or self._pid != os.getpid():  # first line, or a forked child
            self._start()
        self._queued += 1  # only the logging threads add, under the handler's lock (Handler.handle)
        self._queue.put(record)

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue = queue.SimpleQueue()
        self._queued = self._written = 0
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        get, pending = self._queue.get, self._queue
        while True:
            batch = [get()]
            while not pending.empty() and len(batch) < 1000:
                batch.append(pending.get_nowait())
            lines = []
            for record in batch:
                if record is None:
                    continue
                try:
                    lines.append(self.format(record) + self.terminator)
                except Exception:  # noqa: BLE001 — as StreamHandler: report it, keep logging
                    self.handleError(record)
            try:
                if lines:
                    self.stream.write("".join(lines))
                    self.stream.flush()
            except Exception:  # noqa: BLE001 — the stream went away (closed pipe): nothing to do
                pass
            with self._done:
                self._written += len(batch)
                self._done.notify_all()
            if None in batch:
                return

    def flush(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive() or self._pid != os.getpid():
            return
        target = self._queued
        with self._done:
            self._done.wait_for(lambda: self._written >= target or not thread.is_alive(), timeout=5)

    def close(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            self.flush()
            with self.lock:  # type: ignore[union-attr]
                self._queued += 1
                self._queue.put(None)
            thread.join(5)
        self._thread = None
        super().close()
