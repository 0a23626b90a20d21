"""The injected clocks: SystemClock, and VirtualClock's discrete-event model."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from segsync.clock import SystemClock, VirtualClock


def test_sleep_advances_virtual_time_without_waiting() -> None:
    """A single sleeper moves virtual time by exactly what it slept."""
    clock = VirtualClock()

    async def run() -> None:
        await clock.sleep(3600)

    asyncio.run(asyncio.wait_for(run(), timeout=5))

    assert clock.elapsed == 3600
    assert clock.now() == dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC)


def test_concurrent_sleepers_overlap() -> None:
    """Ten tasks sleeping 1 s each at once take 1 s of emulated time, not 10."""
    clock = VirtualClock()

    async def run() -> None:
        await asyncio.gather(*(clock.sleep(1.0) for _ in range(10)))

    asyncio.run(run())

    assert clock.elapsed == 1.0


def test_sleepers_wake_in_deadline_order() -> None:
    """Sleepers started together wake at their own deadlines, in order."""
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def run() -> None:
        await asyncio.gather(sleeper("c", 3), sleeper("a", 1), sleeper("b", 2))

    asyncio.run(run())

    assert woke == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert clock.elapsed == 3.0


def test_time_stands_still_while_tasks_can_run() -> None:
    """A task doing work (yielding without sleeping) sees no time pass, even with sleepers."""
    clock = VirtualClock()
    seen: list[float] = []

    async def busy() -> None:
        for _ in range(50):
            seen.append(clock.monotonic())
            await asyncio.sleep(0)

    async def run() -> None:
        await asyncio.gather(clock.sleep(5), busy())

    asyncio.run(run())

    assert set(seen) == {0.0}
    assert clock.elapsed == 5.0


def test_bounded_concurrency_gives_the_critical_path() -> None:
    """12 jobs of 1 s through a semaphore of 4 take 3 s of emulated time."""
    clock = VirtualClock()
    gate = asyncio.Semaphore(4)

    async def job() -> None:
        async with gate:
            await clock.sleep(1.0)

    async def run() -> None:
        await asyncio.gather(*(job() for _ in range(12)))

    asyncio.run(run())

    assert clock.elapsed == pytest.approx(3.0)


def test_sequential_sleeps_add_up() -> None:
    """One task sleeping 0.5 s four times takes 2 s."""
    clock = VirtualClock()

    async def run() -> None:
        for _ in range(4):
            await clock.sleep(0.5)

    asyncio.run(run())

    assert clock.elapsed == 2.0


def test_cancelled_sleeper_does_not_move_time() -> None:
    """A sleeper cancelled before its deadline does not drag the clock to it."""
    clock = VirtualClock()

    async def run() -> None:
        long = asyncio.create_task(clock.sleep(100))
        await clock.sleep(1)
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long
        await clock.sleep(1)

    asyncio.run(run())

    assert clock.elapsed == 2.0


def test_clock_survives_several_event_loops() -> None:
    """The same clock works across separate asyncio.run calls and keeps its time."""
    clock = VirtualClock()

    asyncio.run(clock.sleep(2))
    asyncio.run(clock.sleep(3))

    assert clock.elapsed == 5.0


def test_advance_and_set_move_forward_only_and_wake_sleepers() -> None:
    """advance/set never go backward, and a manual advance wakes the sleepers it passes."""
    clock = VirtualClock(start=dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    clock.advance(-5)
    clock.set(dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    assert clock.elapsed == 0.0

    async def run() -> float:
        sleeper = asyncio.create_task(clock.sleep(10))
        await asyncio.sleep(0)
        clock.advance(10)
        await sleeper
        return clock.elapsed

    assert asyncio.run(run()) == 10.0
    clock.set(dt.datetime(2026, 5, 2, tzinfo=dt.UTC))
    assert clock.elapsed == 86400.0


def test_sleep_zero_only_yields() -> None:
    """sleep(0) and negative sleeps do not move time."""
    clock = VirtualClock()

    async def run() -> None:
        await clock.sleep(0)
        await clock.sleep(-1)

    asyncio.run(run())

    assert clock.elapsed == 0.0


def test_system_clock_is_utc_and_sleeps_for_real() -> None:
    """SystemClock reports aware UTC times and its monotonic time moves across a sleep."""
    clock = SystemClock()
    before = clock.monotonic()

    asyncio.run(clock.sleep(0.01))

    assert clock.now().tzinfo is dt.UTC
    assert clock.monotonic() - before >= 0.009


def test_a_tiny_sleep_still_moves_time_forward() -> None:
    """A sleep below the float resolution of the current time still advances the clock."""
    clock = VirtualClock()
    clock.advance(1e9)

    asyncio.run(clock.sleep(1e-12))

    assert clock.elapsed > 1e9
