"""`read_in_thread`: the thread hop of the `/v2/` and `/auth/token` hot paths (a blocking read of
the read model off the event loop), for less than half of what Starlette's `run_in_threadpool` costs.

`run_in_threadpool` goes through anyio (a capacity limiter, a worker handshake, its own
cancellation shield): ~60 µs of CPU per hop on this machine, against ~20 µs for asyncio's
`run_in_executor` on a plain thread pool (benchmarks/RESULTS.md, "Read path, session 4"). A
manifest GET makes one hop, a first pull of a repository four. The context is copied into the
thread (the actor a request binds), as anyio does. A cancelled caller stops waiting; the read
itself runs to its end and is dropped — these are reads, nothing is left half done.

Writes keep `run_in_threadpool`: its cancellation waits for the thread, which a command needs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Enough for the concurrent reads of one worker (each holds a database connection for a short
# read; PostgreSQL's pool has 4 + 8 per process): more threads would only queue at the pool.
READ_THREADS = 16

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="dockyard-read")
    return _executor


async def read_in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` on a read thread, awaited; its exception is raised here."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)
