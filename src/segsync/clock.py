"""Injected time: every component that reads the time or waits takes a `Clock`.

`SystemClock` is the real one. `VirtualClock` is for tests, emulators and benchmarks: its
`sleep` advances the time instantly, so a run that waits out an hour of rate limits finishes
in milliseconds and reports the emulated time it would have taken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    """The time source and the way to wait; both injected, never `time.time()` directly."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale, for rate windows and durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (a virtual clock advances instead)."""
        ...


class SystemClock:
    """The wall clock and `asyncio.sleep`."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock whose `sleep` advances time instead of waiting.

    Concurrent sleepers are woken in order of their deadlines; `elapsed` is the emulated time
    since creation.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._offset = 0.0

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    @property
    def elapsed(self) -> float:
        """Emulated seconds since the clock was created."""
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (never backward)."""
        self._offset += max(0.0, seconds)

    def set(self, when: dt.datetime) -> None:
        """Jump to `when` (only forward)."""
        delta = (when - self.now()).total_seconds()
        self.advance(delta)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now().isoformat()})"
