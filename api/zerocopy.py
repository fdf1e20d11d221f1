"""ASGI's zero-copy send (`http.response.zerocopysend`) on uvicorn's httptools protocol.

uvicorn offers no way to send a file but through Python: the app reads each chunk into a
buffer and the transport copies it into the socket. This protocol advertises the ASGI
extension `http.response.zerocopysend` on plain-TCP connections and serves it with
`os.sendfile` from the app's open file to the connection's socket: the bytes go from the page
cache to the socket in the kernel, one copy, no Python per chunk.

How, with public APIs only (uvloop allows no `add_writer` on a transport's own descriptor):
the message is sent on a duplicate of the socket's descriptor (`os.dup`), which is also what
waits for room (`loop.add_writer` on the duplicate) when a non-blocking `sendfile` would
block; the duplicate keeps the socket open while it is used, so a descriptor number reused
after a close is never written to. Only when the headers have left the transport's buffer
(it is empty: they are written at once into an empty socket); otherwise, and for HEAD, for a
chunked answer or a `count` past the declared Content-Length, the file is read and sent as
ordinary body messages. After the bytes, the answer completes through uvicorn's own `send`
(an empty last body message): keep-alive, pipelining and the access log work as for any
answer. A client that goes away ends the transfer (the connection is closed, the app sees
no error); a file shorter than `count` raises, and uvicorn closes the connection.

TLS connections do not offer the extension: `sendfile` would bypass the encryption.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from dockyard.api.http_limits import LimitedHttpToolsProtocol

EXTENSION = "http.response.zerocopysend"
_READ_CHUNK = 1 << 20  # the fallback's reads
_SENDFILE_MAX = 1 << 30  # one call's count (Linux sends at most ~2 GiB per call anyway)

Send = Callable[[Any], Awaitable[None]]


def _plain_tcp(transport: asyncio.BaseTransport) -> bool:
    """Whether bytes written to the transport's socket reach the client as they are (no TLS)."""
    if transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("ssl_object") is not None:
        return False
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.fileno() >= 0


class ZeroCopyHttpToolsProtocol(LimitedHttpToolsProtocol):
    """`LimitedHttpToolsProtocol` that serves `http.response.zerocopysend` with `os.sendfile`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._zerocopy = False
        self._room: asyncio.Future[None] | None = None  # a sendfile waiting for room in the socket

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._zerocopy = hasattr(os, "sendfile") and _plain_tcp(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)  # the sender sees the connection closing and stops
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._zerocopy:
            self.scope["extensions"] = {EXTENSION: {}}

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if self._zerocopy and cycle is not None and cycle.scope is self.scope:
            # The request's task has not run yet: the app will be given this `send`.
            cycle.send = partial(self._send, cycle, cycle.send)  # type: ignore[method-assign]

    async def _send(self, cycle: Any, send: Send, message: Any) -> None:
        if message["type"] != EXTENSION:
            await send(message)
            return
        if cycle.disconnected or self.transport.is_closing():
            return
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"Unexpected ASGI message '{EXTENSION}' before the answer started or after it ended.")
        fd = message["file"].fileno()
        offset = message.get("offset")
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        count = message.get("count")
        if count is None:
            count = max(os.fstat(fd).st_size - offset, 0)
        more_body = message.get("more_body", False)
        if (cycle.scope["method"] == "HEAD" or cycle.chunked_encoding or count > cycle.expected_content_length
                or self.transport.get_write_buffer_size()):
            await self._send_read(send, fd, offset, count, more_body)
            return
        if not await self._sendfile(cycle, fd, offset, count):
            return
        cycle.expected_content_length -= count
        await send({"type": "http.response.body", "body": b"", "more_body": more_body})

    async def _send_read(self, send: Send, fd: int, offset: int, count: int, more_body: bool) -> None:
        """The file's bytes as ordinary body messages (where sendfile cannot serve the answer)."""
        end = offset + count
        while True:
            chunk = os.pread(fd, min(_READ_CHUNK, end - offset), offset) if offset < end else b""
            if offset < end and not chunk:
                raise RuntimeError("The file is shorter than the count to send.")
            offset += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": more_body or offset < end})
            if offset >= end:
                return

    async def _sendfile(self, cycle: Any, fd: int, offset: int, count: int) -> bool:
        """Send `count` bytes of `fd` from `offset` on the connection; False if it went away first."""
        out = os.dup(self.transport.get_extra_info("socket").fileno())
        try:
            while count > 0:
                if cycle.disconnected or self.transport.is_closing():
                    return False
                try:
                    sent = os.sendfile(out, fd, offset, min(count, _SENDFILE_MAX))
                except BlockingIOError:
                    await self._wait_for_room(out)
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    cycle.disconnected = True  # as connection_lost will say: the app's sends are dropped
                    self.transport.close()
                    return False
                if sent == 0:
                    raise RuntimeError("The file is shorter than the count to send.")
                offset += sent
                count -= sent
            return True
        finally:
            os.close(out)

    async def _wait_for_room(self, out: int) -> None:
        room = self.loop.create_future()
        self._room = room
        self.loop.add_writer(out, _resolve, room)
        try:
            await room
        finally:
            self.loop.remove_writer(out)  # before `out` is closed: its poll must not outlive it
            self._room = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
