"""A same-platform duplicate stands until the platform no longer holds it.

On lived-in accounts (`swap_world`), JOSE opted in on HubSpot and is synced everywhere. A
HubSpot user then makes a second contact at the decomposed (NFD) spelling of his address,
which normalises to his. The run reading it reports it (`duplicate`); the runs after it do
not read it again (incremental reads), yet it stands: each of them, and `plan`, reports it
again with its fix and exits 1, until the user merges it away or readdresses it. The state
keeps it in a table of its own (migrated onto existing SQLite and PostgreSQL states).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator

import pytest
from swap_world import ANNAS, PLATFORMS, SUBS, SwapWorld

from segsync.cli.sync import exit_code
from segsync.state import StateStore
from segsync.state import sql as state_sql
from segsync.state.base import MIGRATIONS, StandingProblem
from segsync.sync import Engine, SyncPolicy
from segsync.sync.plan import Plan
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

JOSE = "jos\u00e9@shop.test"
JOSE_NFD = unicodedata.normalize("NFD", JOSE)


@pytest.fixture
def world() -> Iterator[SwapWorld]:
    w = SwapWorld()
    w.hs.seed_contact({"email": JOSE, "firstname": "Jose"})
    w.hs.set_subscription(JOSE, 101, subscribed=True, legal_basis="CONSENT_WITH_NOTICE",
                          explanation="web form")
    yield w
    w.close()


def _hubspot(world: SwapWorld, method: str, path: str, **kwargs: object) -> dict[str, object]:
    response = world._call(world.hs, {"Authorization": f"Bearer {world.hs.api_key}"}, method,
                           path, **kwargs)
    return response.json() if response.content else {}


def _plan(world: SwapWorld) -> Plan:
    world.clock.advance(600)
    engine = Engine(world.connectors, world.store, config="identity",
                    policy=SyncPolicy(platforms=PLATFORMS), schema=DEFAULT_SCHEMA,
                    segments=(SUBS, ANNAS), clock=world.clock)
    return world.loop.run_until_complete(engine.plan())


def _duplicates(errors: object) -> list[tuple[str, str | None, str]]:
    return [(e.platform, e.platform_id, e.message) for e in errors  # type: ignore[attr-defined]
            if e.code == "duplicate"]


def _with_duplicate(world: SwapWorld) -> tuple[str, str, RunReport]:
    """JOSE synced, then a HubSpot user adds his NFD twin; the run reading it. Returns the
    ids of his record and of the twin, and that run's report."""
    world.sync()
    world.sync()
    own = world.hs.contact_by_email(JOSE)
    assert own is not None
    twin = _hubspot(world, "POST", "/crm/v3/objects/contacts",
                    json={"properties": {"email": JOSE_NFD, "firstname": "JoseDup"}})
    report = world.sync()
    return str(own["hs_object_id"]), str(twin["id"]), report


def test_a_duplicate_is_reported_by_every_run_and_plan_while_it_stands(
    world: SwapWorld,
) -> None:
    own, twin, first = _with_duplicate(world)
    assert [(p, pid) for p, pid, _ in _duplicates(first.errors)] == [("hubspot", twin)]
    assert f"merge or delete record {twin} on hubspot" in _duplicates(first.errors)[0][2]

    for _ in range(2):  # the next runs read nothing of it, yet it stands
        report = world.sync()
        found = _duplicates(report.errors)
        assert [(p, pid) for p, pid, _ in found] == [("hubspot", twin)], report.errors
        assert f"as record {own}" in found[0][2]
        assert f"merge or delete record {twin} on hubspot" in found[0][2]
        assert "standing since" in found[0][2]
        assert exit_code(report) == 1
        assert report.platforms["hubspot"].errors >= 1

    plan = _plan(world)
    assert [(p, pid) for p, pid, _ in _duplicates(plan.errors)] == [("hubspot", twin)]
    text = plan.render()
    assert "No changes" not in text
    assert "match the canonical view" not in text
    assert f"merge or delete record {twin} on hubspot" in text
    # the twin is never synced: nothing of it reached the other platforms
    member = world.mc.get_member(JOSE)
    assert member is not None
    assert member.merge_fields.get("FNAME") == "Jose"
    assert world.store.scoped("identity").standing() == [
        StandingProblem("hubspot", twin, "duplicate", own, JOSE,
                        world.store.scoped("identity").standing()[0].since)]


def test_a_duplicate_merged_away_is_no_longer_reported(world: SwapWorld) -> None:
    _, twin, _ = _with_duplicate(world)
    assert [pid for _, pid, _ in _duplicates(world.sync().errors)] == [twin]  # it stands
    # the user merges the twin into JOSE's record: HubSpot no longer holds it under its id
    # (the emulator has no merge endpoint; archiving leaves what a merge leaves of it)
    _hubspot(world, "DELETE", f"/crm/v3/objects/contacts/{twin}")

    report = world.sync()

    assert _duplicates(report.errors) == []
    assert world.store.scoped("identity").standing() == []
    assert exit_code(report) == 0, report.errors
    plan = _plan(world)
    assert _duplicates(plan.errors) == []
    assert "No changes" in plan.render(), plan.render()


def test_a_duplicate_given_another_address_is_no_longer_reported(world: SwapWorld) -> None:
    _, twin, _ = _with_duplicate(world)
    assert [pid for _, pid, _ in _duplicates(world.sync().errors)] == [twin]  # it stands
    _hubspot(world, "PATCH", f"/crm/v3/objects/contacts/{twin}",
             json={"properties": {"email": "jose.work@shop.test"}})

    report = world.sync()

    assert _duplicates(report.errors) == []
    assert world.store.scoped("identity").standing() == []
    # the record is now someone's own record, synced as such
    assert world.mc.get_member("jose.work@shop.test") is not None
    assert _duplicates(world.sync().errors) == []


def test_the_standing_table_is_added_to_an_existing_state(
    store_factory: Callable[[], StateStore], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A state made before the table (every earlier migration) gains it when reopened; a
    problem keeps its first time, and goes when cleared."""
    monkeypatch.setattr(state_sql, "MIGRATIONS", MIGRATIONS[:-1])
    old = store_factory()
    assert old.schema_version() == len(MIGRATIONS) - 1
    old.close()
    monkeypatch.setattr(state_sql, "MIGRATIONS", MIGRATIONS)

    store = store_factory()
    assert store.schema_version() == len(MIGRATIONS)
    first = StandingProblem("hubspot", "127", "duplicate", "110", "jose@x.test", "t1")
    store.set_standing("c", [first, StandingProblem("brevo", "9", "erased_person", "ab")])
    store.set_standing("c", [StandingProblem("hubspot", "127", "duplicate", "111",
                                             "jose@x.test", "t2")])
    held = {p.platform_id: p for p in store.standing("c")}
    assert held["127"] == StandingProblem("hubspot", "127", "duplicate", "111", "jose@x.test",
                                          "t1")
    assert held["9"].cid is None
    assert held["9"].since  # stamped by the store
    assert store.standing("other") == []
    store.clear_standing("c", "hubspot", ["127"])
    assert [p.platform_id for p in store.standing("c")] == ["9"]
    store.forget_platform("c", "brevo")
    assert store.standing("c") == []
