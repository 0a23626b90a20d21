"""A record deleted on a platform and made again there (a re-import, a new sign-up) in the
same interval between runs: the new record is newly linked, never read as the old one's
consent changing. Whole runs of the engine on in-memory platforms that hold other people."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.model import ConsentStatus
from segsync.state import StateStore
from segsync.sync import Engine, SyncPolicy, reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

PLATFORMS = ("mc", "hs", "bv")
DORA = "dora@y.org"


class World:
    def __init__(self, store: StateStore) -> None:
        self.clock = VirtualClock()
        self.platforms = {n: MemoryPlatform(n, self.clock) for n in PLATFORMS}
        self.engine = Engine(
            {n: MemoryConnector(p) for n, p in self.platforms.items()}, store,
            config="test", policy=SyncPolicy(platforms=PLATFORMS), clock=self.clock,
        )

    def sync(self) -> None:
        report = asyncio.run(self.engine.sync())
        assert report.errors == [], report.errors

    def consent(self, platform: str, email: str = DORA) -> str:
        record = self.platforms[platform].find(email)
        assert record is not None, (platform, email)
        return record.consent


@pytest.fixture
def world(store_factory: Callable[[], StateStore]) -> World:
    w = World(store_factory())
    mc, hs, bv = (w.platforms[p] for p in PLATFORMS)
    mc.add("old.subscriber@x.com", {"city": "Lyon"}, ["vip"], "subscribed")  # people's own
    hs.add("gone@x.com", consent="unsubscribed")
    bv.add("fan@x.com", consent="subscribed")
    mc.add(DORA, {}, [], "unsubscribed")  # Dora opted out; the first run spreads it
    w.sync()
    w.sync()  # and the next reads its own writes back: the bases hold the platforms' word
    assert {p: w.consent(p) for p in PLATFORMS} == dict.fromkeys(PLATFORMS, "unsubscribed")
    return w


@pytest.mark.parametrize("order", ["brevo first", "hubspot first"])
def test_a_record_made_again_does_not_lift_an_opt_out(world: World, order: str) -> None:
    """Brevo's user deletes Dora and imports her again (not subscribed); HubSpot's user does
    the same, with her opt-out. The opt-out stays the view and reaches Brevo's new record."""
    hs, bv = world.platforms["hs"], world.platforms["bv"]

    def brevo() -> None:
        bv.delete(bv.find(DORA).id)  # type: ignore[union-attr]
        bv.add(DORA, {}, [], "non_subscribed")

    def hubspot() -> None:
        hs.delete(hs.find(DORA).id)  # type: ignore[union-attr]
        hs.add(DORA.upper(), {}, [], "unsubscribed")

    for act in ((brevo, hubspot) if order == "brevo first" else (hubspot, brevo)):
        act()
    world.sync()

    assert {p: world.consent(p) for p in PLATFORMS} == dict.fromkeys(PLATFORMS, "unsubscribed")
    assert world.consent("mc", "old.subscriber@x.com") == "subscribed"
    assert world.consent("bv", "fan@x.com") == "subscribed"
    writes = sum(len(p.writes) for p in world.platforms.values())
    world.sync()
    assert sum(len(p.writes) for p in world.platforms.values()) == writes  # converged


def _record(pid: str, consent: str) -> PlatformRecord:
    return PlatformRecord(platform_id=pid, email=DORA, email_key=DORA, fields={},
                          consent=ConsentStatus(consent), consent_at="2026-02-01T00:00:00+00:00",
                          updated_at="2026-02-01T00:00:00+00:00",
                          consent_evidence=f"status={consent}")


def test_a_new_record_in_place_of_the_base_is_no_downgrade_of_its_consent() -> None:
    """The base is Brevo's record bv-1 (opted out); this run reads bv-2 (not subscribed, with
    the platform's evidence) in its place. bv-2 is not bv-1 lifting the opt-out: the view
    keeps the opt-out and bv-2 gets it."""
    view = CanonicalView(email=DORA, fields={}, tags=(), consent=ConsentStatus.UNSUBSCRIBED,
                         consent_source="mc", consent_at="2026-01-01T00:00:00+00:00")
    bases = {p: _record(f"{p}-1", "unsubscribed") for p in PLATFORMS}
    out = reconcile(DORA, view, bases, {"bv": _record("bv-2", "non_subscribed")},
                    SyncPolicy(platforms=PLATFORMS))

    assert out.view.consent == ConsentStatus.UNSUBSCRIBED
    assert out.writes["bv"]["consent"] == ConsentStatus.UNSUBSCRIBED
    assert out.writes["bv"]["platform_id"] == "bv-2"
