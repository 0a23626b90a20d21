"""The relinking rule at its edges, on three in-memory platforms.

A record linked by id whose new address is another known person's is relinked to them; one
whose new address is also claimed by a record of another person in the same read is no
rename of either (the address's person is someone new); a plain rename stays a rename.
"""

from __future__ import annotations

import asyncio

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.state import open_store
from segsync.sync import Engine, RunReport, SyncPolicy
from segsync.sync.snapshot import CanonicalView

PLATFORMS = ("mc", "hs", "bv")
ANN, BOB = "ann@x.test", "bob@x.test"


class World:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.platforms = {n: MemoryPlatform(n, self.clock) for n in PLATFORMS}
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.platforms["mc"].add(ANN, {"name": "Ann"}, consent="subscribed")
        self.platforms["mc"].add(BOB, {"name": "Bob"})
        # the user's own people, there before segsync
        self.platforms["hs"].add("old.customer@x.test", {"name": "Olga"}, ["vip"])
        self.platforms["bv"].add("lead@x.test", {"name": "Lea"}, consent="unsubscribed")

    def sync(self) -> RunReport:
        self.clock.advance(60)
        engine = Engine({n: MemoryConnector(p) for n, p in self.platforms.items()}, self.store,
                        config="rules", policy=SyncPolicy(platforms=PLATFORMS),
                        clock=self.clock)
        return asyncio.run(engine.sync())

    def rename(self, platform: str, old: str, new: str) -> None:
        record = self.platforms[platform].find(old)
        assert record is not None
        self.platforms[platform].rename(record.id, new)

    def views(self) -> dict[str, CanonicalView]:
        return {v.email: v for v in (CanonicalView.decode(view) for _, view, _ in
                                     self.store.scoped("rules").canonical_contacts())}

    def held(self, email: str) -> dict[str, tuple[str | None, str]]:
        out = {}
        for name, platform in self.platforms.items():
            record = platform.find(email)
            if record is not None:
                out[name] = (record.fields.get("name"), record.consent)
        return out


@pytest.fixture
def world() -> World:
    world = World()
    assert world.sync().errors == []
    return world


def settled(world: World, report: RunReport) -> None:
    assert report.errors == [], report.errors
    emails = [v.email for v in world.views().values()]
    assert len(emails) == len(set(emails))
    after = world.sync()
    assert (after.writes, after.errors) == (0, [])


def test_a_chain_relinks_the_record_to_the_address_holder(world: World) -> None:
    """On mc, Bob's record moves on to a free address and Ann's record takes bob@: the record
    at bob@ is Bob's now (with Bob's name and consent), the one at the free address is its
    own new person (nothing of Bob's carried), and Ann is given a record at ann@ again."""
    world.rename("mc", BOB, "robert@x.test")
    world.rename("mc", ANN, BOB)

    report = world.sync()

    settled(world, report)
    assert world.held(BOB) == dict.fromkeys(PLATFORMS, ("Bob", "non_subscribed"))
    assert world.held(ANN) == dict.fromkeys(PLATFORMS, ("Ann", "subscribed"))
    assert world.views()["robert@x.test"].consent == "non_subscribed"
    assert {name for name, _ in world.held("robert@x.test").values()} == {None}
    notes = [d for d in report.diagnostics if d["step"] == "identity"]
    assert {d["platform"] for d in notes} == {"mc"}
    assert sorted(d["message"].split(" now holds ")[1].split(":")[0] for d in notes) == [
        "an address another person's record moved to or took over",
        "the address of another person",
    ]
    assert not any("@" in d["message"] for d in notes)  # record ids, never addresses


def test_an_address_two_people_moved_to_in_one_read_is_no_rename_of_either(
    world: World,
) -> None:
    """Ann's hs record and Bob's bv record both moved to one free address: neither is
    renamed (they keep their address and consent), the address is someone new's."""
    world.rename("hs", ANN, "shared@x.test")
    world.rename("bv", BOB, "shared@x.test")

    report = world.sync()

    settled(world, report)
    views = world.views()
    assert views[ANN].consent == "subscribed"
    assert views[BOB].consent == "non_subscribed"
    assert views["shared@x.test"].consent == "non_subscribed"
    assert set(world.held(ANN)) == set(world.held(BOB)) == set(PLATFORMS)
    assert world.held("shared@x.test")["mc"] == (None, "non_subscribed")


def test_one_rename_read_on_two_platforms_stays_a_rename(world: World) -> None:
    """Ann renamed to one free address on hs and bv: one rename, nobody new, no note."""
    world.rename("hs", ANN, "ann.new@x.test")
    world.rename("bv", ANN, "ann.new@x.test")

    report = world.sync()

    settled(world, report)
    assert sum(p.created for p in report.platforms.values()) == 0
    assert [d for d in report.diagnostics if d["step"] == "identity"] == []
    assert world.held("ann.new@x.test") == dict.fromkeys(PLATFORMS, ("Ann", "subscribed"))
    assert ANN not in world.views()
