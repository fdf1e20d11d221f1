"""Request bodies into storage at full speed, in constant memory.

Measured here (python-http-limits.md): hashing and writing on the event loop gives 250–400
MB/s; coalescing the body into ~1 MiB batches for one long-lived thread that hashes and
writes gives 610–690 MB/s. `pump` does the latter with a bounded queue (at most `depth`
batches in flight), so memory stays constant however large the blob.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable

from starlette.responses import FileResponse

from dockyard.domain.errors import SizeInvalid

BATCH = 1 << 20


class _Pipe:
    """Feeds batches to `sink` on a dedicated thread; the loop waits only when `depth` are queued."""

    def __init__(self, sink: Callable[[bytes], None], depth: int = 4) -> None:
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._slots = asyncio.Semaphore(depth)
        self._done = self._loop.create_future()
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="dockyard-upload", daemon=True).start()

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                if self._error is None:
                    try:
                        self._sink(item)
                    except BaseException as exc:  # reported to the request by close()
                        self._error = exc
                self._loop.call_soon_threadsafe(self._slots.release)
        finally:
            self._loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    async def put(self, data: bytes) -> None:
        await self._slots.acquire()
        if self._error is not None:
            self._slots.release()
            raise self._error
        self._queue.put(data)

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.shield(self._done)
        if self._error is not None:
            raise self._error


async def pump(body: AsyncIterator[bytes], sink: Callable[[bytes], None], limit: int | None = None) -> int:
    """Send every byte of `body` to `sink` (called on one worker thread, in order); return the count.

    With `limit`, more bytes than `limit` is a `SizeInvalid` (the client lied about its length).
    """
    pipe = _Pipe(sink)
    total = 0
    buffer = bytearray()
    try:
        async for chunk in body:
            if not chunk:
                continue
            total += len(chunk)
            if limit is not None and total > limit:
                raise SizeInvalid("request body is longer than its declared length")
            buffer += chunk
            if len(buffer) >= BATCH:
                await pipe.put(bytes(buffer))
                buffer.clear()
        if buffer:
            await pipe.put(bytes(buffer))
    finally:
        await pipe.close()
    return total


class BlobFileResponse(FileResponse):
    """1 MiB reads instead of Starlette's 64 KiB: 5× the pull throughput on uvicorn (measured)."""

    chunk_size = BATCH
