"""Issue 7, item 6: what a client may make the server hold before the app sees a request.

Raw sockets against a real `dockyard serve` (uvicorn, httptools, uvloop): the limits live in the
HTTP protocol (api/http_limits.py), below anything an in-process test reaches. Before: a 50 MB
header was read whole (six at once took the server from 91 to 477 MB), 10,000 headers were
accepted, and connections that never finished their headers, or their body, were held forever.

Timeouts are set short here (2 s); each wait for the server to act is a socket read bounded by
`BOUND`, so a server that never acts fails the test instead of hanging it.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.server import DockyardServer

BOUND = 20.0
LIMIT = 32 * 1024
BASIC = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path_factory.mktemp("limits") / "data", None, ADMIN_PASSWORD, extra_env={
        "DOCKYARD_HEADER_TIMEOUT_SECONDS": "2", "DOCKYARD_BODY_STALL_TIMEOUT_SECONDS": "2",
        "DOCKYARD_KEEPALIVE_TIMEOUT_SECONDS": "2"})
    srv.start()
    yield srv
    srv.stop()


def _connect(server: DockyardServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket timeout)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _request(server: DockyardServer, head: bytes) -> bytes:
    """Send a request head while reading the answer (a server may answer before all is sent)."""
    sock = _connect(server)
    answer: list[bytes] = []
    reader = threading.Thread(target=lambda: answer.append(_read_all(sock)))
    reader.start()
    try:
        sock.sendall(head)
    except (BrokenPipeError, ConnectionResetError):
        pass  # it answered and stopped reading: that is the point
    reader.join(BOUND)
    sock.close()
    assert answer, "no answer within the bound"
    return answer[0]


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def _head(*headers: str, path: str = "/healthz") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: registry", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_ordinary_requests_pass(server: DockyardServer) -> None:
    # A large but plausible head: 60 headers and a 12 KiB bearer token.
    extra = [f"X-Trace-{i}: {'v' * 40}" for i in range(60)]
    assert _status(_request(server, _head(f"Authorization: Bearer {'t' * 12288}", *extra))) == 200
    assert _status(_request(server, _head(*[f"X-{i}: 1" for i in range(98)]))) == 200  # 100 with Host, Connection
    # Head and a 40 KB body in one read: the body is no header bytes.
    head = _head("Content-Length: 40000")
    assert _status(_request(server, head + b"b" * 40000)) == 200


def test_headers_past_the_size_limit_answer_431(server: DockyardServer) -> None:
    answer = _request(server, _head(f"X-Big: {'a' * LIMIT}"))
    assert _status(answer) == 431 and b"at most 32768 bytes and 100 fields" in answer
    answer = _request(server, _head(*[f"X-{i}: {'b' * 1000}" for i in range(40)]))  # 40 KiB in all
    assert _status(answer) == 431


def test_too_many_headers_answer_431(server: DockyardServer) -> None:
    assert _status(_request(server, _head(*[f"X-{i}: 1" for i in range(10_000)]))) == 431
    assert _status(_request(server, _head(*[f"X-{i}: 1" for i in range(99)]))) == 431  # 101 with Host, Connection


def test_six_50_mb_headers_are_not_read_into_memory(server: DockyardServer) -> None:
    before = _rss_kib(server.process.pid)
    huge = b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nX-Huge: " + b"a" * (50 * 1000 * 1000) + b"\r\n\r\n"
    answers: list[bytes] = []
    threads = [threading.Thread(target=lambda: answers.append(_request(server, huge))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND * 3)
    assert [_status(a) for a in answers] == [431] * 6
    assert _rss_kib(server.process.pid) - before < 64 * 1024  # it grew by 386 MB before
    assert _status(_request(server, _head())) == 200


def test_a_connection_that_sends_nothing_is_closed(server: DockyardServer) -> None:
    sock = _connect(server)
    assert _read_all(sock) == b""  # closed by the server, silently, within the bound
    sock.close()


def test_headers_never_finished_get_408(server: DockyardServer) -> None:
    sock = _connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n")  # and nothing more
    assert _status(_read_all(sock)) == 408
    sock.close()


def test_a_trickled_head_gets_408(server: DockyardServer) -> None:
    # One byte every 0.2 s never completes within the header deadline, however steady.
    sock = _connect(server)
    head = _head(*[f"X-{i}: {'c' * 20}" for i in range(20)])
    sent = 0
    try:
        for byte in head:
            sock.sendall(bytes([byte]))
            sent += 1
            time.sleep(0.2)  # the client's pace, not a wait for the server
            sock.setblocking(False)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
                sock.settimeout(BOUND)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert sent < len(head)
    assert _status(_read_all(sock)) == 408
    sock.close()


def test_an_idle_keep_alive_connection_is_closed(server: DockyardServer) -> None:
    sock = _connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n")
    answer = _read_all(sock)  # the answer, then the close once the connection idles
    assert _status(answer) == 200 and answer.endswith(b'{"status":"ok"}')
    sock.close()


def test_a_stalled_body_closes_the_connection(server: DockyardServer) -> None:
    sock = _connect(server)
    digest = "sha256:" + "0" * 64
    sock.sendall((f"POST /v2/admin/stall/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: registry\r\n"
                  f"Authorization: {BASIC}\r\nContent-Length: 100000\r\n\r\n").encode() + b"x" * 1000)
    assert _read_all(sock) == b""  # closed, not held open waiting for the other 99,000 bytes
    sock.close()
    assert _status(_request(server, _head())) == 200
    assert "Traceback" not in server.log()
