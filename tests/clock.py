"""A clock a test moves, for the code that takes `clock: Callable[[], float]` (seconds since the
epoch) instead of reading the time: token expiry, upload-session ages. Nothing sleeps."""

from __future__ import annotations

import time


class Clock:
    """Starts at the real time (or `now`); `clock()` reads it, `advance(seconds)` moves it."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
