"""A run killed after a platform created an owned segment, before the state recorded it.

The window between `publish_native` / `ensure_static` answering and `StateStore.set_owned`
is where a SIGKILL leaves a segment on the platform that the state does not know. The run
after the restart must publish the segment once: adopt what the killed run made (it carries
segsync's owned name), never create a second one, never fail forever on "already exists".
The kill is simulated deterministically: `set_owned` raises a `BaseException` (as a dying
process stops) when it records the platform's answer, after the intent recorded before
creating; the next run opens the store afresh.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fault_world import PLATFORMS, make_connector, make_emulator, seed_platforms

from segsync.clock import VirtualClock
from segsync.rules import parse
from segsync.state import SQLiteStateStore
from segsync.state.base import OwnedObject
from segsync.sync import Engine, RunReport, SegmentTarget
from segsync.sync.segments import CREATING
from segsync.testing.data import DEFAULT_SCHEMA

SEGMENT = "french"


class Killed(BaseException):
    """The process died here."""


class DyingStore(SQLiteStateStore):
    """A store whose process dies when it records a platform's answer to a creation.

    The intent recorded before creating (ref `CREATING`) goes through; the ref the platform
    answered never does: the kill falls exactly between the platform acting and the state
    knowing.
    """

    def set_owned(self, config: str, obj: OwnedObject, *, at: str) -> None:
        if obj.ref != CREATING:
            raise Killed
        super().set_owned(config, obj, at=at)


@pytest.mark.parametrize("platform", list(PLATFORMS))
@pytest.mark.slow
def test_segment_published_by_a_killed_run_is_published_once(tmp_path: Path, platform: str) -> None:
    """The restarted run is clean and the platform holds the segment once."""
    clock = VirtualClock()
    emulator = make_emulator(platform, clock, seed=4)
    db = tmp_path / "state.db"
    segment = SegmentTarget(SEGMENT, parse('country = "FR"'))

    async def run(store: SQLiteStateStore) -> RunReport:
        connector = make_connector(platform, emulator, clock)
        engine = Engine(
            {platform: connector}, store, schema=DEFAULT_SCHEMA, clock=clock, segments=[segment]
        )
        try:
            return await engine.sync()
        finally:
            await connector.aclose()
            store.close()

    async def main() -> RunReport:
        seeder = make_connector(platform, emulator, clock)
        await seed_platforms({platform: seeder}, 4, 12)
        await seeder.aclose()
        with pytest.raises(Killed):
            await run(DyingStore(db, clock=clock))
        clock.advance(60)
        return await run(SQLiteStateStore(db, clock=clock))

    report = asyncio.run(main())
    names = [n for n in PLATFORMS[platform].object_names(emulator) if SEGMENT in n]

    assert report.status == "ok", [e.message for e in report.errors]
    assert len(names) == 1, names
