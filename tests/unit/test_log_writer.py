"""The terminal's log handler (`BackgroundStreamHandler`, what `dockyard serve` installs) writes
exactly what a `StreamHandler` writes, in order, off the caller's thread; `flush` waits for it.
The access log's record keeps its message and `http` fields."""

from __future__ import annotations

import io
import json
import logging
import threading

from dockyard.api import access_log
from dockyard.api.log_format import BackgroundStreamHandler, ComponentFormatter


def _records(n: int) -> list[logging.LogRecord]:
    out = []
    for i in range(n):
        record = logging.LogRecord("dockyard.api.access", logging.INFO, __file__, 1, "GET %s %d", (f"/v2/{i}", 200),
                                   None)
        record.http = {"status": 200, "i": i}
        out.append(record)
    return out


def test_lines_equal_a_stream_handlers_in_order_and_flush_waits_for_them() -> None:
    for fmt in ("text", "json"):
        plain, background = io.StringIO(), io.StringIO()
        reference = logging.StreamHandler(plain)
        handler = BackgroundStreamHandler(background)
        for h in (reference, handler):
            h.setFormatter(ComponentFormatter(fmt))
        # Given records logged from several threads at once
        records = _records(3000)
        chunks = [records[k::4] for k in range(4)]
        threads = [threading.Thread(target=lambda c=c: [handler.handle(r) for r in c]) for c in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # When flushed, every line is there, as a StreamHandler writes it
        handler.flush()
        for chunk in chunks:
            for r in chunk:
                reference.handle(r)
        assert sorted(background.getvalue().splitlines()) == sorted(plain.getvalue().splitlines())
        assert len(background.getvalue().splitlines()) == 3000
        handler.close()
        assert handler._thread is None


def test_one_threads_lines_keep_their_order() -> None:
    out = io.StringIO()
    handler = BackgroundStreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for r in _records(500):
        handler.handle(r)
    handler.close()  # close drains too
    assert out.getvalue().splitlines() == [f"GET /v2/{i} 200" for i in range(500)]


def test_the_access_record_keeps_its_message_and_fields() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logger = logging.getLogger("dockyard.api.access")
    level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        scope = {"method": "GET", "path": "/v2/a/b/manifests/v1", "client": ("10.0.0.9", 5123)}
        access_log.log_request(scope, 200, 0, 1234, 0.01234)
        logger.setLevel(logging.WARNING)
        access_log.log_request(scope, 200, 0, 1234, 0.01234)  # not at INFO: nothing
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    assert len(seen) == 1
    record = seen[0]
    assert record.getMessage() == "GET /v2/a/b/manifests/v1 200 1234B 12.3ms user=- client=10.0.0.9"
    assert record.levelno == logging.INFO and record.name == "dockyard.api.access"
    assert record.http == {"method": "GET", "path": "/v2/a/b/manifests/v1", "status": 200,  # type: ignore[attr-defined]
                           "received": 0, "sent": 1234, "ms": 12.34, "user": "-", "client": "10.0.0.9"}
    entry = json.loads(ComponentFormatter("json").format(record))
    assert entry["component"] == "api" and entry["http"]["sent"] == 1234
