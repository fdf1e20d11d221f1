"""`http.response.zerocopysend` on the protocol `dockyard serve` runs (api/zerocopy.py).

A real uvicorn server (uvloop, `PlainHttpProtocol`) in a thread of this process, on a real
socket, with a small ASGI app; raw sockets and http.client as clients. The files are larger
than the socket's buffers, so the sender has to wait for room as it does for a real pull.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from dockyard.api.plain_http import PlainHttpProtocol
from dockyard.api.zerocopy import EXTENSION

SIZE = 24 << 20  # well past what loopback sockets buffer (a few MiB)
BOUND = 30.0


class App:
    """Answers GET /file (and HEAD) with the file through zerocopysend, /slice with offset/count
    and a trailing body message, /short with a count past the file's end, /plain with a body."""

    def __init__(self, path: Path) -> None:
        self.path, self.extensions, self.errors = path, [], []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.extensions.append(dict(scope.get("extensions") or {}))
        try:
            await self.answer(scope, send)
        except Exception as exc:
            self.errors.append(exc)
            raise

    async def answer(self, scope: dict[str, Any], send: Any) -> None:
        path = scope["path"]
        if path == "/plain" or EXTENSION not in (scope.get("extensions") or {}):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
            await send({"type": "http.response.body", "body": b"plain"})
            return
        with open(self.path, "rb", buffering=0) as file:
            if path == "/slice":
                headers = [(b"content-length", b"1005")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": EXTENSION, "file": file, "offset": 1000, "count": 1000, "more_body": True})
                await send({"type": "http.response.body", "body": b"tail!", "more_body": False})
                return
            count = SIZE + 10 if path == "/short" else SIZE
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(count).encode())]})
            await send({"type": EXTENSION, "file": file, "offset": 0, "count": count, "more_body": False})


class Served:
    def __init__(self, app: App, port: int, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.app, self.port, self.server, self.thread = app, port, server, thread


def _serve(app: App, tls: tuple[str, str] | None = None) -> Served:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=PlainHttpProtocol, loop="uvloop", log_level="warning", lifespan="off",
                            ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + BOUND
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.01)
    return Served(app, sock.getsockname()[1], server, thread)


def _no_answer_in_progress(served: Served) -> None:
    """Every request's task ended (none is left waiting to send to a client that is gone)."""
    deadline = time.monotonic() + 5
    while served.server.server_state.tasks:
        assert time.monotonic() < deadline, "an answer is still in progress"
        time.sleep(0.02)


def _stop(served: Served) -> None:
    served.server.should_exit = True
    served.thread.join(BOUND)


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zerocopy") / "blob"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture(scope="module")
def served(blob: Path) -> Iterator[Served]:
    s = _serve(App(blob))
    yield s
    _stop(s)


def _get(port: int, path: str, method: str = "GET") -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND)
    conn.request(method, path)
    return conn, conn.getresponse()


def test_the_plain_protocol_offers_zerocopysend(served: Served) -> None:
    conn, answer = _get(served.port, "/plain")
    assert answer.read() == b"plain"
    assert EXTENSION in served.app.extensions[-1]


def test_a_file_is_sent_whole_and_the_connection_stays_usable(served: Served, blob: Path) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=BOUND)
    for _ in range(2):  # keep-alive: the second answer comes on the same connection
        conn.request("GET", "/file")
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("content-length") == str(SIZE)
        time.sleep(0.2)  # the socket's buffer fills: the sender has to wait for room
        assert answer.read() == blob.read_bytes()
    conn.request("GET", "/plain")
    assert conn.getresponse().read() == b"plain"
    conn.close()
    assert served.app.errors == []


def test_offset_count_and_a_body_message_after(served: Served, blob: Path) -> None:
    conn, answer = _get(served.port, "/slice")
    assert answer.read() == blob.read_bytes()[1000:2000] + b"tail!"
    conn.close()


def test_head_sends_no_body(served: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=BOUND)
    conn.request("HEAD", "/file")
    answer = conn.getresponse()
    assert answer.status == 200 and answer.getheader("content-length") == str(SIZE)
    assert answer.read() == b""
    conn.request("GET", "/plain")  # nothing stray was left on the connection
    assert conn.getresponse().read() == b"plain"
    conn.close()


def test_a_client_that_goes_away_mid_file_costs_nothing(served: Served) -> None:
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=BOUND)
        sock.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        assert len(sock.recv(65536)) > 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        sock.close()
    _no_answer_in_progress(served)
    conn, answer = _get(served.port, "/plain")
    assert answer.read() == b"plain"
    assert served.app.errors == []


def test_a_file_shorter_than_its_count_closes_the_connection(served: Served) -> None:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=BOUND)
    sock.sendall(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
    got = 0
    while chunk := sock.recv(1 << 20):  # ends (the server closes) instead of waiting forever
        got += len(chunk)
    assert SIZE < got < SIZE + 10 + 4096
    sock.close()
    assert [str(e) for e in served.app.errors] == ["The file is shorter than the count to send."]
    served.app.errors.clear()


def test_tls_connections_do_not_offer_it(blob: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    s = _serve(App(blob), (str(cert), str(key)))
    try:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", s.port, timeout=BOUND, context=context)
        conn.request("GET", "/file")
        assert conn.getresponse().read() == b"plain"  # the app saw no extension
        conn.close()
        assert s.app.extensions == [{}]
    finally:
        _stop(s)


def test_the_wait_for_room_ends_when_the_connection_is_lost(served: Served) -> None:
    """A client that stops reading and then closes: the sender waiting for room wakes and stops."""
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=BOUND)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)  # the sender is now waiting for room
    sock.close()
    time.sleep(0.3)
    conn, answer = _get(served.port, "/plain")
    assert answer.read() == b"plain"
    assert served.app.errors == []
    _no_answer_in_progress(served)
