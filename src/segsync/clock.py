"""Injected time: every component that reads the time or waits takes a `Clock`.

`SystemClock` is the real one. `VirtualClock` is for tests, emulators and benchmarks: its
`sleep` does not wait, so a run that waits out an hour of rate limits finishes in
milliseconds and reports the emulated time it would have taken.

The virtual model (a discrete-event simulation, like trio's autojump clock):

- every `sleep(s)` registers a deadline `now + s` and parks the task;
- time stands still while any task can run; when every task of the event loop is parked
  (on a virtual sleep, a lock, a semaphore, a queue...), the clock jumps to the earliest
  deadline and wakes the sleepers due then (in deadline order, ties in call order);
- so concurrent sleepers overlap: ten tasks that each sleep 1 s take 1 s of emulated time,
  not 10, and a run bounded by a concurrency cap and rate windows reports the time the same
  run would take against the real platform, give or take the request latency (zero unless an
  emulator on the same clock adds some).

Code that is not parked but blocked on real I/O (a loopback socket, a thread) looks idle to
the clock, which may then jump early; use `SystemClock` for runs over real sockets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import math
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


_SPINS_WITHOUT_READY_QUEUE = 32
"""Event-loop turns granted to runnable tasks before a jump, on loops that do not expose
their ready queue (CPython's do; the clock then jumps exactly when nothing can run)."""


class VirtualClock:
    """A clock whose `sleep` parks the task until virtual time reaches its deadline.

    See the module docstring for the model. `elapsed` is the emulated time since creation;
    `advance` and `set` move time by hand (and wake the sleepers they pass).
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._offset = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.jumps = 0

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    @property
    def elapsed(self) -> float:
        """Emulated seconds since the clock was created."""
        return self._offset

    @property
    def sleeping(self) -> int:
        """Tasks parked on this clock right now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (never backward), waking the sleepers it passes."""
        self._offset += max(0.0, seconds)
        self._wake_due()

    def set(self, when: dt.datetime) -> None:
        """Jump to `when` (only forward)."""
        delta = (when - self.now()).total_seconds()
        self.advance(delta)

    async def sleep(self, seconds: float) -> None:
        """Park until virtual time reaches now + `seconds`; `sleep(0)` only yields."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # a new event loop (a new asyncio.run): sleepers of the old one can never wake
            self._loop = loop
            self._sleepers.clear()
            self._driver = None
        future: asyncio.Future[None] = loop.create_future()
        # a deadline strictly after now, even when `seconds` is below the float resolution
        deadline = max(self._offset + seconds, math.nextafter(self._offset, math.inf))
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive(loop), name="segsync-virtual-clock")
        await future

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._offset:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def _drive(self, loop: asyncio.AbstractEventLoop) -> None:
        """Jump to the next deadline whenever every other task is parked."""
        ready = getattr(loop, "_ready", None)
        while True:
            while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            if ready is not None:
                await asyncio.sleep(0)
                if len(ready) > 0:
                    continue  # something can still run at the current time
            else:
                for _ in range(_SPINS_WITHOUT_READY_QUEUE):
                    await asyncio.sleep(0)
            if not self._sleepers:
                return
            deadline = self._sleepers[0][0]
            if deadline > self._offset:
                self._offset = deadline
                self.jumps += 1
            self._wake_due()

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now().isoformat()})"
