"""The ledger as proof, and `pending` surviving a platform that cannot hold it, over whole
runs of the engine against in-memory platforms that already hold people (both stores)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.state import LedgerEntry, StateStore
from segsync.sync import Engine, SyncPolicy
from segsync.sync.snapshot import PlatformRecord

PLATFORMS = ("mc", "hs", "bv")


class World:
    """Three platforms on one clock: "hs" cannot hold `pending` (it reads back unknown, with
    no evidence, like HubSpot's "not specified") and sends a default legal basis."""

    def __init__(self, store: StateStore) -> None:
        self.clock = VirtualClock()
        self.platforms = {n: MemoryPlatform(n, self.clock) for n in PLATFORMS}
        hs = self.platforms["hs"]
        hs.cannot_hold = {"pending": "non_subscribed"}
        hs.no_evidence = frozenset({"non_subscribed"})
        hs.default_basis = "LEGITIMATE_INTEREST_CLIENT"
        self.store = store

    def engine(self, **policy: Any) -> Engine:
        return Engine(
            {n: MemoryConnector(p) for n, p in self.platforms.items()}, self.store,
            config="test", policy=SyncPolicy(platforms=PLATFORMS, **policy), clock=self.clock,
        )

    def sync(self, **policy: Any) -> Any:
        return asyncio.run(self.engine(**policy).sync())

    def ledger(self, email: str | None = None) -> list[LedgerEntry]:
        return self.store.ledger("test", email=email)

    def made(self, email: str) -> dict[str, LedgerEntry]:
        """The consent changes segsync made for `email`, by platform (the last of each)."""
        return {e.platform: e for e in self.ledger(email) if e.source == "sync"}


@pytest.fixture
def world(store_factory: Callable[[], StateStore]) -> World:
    w = World(store_factory())
    # a lived-in account: people the user made, in every status, before segsync
    mc, hs, bv = (w.platforms[p] for p in PLATFORMS)
    mc.add("old.subscriber@x.com", {"city": "Lyon"}, ["vip"], "subscribed")
    mc.add("never@x.com", {}, ["customers"], "non_subscribed")
    hs.add("gone@x.com", consent="unsubscribed")
    bv.add("gone@x.com", consent="non_subscribed")
    return w


def test_every_ledger_row_names_the_person_and_the_copied_opt_in_its_source(
    world: World,
) -> None:
    """The opt-in copied to the other platforms has rows of its own source and evidence;
    every row names the person's email (not a key of the row, the old `key` bug)."""
    world.sync()

    rows = world.ledger()
    assert rows
    assert {r.email for r in rows} <= {"old.subscriber@x.com", "never@x.com", "gone@x.com"}
    made = world.made("old.subscriber@x.com")
    assert {p: (e.sent, e.source_platform, e.evidence) for p, e in made.items()} == {
        "hs": ("subscribed", "mc", "consent=subscribed"),
        "bv": ("subscribed", "mc", "consent=subscribed"),
    }
    assert made["bv"].previous is None  # created there
    assert all(e.run_id for e in made.values())


def test_the_default_legal_basis_is_recorded_as_such(world: World) -> None:
    """HubSpot-like platform sent its configured basis: the row says which, and that it
    came from the default (not from the evidence)."""
    world.sync()

    hs = world.made("old.subscriber@x.com")["hs"]
    bv = world.made("old.subscriber@x.com")["bv"]
    assert (hs.legal_basis, hs.basis_from_default) == ("LEGITIMATE_INTEREST_CLIENT", True)
    assert (bv.legal_basis, bv.basis_from_default) == (None, False)


def test_the_ledger_records_what_was_sent_not_what_was_asked(world: World) -> None:
    """The person opts in on "hs"; while the run applies, they unsubscribe on "bv", which
    then takes the `subscribed` asked as `pending` (its re-opt-in path): the ledger says
    `subscribed` was asked and `pending` sent, the base holds `pending`, and the next run
    leaves it for the person to confirm."""
    hs, bv = world.platforms["hs"], world.platforms["bv"]
    bv.reoptin_via_pending = True
    person = hs.add("late@x.com")
    world.sync()
    hs.set_consent(person.id, "subscribed")
    engine = world.engine(reconfirm=frozenset({"bv"}))
    plan = asyncio.run(engine.plan())
    there = bv.find("late@x.com")
    assert there is not None
    connector = engine.connectors["bv"]
    write = connector.write

    async def unsubscribe_then_write(changes: Any) -> Any:
        # during the run, right before the write (after its re-check, which would defer it)
        bv.set_consent(there.id, "unsubscribed")
        return await write(changes)

    connector.write = unsubscribe_then_write  # type: ignore[method-assign]

    asyncio.run(engine.apply(plan))

    row = world.made("late@x.com")["bv"]
    assert (row.new, row.sent, row.source_platform) == ("subscribed", "pending", "hs")
    assert there.consent == "pending"
    base = next(PlatformRecord.loads(r.payload) for r in world.store.base_rows("test", "bv")
                if r.platform_id == there.id)
    assert base.consent == "pending"
    assert world.sync(reconfirm=frozenset({"bv"})).writes == 0
    assert there.consent == "pending"


def test_pending_survives_a_platform_that_cannot_hold_it(world: World) -> None:
    """A pending person stays pending over runs though "hs" reads it back as unknown; a
    `consent = pending` view stays; no write and no ledger row after the first run."""
    world.platforms["mc"].add("ben@x.com", consent="pending")
    world.sync()
    after_first = len(world.ledger())
    hs = world.platforms["hs"].find("ben@x.com")
    assert hs is not None
    assert hs.consent == "non_subscribed"  # "not specified"
    world.platforms["hs"].edit(hs.id, city="Paris")  # read again, still unknown

    second = world.sync()
    third = world.sync()

    views = {p["email"]: p["c"] for _cid, p, _d in world.store.canonical_contacts("test")}
    assert views["ben@x.com"] == "pending"
    assert world.platforms["mc"].find("ben@x.com").consent == "pending"  # type: ignore[union-attr]
    assert second.platforms["hs"].consent_changes == third.writes == 0
    assert len(world.ledger()) == after_first


def test_consent_history_by_email_follows_a_rename(world: World) -> None:
    """The rows of a person are found under their current email, rows made before a rename
    included; `since` keeps the later ones."""
    world.sync()
    first = world.ledger("old.subscriber@x.com")
    mc = world.platforms["mc"]
    record = mc.find("old.subscriber@x.com")
    assert record is not None
    mc.rename(record.id, "new.address@x.com")
    world.sync()
    mc.set_consent(record.id, "unsubscribed")
    world.sync()

    rows = world.ledger("new.address@x.com")
    assert rows[: len(first)] == first
    assert rows[-1].new == "unsubscribed"
    later = world.store.ledger("test", email="new.address@x.com", since=rows[-1].at)
    assert later
    assert all(r.at >= rows[-1].at for r in later)
    assert len(later) < len(rows)
