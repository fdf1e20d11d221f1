"""A webhook receiver for tests: a threaded `http.server` on the loopback that acknowledges
(200) and records every POST; it can be stopped and started again on the same port."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"


class Receiver:
    """Records each POST it acknowledges (200): headers and body. `stop()`/`start()` keep the port."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def running() -> Iterator[Receiver]:
    """A started receiver, stopped after (the body of a test fixture)."""
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


def verified_events(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """The notifications received, in arrival order, each body's media type and signature checked."""
    found = []
    for headers, body in receiver.received:
        assert headers["content-type"] == MEDIA_TYPE
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-dockyard-signature"], expected)
        found.extend(orjson.loads(body)["events"])
    return found
