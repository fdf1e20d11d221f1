"""The HTTP protocol reads up to `BODY_BUFFER` of a request body ahead of the app, not 64 KiB.

uvicorn pauses reading once 64 KiB of body wait for the app, which with uvloop's 256 KiB reads
is after every read: each 256 KiB then costs a pause, a resume and a wake-up of the app. The
protocol runs here on a fake transport, with no socket."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from dockyard.api.plain_http import PlainHttpProtocol

BODY_BUFFER = 1 << 20  # api/http_limits.py


async def _app(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


class _Transport:
    def __init__(self) -> None:
        self.reading, self.out, self.closing = True, b"", False

    def write(self, data: bytes) -> None:
        self.out += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5000) if name in ("sockname", "peername") else default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: Any) -> None:
        pass


async def _read_ahead() -> None:
    config = Config(_app, log_level="warning")
    config.load()
    protocol = PlainHttpProtocol(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    read = 256 << 10
    total = 2 * BODY_BUFFER
    protocol.data_received(b"PATCH /x HTTP/1.1\r\nHost: r\r\nContent-Length: %d\r\n\r\n" % total)

    # Reads go on while less than BODY_BUFFER waits for the app (uvicorn stopped after 64 KiB)...
    protocol.data_received(b"b" * read)
    assert transport.reading
    for _ in range(BODY_BUFFER // read - 1):
        protocol.data_received(b"b" * read)
    # ...and stop once BODY_BUFFER waits: memory stays bounded.
    assert not transport.reading

    # The app takes what waits; reading resumes, and the whole body arrives.
    await asyncio.sleep(0)
    assert transport.reading
    for _ in range(BODY_BUFFER // read):
        protocol.data_received(b"b" * read)
    for _ in range(20):
        await asyncio.sleep(0)
    assert transport.out.startswith(b"HTTP/1.1 202 ")
    protocol.connection_lost(None)


def test_a_body_is_read_ahead_up_to_the_buffer() -> None:
    asyncio.run(_read_ahead())


class _Recorder:
    """An app that records the body messages it receives, then answers 202."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if message["type"] == "http.request":
            await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})


def _protocol(app: Any) -> tuple[PlainHttpProtocol, _Transport]:
    config = Config(app, log_level="warning")
    config.load()
    protocol = PlainHttpProtocol(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def _chunks_as_read() -> None:
    app = _Recorder()
    protocol, transport = _protocol(app)
    reads = [bytes([i]) * (256 << 10) for i in range(4)]
    protocol.data_received(b"PATCH /x HTTP/1.1\r\nHost: r\r\nContent-Length: %d\r\n\r\n" % (4 << 18))
    for read in reads:
        protocol.data_received(read)
    for _ in range(10):
        await asyncio.sleep(0)
    # One message per read, as the parser gave it (uvicorn joined them into one, copied twice).
    assert [m["body"] for m in app.messages] == reads
    assert [m["more_body"] for m in app.messages] == [True, True, True, False]
    assert transport.out.startswith(b"HTTP/1.1 202 ")
    protocol.connection_lost(None)


async def _disconnect_mid_body() -> None:
    app = _Recorder()
    protocol, transport = _protocol(app)
    protocol.data_received(b"PATCH /x HTTP/1.1\r\nHost: r\r\nContent-Length: 1000\r\n\r\n" + b"a" * 400)
    for _ in range(5):
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert [m["type"] for m in app.messages] == ["http.request", "http.disconnect"]
    assert app.messages[0]["body"] == b"a" * 400 and app.messages[0]["more_body"]


def test_the_app_gets_the_chunks_as_they_were_read() -> None:
    asyncio.run(_chunks_as_read())


def test_a_client_gone_mid_body_is_a_disconnect() -> None:
    asyncio.run(_disconnect_mid_body())
