"""`read_in_thread`, the hot paths' thread hop: it runs the call off the event loop, with the
request's context (the actor events record), and hands back its value or its exception."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from dockyard.api.read_threads import read_in_thread

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def _where(suffix: str, *, twice: bool = False) -> tuple[str, str]:
    return threading.current_thread().name, who.get() + suffix * (2 if twice else 1)


def _fails() -> None:
    raise LookupError("no such row")


def test_the_call_runs_on_a_read_thread_with_the_callers_context() -> None:
    async def scenario() -> tuple[str, str]:
        who.set("alice")
        return await read_in_thread(_where, "!", twice=True)

    thread, value = asyncio.run(scenario())
    assert thread.startswith("dockyard-read") and value == "alice!!"
    assert who.get() == "nobody"  # the thread's context was a copy: nothing leaks back


def test_an_exception_reaches_the_caller() -> None:
    with pytest.raises(LookupError, match="no such row"):
        asyncio.run(read_in_thread(_fails))
