"""Sequences of address swaps, renames and opt-ins on three in-memory platforms.

Four people, each with a name of their own, on every platform; two opted in. Between runs,
admins swap two people's addresses on one or several platforms (through a temporary
address, as the platforms refuse a second record with one address), rename a record to an
address nobody holds (the person's new address), or a person opts in at their own address.
After every run:

- no two canonical contacts share an address, and the canonical addresses are the people's;
- every platform holds one record per person, at their address, with their own name;
- nobody is subscribed (canonical view or platform record) at an address whose holder never
  opted in: no opt-in is attributed to another address's holder;
- no run reports an error, and the run after writes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.model import normalize_email
from segsync.state import open_store
from segsync.sync import Engine, SyncPolicy
from segsync.sync.snapshot import CanonicalView

pytestmark = pytest.mark.slow

PLATFORMS = ("mc", "hs", "bv")
PEOPLE = 4


@dataclass
class Model:
    """Who holds which address, and which addresses' holders opted in."""

    addresses: list[str] = field(
        default_factory=lambda: [f"p{i}@x.test" for i in range(PEOPLE)])
    opted: set[str] = field(default_factory=lambda: {"p0@x.test", "p2@x.test"})
    renames: int = 0


swaps = st.tuples(st.just("swap"), st.sets(st.sampled_from(PLATFORMS), min_size=1),
                  st.integers(0, PEOPLE - 1), st.integers(0, PEOPLE - 1))
renames = st.tuples(st.just("rename"), st.sampled_from(PLATFORMS),
                    st.integers(0, PEOPLE - 1), st.just(0))
opt_ins = st.tuples(st.just("opt_in"), st.sampled_from(PLATFORMS),
                    st.integers(0, PEOPLE - 1), st.just(0))
# a run follows each batch: swaps may be batched (on several platforms, between several
# pairs), a rename or an opt-in is alone
batches = st.one_of(st.lists(swaps, min_size=1, max_size=3), renames.map(lambda a: [a]),
                    opt_ins.map(lambda a: [a]))


class Swapped:
    """The platforms, the store, and segsync syncing them."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.platforms = {n: MemoryPlatform(n, self.clock, page_size=3) for n in PLATFORMS}
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.model = Model()
        for i, address in enumerate(self.model.addresses):
            consent = "subscribed" if address in self.model.opted else "non_subscribed"
            self.platforms["mc"].add(address, {"name": f"person {i}"}, consent=consent)

    def sync(self) -> tuple[int, list[str]]:
        self.clock.advance(60)
        engine = Engine({n: MemoryConnector(p) for n, p in self.platforms.items()}, self.store,
                        config="swaps", policy=SyncPolicy(platforms=PLATFORMS),
                        clock=self.clock)
        report = asyncio.run(engine.sync())
        return report.writes, [f"{e.platform} {e.code}: {e.message}" for e in report.errors]

    def record(self, platform: str, person: int) -> str:
        found = self.platforms[platform].find(self.model.addresses[person])
        assert found is not None, (platform, person)
        return str(found.id)

    def act(self, action: tuple[str, object, int, int]) -> None:
        kind, where, i, j = action
        model = self.model
        if kind == "swap":
            assert isinstance(where, set)
            if i == j:
                return
            for p in sorted(where):
                a, b = self.record(p, i), self.record(p, j)
                self.platforms[p].rename(a, "swap-tmp@x.test")
                self.platforms[p].rename(b, model.addresses[i])
                self.platforms[p].rename(a, model.addresses[j])
        elif kind == "rename":
            assert isinstance(where, str)
            model.renames += 1
            new = f"p{i}.r{model.renames}@x.test"
            self.platforms[where].rename(self.record(where, i), new)
            if model.addresses[i] in model.opted:
                model.opted.discard(model.addresses[i])
                model.opted.add(new)
            model.addresses[i] = new
        else:
            assert isinstance(where, str)
            self.platforms[where].set_consent(self.record(where, i), "subscribed")
            model.opted.add(model.addresses[i])

    def check(self) -> None:
        model = self.model
        views = [CanonicalView.decode(view)
                 for _, view, _ in self.store.scoped("swaps").canonical_contacts()]
        emails = [view.email for view in views]
        assert len(emails) == len(set(emails)), f"two people share an address: {emails}"
        assert sorted(emails) == sorted(model.addresses)
        for view in views:
            if view.consent == "subscribed":
                assert view.email in model.opted, f"{view.email}: another's opt-in"
        for name, platform in self.platforms.items():
            held = {normalize_email(r.email): r for r in platform.live()}
            assert sorted(held) == sorted(model.addresses), name
            for i, address in enumerate(model.addresses):
                record = held[address]
                assert record.fields.get("name") == f"person {i}", (name, address, record)
                if record.consent == "subscribed":
                    assert address in model.opted, (name, address, "another's opt-in")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(batches, min_size=1, max_size=5))
def test_swaps_and_renames_never_cross_link_people(
    steps: list[list[tuple[str, object, int, int]]],
) -> None:
    world = Swapped()
    writes, errors = world.sync()
    assert errors == []
    world.check()
    for batch in steps:
        for action in batch:
            world.act(action)
        writes, errors = world.sync()
        assert errors == [], (batch, errors)
        world.check()
        writes, errors = world.sync()
        assert (writes, errors) == (0, []), (batch, "the run after wrote", writes, errors)
    world.store.close()
