"""The engine and engagement: per-platform values in the state, aggregates in segments, the
refresh when due and its cost in the report; nothing engagement is ever written."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.connector import EngagementPage, ReadPage
from segsync.engagement import ENGAGEMENT_FIELDS, qualified_fields
from segsync.model import Schema
from segsync.rules import load_rule
from segsync.state import StateStore
from segsync.sync import Engine, SegmentTarget, SyncPolicy

PLATFORMS = ("mc", "hs", "bv")
SCHEMA = Schema(fields={**ENGAGEMENT_FIELDS, **qualified_fields(PLATFORMS)})
ACTIF = load_rule("open_rate > 0.5 and last_interaction within 7 days", SCHEMA)


class EngagedConnector(MemoryConnector):
    """A memory platform that reports engagement: `read_values` with its records (moving
    nothing), `refresh_values` only through `read_engagement` (one call per page)."""

    def __init__(self, platform: MemoryPlatform, world: World) -> None:
        super().__init__(platform)
        self.world = world

    async def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        async for page in super().read(cursor):
            yield ReadPage([c.model_copy(update={"engagement": dict(
                self.world.read_values[self.platform.name].get(c.email, {}))})
                for c in page.contacts], page.cursor)

    async def read_engagement(self, cursor: str | None) -> AsyncIterator[EngagementPage]:
        self._count("GET /engagement")
        self.world.refresh_cursors[self.platform.name].append(cursor)
        values = {}
        for email, found in self.world.refresh_values[self.platform.name].items():
            record = self.platform.find(email)
            if record is not None:
                values[record.id] = found
        yield EngagementPage(values, f"after-{len(values)}")


@dataclasses.dataclass
class World:
    store: StateStore
    clock: VirtualClock = dataclasses.field(default_factory=VirtualClock)
    read_values: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(
        default_factory=lambda: {p: {} for p in PLATFORMS})
    refresh_values: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(
        default_factory=lambda: {p: {} for p in PLATFORMS})
    refresh_cursors: dict[str, list[str | None]] = dataclasses.field(
        default_factory=lambda: {p: [] for p in PLATFORMS})

    def __post_init__(self) -> None:
        self.platforms = {n: MemoryPlatform(n, self.clock) for n in PLATFORMS}

    def sync(self, **options: Any) -> Any:
        engine = Engine(
            {n: EngagedConnector(p, self) for n, p in self.platforms.items()}, self.store,
            config="test", policy=SyncPolicy(platforms=PLATFORMS), schema=SCHEMA,
            segments=[SegmentTarget("actif", ACTIF, {})], compilers={}, clock=self.clock,
            **options,
        )
        return asyncio.run(engine.sync())

    def members(self, platform: str) -> set[str]:
        plat = self.platforms[platform]
        (static,) = [s for s in plat.statics.values() if s["name"] == "actif"]
        return {plat.records[i].email for i in static["members"]}

    def ago(self, days: float) -> str:
        return (self.clock.now() - dt.timedelta(days=days)).isoformat()


@pytest.fixture
def world(store_factory: Callable[[], StateStore]) -> World:
    return World(store_factory())


def _people(world: World) -> None:
    """Users' existing people, each emailed from one platform (or two)."""
    for name, email in (("hs", "stale@hs.example"), ("hs", "reader@hs.example"),
                        ("mc", "fan@mc.example"), ("bv", "clicker@bv.example"),
                        ("mc", "both@x.example"), ("hs", "both@x.example")):
        world.platforms[name].add(email, {"first_name": "P"})
    world.read_values["hs"] = {
        "reader@hs.example": {"emails_delivered": 10, "opens": 8, "last_open": world.ago(2)},
        "both@x.example": {"emails_delivered": 4, "opens": 1, "last_open": world.ago(20)},
        "stale@hs.example": {"emails_delivered": 10, "opens": 9, "last_open": world.ago(30)},
    }
    world.read_values["mc"] = {
        "fan@mc.example": {"open_rate": 0.8, "last_open": world.ago(1)},
        "both@x.example": {"open_rate": 0.9, "last_open": world.ago(3)},
    }
    world.read_values["bv"] = {
        "clicker@bv.example": {"emails_delivered": 3, "opens": 2, "last_click": world.ago(5)},
    }


ACTIVE = {"reader@hs.example", "fan@mc.example", "clicker@bv.example", "both@x.example"}


def test_actif_holds_the_same_people_on_every_platform_whoever_emails_them(
    world: World,
) -> None:
    _people(world)

    report = world.sync()

    assert report.errors == []
    for platform in PLATFORMS:
        assert world.members(platform) == ACTIVE, platform
    # engagement is never written, as a field or otherwise
    for plat in world.platforms.values():
        for write in plat.writes:
            assert not set(write.get("fields", {})) & set(ENGAGEMENT_FIELDS), write


def test_the_refresh_runs_when_due_and_its_calls_are_reported_per_platform(
    world: World,
) -> None:
    _people(world)
    first = world.sync()
    assert {p: first.platforms[p].engagement_calls for p in PLATFORMS} == {
        "mc": 1, "hs": 1, "bv": 1}

    # the stale reader opens again: the record does not move, so only the refresh sees it
    opened = {"emails_delivered": 10, "opens": 9, "last_open": world.ago(0.5)}
    world.read_values["hs"]["stale@hs.example"] = opened
    world.refresh_values["hs"] = {"stale@hs.example": opened}
    world.clock.advance(3600)
    not_due = world.sync()
    assert {p: not_due.platforms[p].engagement_calls for p in PLATFORMS} == {
        "mc": 0, "hs": 0, "bv": 0}
    assert "stale@hs.example" not in world.members("mc")

    world.clock.advance(24 * 3600)
    due = world.sync()
    assert due.platforms["hs"].engagement_calls == 1
    assert world.refresh_cursors["hs"] == [None, "after-0"]  # resumes where it stopped
    for platform in PLATFORMS:
        assert "stale@hs.example" in world.members(platform), platform
    assert world.sync().writes == 0


def test_the_refresh_period_is_the_config_s(world: World) -> None:
    _people(world)
    world.sync(engagement_refresh=dt.timedelta(minutes=30))
    world.clock.advance(31 * 60)
    assert world.sync(engagement_refresh=dt.timedelta(minutes=30)).platforms["mc"]\
        .engagement_calls == 1


def test_a_failing_refresh_is_an_error_of_its_platform_and_the_run_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _people(world)

    async def broken(self: EngagedConnector, cursor: str | None) -> AsyncIterator[Any]:
        raise RuntimeError("stats endpoint down")
        yield  # pragma: no cover

    monkeypatch.setattr(EngagedConnector, "read_engagement", broken)
    report = world.sync()

    assert {e.code for e in report.errors} == {"engagement_failed"}
    assert world.members("hs") == ACTIVE
    monkeypatch.undo()
    world.clock.advance(60)
    assert world.sync().platforms["hs"].engagement_calls == 1  # not recorded as done




def test_the_first_refresh_reaches_records_first_read_in_the_same_run(world: World) -> None:
    """On a new state every record is staged, not yet in the id map: the refresh of that run
    must still land (it is marked done for a day)."""
    world.platforms["mc"].add("fan@mc.example", {"first_name": "F"})
    world.refresh_values["mc"] = {"fan@mc.example": {"open_rate": 0.7,
                                                     "last_open": world.ago(1)}}

    world.sync()

    for platform in PLATFORMS:
        assert world.members(platform) == {"fan@mc.example"}, platform


def test_a_record_re_read_for_another_reason_keeps_what_only_the_refresh_reads(
    world: World,
) -> None:
    """A platform whose reads carry no engagement (it comes from the refresh only): when
    someone edits the person there, the re-read record keeps its refreshed figures, so no
    segment loses them and nothing is written back and forth."""
    world.platforms["bv"].add("quiet@bv.example", {"first_name": "Q"})
    world.refresh_values["bv"] = {"quiet@bv.example": {
        "emails_delivered": 4, "opens": 3, "last_open": world.ago(1)}}
    world.sync()
    assert world.members("bv") == {"quiet@bv.example"}

    record = world.platforms["bv"].find("quiet@bv.example")
    world.platforms["bv"].edit(record.id, first_name="Quentin")
    world.clock.advance(60)
    edited = world.sync()

    assert edited.platforms["bv"].engagement_calls == 0  # not due: the figures were kept
    for platform in PLATFORMS:
        assert world.members(platform) == {"quiet@bv.example"}, platform
    assert edited.platforms["mc"].members_removed == 0
    assert world.sync().writes == 0
