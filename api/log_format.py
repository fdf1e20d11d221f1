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
from datetime import UTC, datetime

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
