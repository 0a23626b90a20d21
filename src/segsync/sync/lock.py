"""The run lock of a sync configuration, held by one engine at a time; and what it tells
of the runs recorded as `running` (`RunLock.settle`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from segsync.clock import Clock
from segsync.state.base import RunLocked
from segsync.state.roles import RunRecords

__all__ = ["RunLock"]


class RunLock:
    """Holds the run lock of `state`'s configuration, re-entrant within its holder.

    Taken by someone else, it raises `RunLocked` at once, or with `wait` tries again every
    `poll` seconds on `clock` until it gets it or `timeout` seconds have passed (None: forever).
    """

    def __init__(
        self, state: RunRecords, clock: Clock, *, wait: bool, poll: float, timeout: float | None
    ) -> None:
        self.state = state
        self.clock = clock
        self.wait = wait
        self.poll = poll
        self.timeout = timeout
        self._holding = False

    def is_held(self) -> bool:
        """Whether a run (this holder included) holds the lock now."""
        if self._holding:
            return True
        try:
            with self.state.lock():
                return False
        except RunLocked:
            return True

    def settle(self, runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """`runs` (newest first) as they really are: a `running` run whose process died
        (killed, the machine lost) is shown `abandoned`. The lock tells: it is released when
        its holder's process ends, so only the newest `running` run, and only while the lock
        is held, may still run."""
        settled = [dict(run) for run in runs]
        running = [run for run in settled if run.get("status") == "running"]
        if not running:
            return settled
        alive = running[0] if self.is_held() else None
        for run in running:
            if run is not alive:
                run["status"] = "abandoned"
        return settled

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold the lock for the block (a block inside another of the same holder: as is)."""
        if self._holding:
            yield
            return
        started = self.clock.monotonic()
        while True:
            try:
                with self.state.lock():
                    self._holding = True
                    try:
                        yield
                    finally:
                        self._holding = False
                return
            except RunLocked:
                waited = self.clock.monotonic() - started
                if self._holding or not self.wait or (
                    self.timeout is not None and waited >= self.timeout
                ):
                    raise
                await self.clock.sleep(self.poll)
