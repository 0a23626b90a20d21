"""Owed writes (issue 14, item 5): a record write a platform refused stays owed, with its
last error and first and last failure, shown by `plan`, retried by every run, until it is
written or acknowledged; a refused *update* is owed exactly like a refused create."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deletes_world import ANA, CEM, World

from segsync.state import StateStore
from segsync.sync import Plan
from segsync.sync.plan import PlatformPlan
from segsync.sync.snapshot import PlatformRecord


@pytest.fixture
def world(store: StateStore) -> Iterator[World]:
    w = World(store)
    yield w
    w.close()


def base_first_name(world: World, platform: str, cid: str) -> str | None:
    """The first name of the base snapshot (what segsync believes the platform holds)."""
    [row] = [r for r in world.store.base_rows("deletes", platform) if r.cid == cid]
    return PlatformRecord.loads(row.payload).fields.get("first_name")


def test_a_refused_update_is_owed_and_the_base_does_not_advance(world: World) -> None:
    """Brevo refuses the update of a linked contact (400): the base keeps what Brevo holds,
    the write is owed with Brevo's error, the next plan shows it (never "no changes") and
    retries it; once Brevo accepts, it is written and no longer owed."""
    world.sync()
    before = base_first_name(world, "brevo", CEM)
    world.refuse_writes("brevo", CEM)
    world.user_renames_in_hubspot(CEM, "Cemile")

    refused = world.sync()

    assert [(e.platform, e.email) for e in refused.errors] == [("brevo", CEM)]
    assert world.first_name("brevo", CEM) == before  # Brevo holds the old value...
    assert base_first_name(world, "brevo", CEM) == before  # ...and so does the base
    assert world.first_name("mailchimp", CEM) == "Cemile"
    [owed] = world.engine.state.owed()
    assert (owed.platform, owed.email, owed.failures) == ("brevo", CEM, 1)
    assert owed.error == "refused by the test"
    assert owed.first_failed == owed.last_failed

    plan = world.plan()
    text = plan.render()
    assert "No changes" not in text
    assert "platforms match" not in text
    assert "owed write" in text
    assert f"[brevo] {CEM}: refused by the test" in text
    assert [(o.platform, o.email) for o in Plan.from_json(plan.to_json()).owed] == [
        ("brevo", CEM)]
    assert [c["email"] for c in plan.platforms["brevo"].changes] == [CEM]  # retried

    again = world.sync()  # still refused: still owed, first failure kept
    [owed2] = world.engine.state.owed()
    assert len(again.errors) == 1
    assert owed2.failures == 2
    assert owed2.first_failed == owed.first_failed
    assert owed2.last_failed > owed.last_failed

    world.accept_writes()
    written = world.sync()
    assert written.errors == []
    assert written.platforms["brevo"].updated == 1
    assert world.first_name("brevo", CEM) == "Cemile"
    assert base_first_name(world, "brevo", CEM) == "Cemile"
    assert world.engine.state.owed() == []
    assert "No changes" in world.plan().render()


def test_an_owed_write_the_merge_finds_matching_is_written_again(world: World) -> None:
    """A refused update whose value a platform user then types in by hand: the merge sees
    nothing to write, but the record is owed: it is written again (absolute values) and
    confirmed, and the owed write is paid."""
    world.sync()
    world.refuse_writes("brevo", CEM)
    world.user_renames_in_hubspot(CEM, "Cemile")
    world.sync()
    world.accept_writes()
    contact = world.bv.contact(CEM)
    assert contact is not None
    contact.attributes["FIRSTNAME"] = "Cemile"  # typed in Brevo by hand: read next run
    contact.modified_at = world.clock.now()
    world.clock.advance(5)

    plan = world.plan()
    assert [c["email"] for c in plan.platforms["brevo"].changes] == [CEM]
    report = world.sync()
    assert report.errors == []
    assert world.engine.state.owed() == []


def test_acknowledged_owed_writes_are_dropped(world: World) -> None:
    """`ack` drops the owed writes named (by email, on one platform or all); the plan no
    longer shows them."""
    world.sync()
    for email in (ANA, CEM):
        world.refuse_writes("brevo", email)
        world.user_renames_in_hubspot(email, email[:3].title() + "x")
    world.sync()
    state = world.engine.state
    assert sorted(o.email for o in state.owed()) == [ANA, CEM]

    assert state.ack_owed([CEM], "mailchimp") == 0  # owed on brevo, not mailchimp
    assert state.ack_owed([CEM.upper().lower()], "brevo") == 1
    assert [o.email for o in state.owed()] == [ANA]
    assert state.ack_owed(None) == 1
    assert state.owed() == []
    assert "owed write" not in world.plan().render()


def test_a_plan_with_an_owed_write_never_says_no_changes() -> None:
    """Even a plan that writes nothing says nothing of "no changes" while a write is owed."""
    from segsync.sync.plan import OwedRow  # (imported here: the other tests run without it)

    owed = OwedRow(platform="brevo", email=CEM, error="Contact does not exist",
                   first_failed="2026-11-02T09:00:00+00:00",
                   last_failed="2026-11-02T10:00:00+00:00", failures=3)
    plan = Plan(plan_id="p", config="c", generation=1, created_at="t",
                platforms={"brevo": PlatformPlan()}, owed=[owed])
    text = plan.render()
    assert "No changes" not in text
    assert "match" not in text
    assert "1 owed write(s)" in text
    assert f"[brevo] {CEM}: Contact does not exist (since 2026-11-02T09:00:00+00:00, 3 runs)" \
        in text
    assert "No changes" in plan.model_copy(update={"owed": []}).render()
