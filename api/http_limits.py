"""Limits on what a client may make the server hold before the app sees a request.

uvicorn's httptools protocol reads request headers without bound (httptools buffers a header
until it is complete: a 50 MB header was read before authentication, 10,000 headers were
accepted), keeps a connection that never finishes its headers open forever, and lets a request
body stall forever. `LimitedHttpToolsProtocol` (under `plain_http.PlainHttpProtocol`, which `serve` runs) adds:

- **431** past `max_header_bytes` of request line and headers, or `max_header_count` headers.
  The exact count is kept in `on_url`/`on_header`; because httptools buffers a header before
  calling `on_header`, raw bytes received while a request's headers are incomplete are counted
  too, so memory stays bounded by the limit plus one read. The 431 is followed by a half-close,
  and what the client still sends is read and dropped for a moment, so it sees the answer.
- **408** (or a silent close, when nothing was sent) when a request's headers are not complete
  `header_timeout_seconds` after the connection opened or the request's first byte arrived.
- A request body that stalls `body_stall_timeout_seconds` (no byte while the app waits for one;
  time the app spends not reading does not count) closes the connection; the app sees a
  disconnect, as when the client goes away.
- Idle keep-alive connections close after uvicorn's `timeout_keep_alive`, set from
  `keepalive_timeout_seconds`.
- A request body is read at most `BODY_BUFFER` (1 MiB) ahead of the app, its chunks handed over
  as the parser made them (`_receive`): no copy on the event loop (uvicorn made two).

Hot path cost: an addition and two comparisons per header, a flag test per read, and a timer
only for a head or body still arriving when a read ends (none for a GET that comes in one read).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from functools import cache, partial
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dockyard.api.settings import Settings

log = logging.getLogger("dockyard.http")

LINGER_SECONDS = 2.0  # after a 431, how long to read and drop what the client still sends
BODY_BUFFER = 1 << 20  # request body bytes read ahead of the app before reading pauses (uvicorn: 64 KiB)


class _Body:
    """A request's body chunks read but not yet given to the app."""

    __slots__ = ("chunks", "size")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def append(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)

    def pop(self) -> bytes:
        if not self.chunks:
            return b""
        chunk = self.chunks.popleft()
        self.size -= len(chunk)
        return chunk


class _Limits:
    def __init__(self, settings: Settings) -> None:
        self.max_bytes = settings.max_header_bytes
        self.max_count = settings.max_header_count
        self.header_timeout = settings.header_timeout_seconds
        self.body_timeout = settings.body_stall_timeout_seconds


@cache
def _limits() -> _Limits:
    """Read once per worker process, from the `DOCKYARD_*` variables `dockyard serve` exports."""
    return _Limits(Settings())


class _TooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose headers are too large."""


def _response(status: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits()
        self._max_bytes, self._max_count = self._limits.max_bytes, self._limits.max_count
        self._in_headers = True  # the next bytes belong to a request's start line and headers
        self._started = False  # a byte of the current request's head arrived
        self._header_bytes = 0  # exact: URL, names and values of the current request
        self._raw = 0  # bytes read while the current request's headers were incomplete
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_at = 0.0
        self._rejected = False
        self._head_ended = False  # a request's headers completed during the current read
        self._body = _Body()  # the body chunks of the request being parsed, not yet taken by its app

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self._limits.header_timeout, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def data_received(self, data: bytes) -> None:
        if self._rejected:  # lingering after a 431: drop it
            return
        self._unset_keepalive_if_required()
        counting, self._head_ended = self._in_headers, False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _TooLarge):
                self._reject_too_large()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self._in_headers:
            if counting and not self._head_ended:  # the whole read was header bytes
                self._raw += len(data)
                if self._raw > self._limits.max_bytes:
                    self._reject_too_large()
                    return
            if self._started and self._header_timer is None:  # a head split over reads: time it
                self._header_timer = self.loop.call_later(self._limits.header_timeout, self._header_timeout)
        elif self._body_timer is None and self.cycle is not None and self.cycle.more_body:
            self._body_at = self.loop.time()
            self._body_timer = self.loop.call_later(self._limits.body_timeout, self._body_check)

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The header timer starts only if this head does not arrive whole in one read (below).
        self._in_headers, self._started, self._header_bytes = True, True, 0

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        if self._header_bytes > self._max_bytes:
            raise _TooLarge
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_bytes > self._max_bytes or len(self.headers) >= self._max_count:
            raise _TooLarge
        # uvicorn's own on_header, inlined: this runs for every header of every request.
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_headers, self._started, self._raw, self._head_ended = False, False, 0, True
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # a new request (not an upgrade)
            # Its task has not run yet: the app will be given this `receive`.
            self._body = _Body()
            cycle.receive = partial(self._receive, cycle, self._body)  # type: ignore[method-assign,assignment]

    def on_body(self, body: bytes) -> None:
        self._body_at = self.loop.time()
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        self._body.append(body)
        if self._body.size >= BODY_BUFFER:
            self.flow.pause_reading()
        cycle.message_event.set()

    async def _receive(self, cycle: Any, body: _Body) -> dict[str, Any]:
        """uvicorn's `RequestResponseCycle.receive`, handing over the parser's chunks as they are.

        uvicorn appends each chunk to a bytearray and copies that into `bytes` for the app: two
        copies of every body byte on the event loop (for a 512 MiB push, ~0.1 s of its CPU), and
        it stops reading once 64 KiB wait, i.e. after every 256 KiB read, so each read cost a
        pause, a resume and a wake-up of the app. Here the chunks wait in a queue, up to
        `BODY_BUFFER` bytes (then reading pauses: memory stays bounded), and go to the app one
        per message, without waiting while any is queued.
        """
        if cycle.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        if not body.chunks and not cycle.disconnected and not cycle.response_complete:
            self.flow.resume_reading()
            await cycle.message_event.wait()
            cycle.message_event.clear()
        if cycle.disconnected or cycle.response_complete:
            return {"type": "http.disconnect"}
        chunk = body.pop()
        if not body.chunks:
            cycle.message_event.clear()  # what set it is taken; a later chunk, end or disconnect sets it again
        return {"type": "http.request", "body": chunk, "more_body": cycle.more_body or bool(body.chunks)}

    def on_message_complete(self) -> None:
        self._in_headers = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # -- limits -------------------------------------------------------------------------------

    def _reject_too_large(self) -> None:
        limits = self._limits
        log.info("request headers too large from %s: closed with 431", self.client)
        self._rejected = True
        self._cancel_timers()
        body = (f"Request header fields too large: at most {limits.max_bytes} bytes "
                f"and {limits.max_count} fields.").encode()
        self.transport.write(_response(b"431 Request Header Fields Too Large", body))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._in_headers:
            return
        if self._started:  # part of a request arrived, not all of its headers
            log.info("request headers from %s not complete in %gs: closed with 408", self.client,
                     self._limits.header_timeout)
            self.transport.write(_response(b"408 Request Timeout", b"Request headers not received in time."))
        self.transport.close()

    def _body_check(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body or cycle.response_complete:
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the app is not reading: not the client's stall
            self._body_at = now
        idle = now - self._body_at
        if idle >= self._limits.body_timeout:
            log.info("request body from %s stalled %gs: connection closed", self.client, idle)
            self.transport.close()
            return
        self._body_timer = self.loop.call_later(self._limits.body_timeout - idle, self._body_check)
