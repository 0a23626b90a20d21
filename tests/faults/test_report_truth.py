"""The run report tells the truth: its time covers the whole run (a sync's pull included)
and its API calls count reads as well as writes (an unchanged re-sync is not free)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fault_world import PLATFORMS
from test_breaker import World

from segsync.sync import RunReport


def test_the_duration_covers_the_pull() -> None:
    """Ten seconds spent reading (the clock advanced during a read) are in `duration_s`,
    and `started_at` is before the read began."""

    async def go() -> tuple[RunReport, dt.datetime]:
        world = World("brevo", die_after_writes=10**6)
        await world.seed()
        connector = world.connectors["hubspot"]
        read = connector.read

        async def slow_read(cursor: str | None = None) -> Any:
            async for page in read(cursor):
                world.clock.advance(10.0)  # a long page
                yield page

        connector.read = slow_read  # type: ignore[method-assign]
        before = world.clock.now()
        return await world.engine.sync(), before

    report, before = asyncio.run(go())
    assert report.duration_s >= 10.0, report.duration_s
    assert dt.datetime.fromisoformat(report.started_at) <= before
    assert report.finished_at is not None
    finished = dt.datetime.fromisoformat(report.finished_at)
    started = dt.datetime.fromisoformat(report.started_at)
    assert (finished - started).total_seconds() >= 10.0


def test_an_unchanged_resync_reports_its_read_calls() -> None:
    """The second run writes nothing, yet it read every platform: its calls are counted,
    as reads; api_calls is reads plus writes."""

    async def go() -> tuple[RunReport, RunReport]:
        world = World("brevo", die_after_writes=10**6)
        await world.seed()
        first = await world.engine.sync()
        world.clock.advance(60)
        return first, await world.engine.sync()

    first, again = asyncio.run(go())
    assert first.errors == []
    assert again.writes == 0, again.platforms
    for name in PLATFORMS:
        counts = again.platforms[name]
        assert counts.read_calls > 0, (name, counts)
        assert counts.api_calls == counts.read_calls + counts.write_calls
        assert first.platforms[name].api_calls > first.platforms[name].write_calls > 0
