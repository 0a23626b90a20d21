"""Owned objects are created behind a recorded intent, and adopted after a kill.

See also tests/faults/test_killed_publication.py (the three platforms' emulators).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.rules import parse
from segsync.state import SQLiteStateStore
from segsync.state.base import OwnedObject
from segsync.sync import Engine, RunReport, SegmentTarget
from segsync.sync.segments import CREATING
from segsync.testing.data import DEFAULT_SCHEMA

SEGMENT = SegmentTarget("french", parse('country = "FR"'))


class Killed(BaseException):
    """The process died here."""


class FindingConnector(MemoryConnector):
    """A memory connector that can look its static segments up by name."""

    async def find_owned(self, kind: str, name: str) -> str | None:
        return next((ref for ref, s in self.platform.statics.items() if s["name"] == name), None)


class RefusingOnce(FindingConnector):
    """The platform refuses the first creation (nothing is created)."""

    refused = False

    async def ensure_static(self, name: str, ref: str | None) -> str:
        if not RefusingOnce.refused:
            RefusingOnce.refused = True
            raise RuntimeError("503 from the platform")
        return await super().ensure_static(name, ref)


class DyingStore(SQLiteStateStore):
    """Dies when it records a platform's answer to a creation (the intent goes through)."""

    def set_owned(self, config: str, obj: OwnedObject, *, at: str) -> None:
        if obj.ref != CREATING:
            raise Killed
        super().set_owned(config, obj, at=at)


def _run(
    connector: MemoryConnector, store: SQLiteStateStore, clock: VirtualClock, *segments: Any
) -> RunReport:
    engine = Engine(
        {"mc": connector},
        store,
        config="t",
        schema=DEFAULT_SCHEMA,
        clock=clock,
        segments=list(segments),
    )
    try:
        return asyncio.run(engine.sync())
    finally:
        store.close()


def _world() -> tuple[VirtualClock, MemoryPlatform]:
    clock = VirtualClock()
    platform = MemoryPlatform("mc", clock)
    for i in range(4):
        platform.add(f"p{i}@x.com", {"country": "FR" if i % 2 else "DE"})
    return clock, platform


def test_an_intent_is_recorded_before_creating(tmp_path: Path) -> None:
    clock, platform = _world()
    db = tmp_path / "s.db"
    RefusingOnce.refused = False
    failed = _run(RefusingOnce(platform), SQLiteStateStore(db, clock=clock), clock, SEGMENT)
    assert {e.code for e in failed.errors} == {"segment"}
    assert "503 from the platform" in failed.errors[0].message
    intents = SQLiteStateStore(db, clock=clock).owned("t", "mc")
    assert [(o.kind, o.name, o.ref) for o in intents] == [("static", "french", CREATING)]

    clock.advance(60)
    report = _run(RefusingOnce(platform), SQLiteStateStore(db, clock=clock), clock, SEGMENT)

    assert report.errors == []
    (static,) = platform.statics.values()  # nothing to adopt: created once
    assert {o.ref for o in SQLiteStateStore(db, clock=clock).owned("t", "mc")} == set(
        platform.statics
    )
    assert len(static["members"]) == 2


def test_a_killed_creation_is_adopted_not_duplicated(tmp_path: Path) -> None:
    clock, platform = _world()
    db = tmp_path / "s.db"
    with pytest.raises(Killed):
        _run(FindingConnector(platform), DyingStore(db, clock=clock), clock, SEGMENT)
    assert len(platform.statics) == 1  # the platform created it; the state never knew

    clock.advance(60)
    report = _run(FindingConnector(platform), SQLiteStateStore(db, clock=clock), clock, SEGMENT)

    assert report.errors == []
    assert len(platform.statics) == 1
    (ref,) = platform.statics
    owned = SQLiteStateStore(db, clock=clock).owned("t", "mc")
    assert [(o.name, o.ref) for o in owned] == [("french", ref)]
    assert len(platform.statics[ref]["members"]) == 2


def test_a_killed_creation_of_a_dropped_segment_is_deleted(tmp_path: Path) -> None:
    clock, platform = _world()
    db = tmp_path / "s.db"
    with pytest.raises(Killed):
        _run(FindingConnector(platform), DyingStore(db, clock=clock), clock, SEGMENT)
    clock.advance(60)
    report = _run(FindingConnector(platform), SQLiteStateStore(db, clock=clock), clock)

    assert report.errors == []
    assert platform.statics == {}
    assert SQLiteStateStore(db, clock=clock).owned("t", "mc") == []
