"""A platform rebound to another account and back (A -> B -> A): segsync finds its own
objects, snapshots and memberships on A again (never a person's object), on both backends."""

from __future__ import annotations

import pytest

from segsync.cli.rebind import rebind
from segsync.state import OwnedObject, StateStore

CONFIG = "brevo+mailchimp"
AT = "2026-01-01T00:00:00"


def _synced_on(store: StateStore, account: str, ref: str) -> None:
    """The Brevo state bound to `account`: two records, an owned list, a membership."""
    store.begin_stage(CONFIG)
    store.stage_pulled(CONFIG, "bv", [
        (f"{account}-1", "a@x.com", "a@x.com", '{"k":1}', "h1", False),
        (f"{account}-2", "b@x.com", "b@x.com", '{"k":2}', "h2", False),
    ])
    store.stage_planned(CONFIG, [("a@x.com", "a@x.com", "{}"), ("b@x.com", "b@x.com", "{}")],
                        plan_id="p")
    store.finish(CONFIG)
    store.bind(CONFIG, "bv", account, f"{account} label", at=AT)
    store.set_owned(CONFIG, OwnedObject("bv", "static", "vip", ref), at=AT)
    store.commit_members(CONFIG, "bv", "vip", ["a@x.com"], [])


def _held(store: StateStore) -> tuple[object, ...]:
    return (
        store.owned(CONFIG, "bv"),
        sorted((r.cid, r.platform_id) for r in store.base_rows(CONFIG, "bv")),
        store.members(CONFIG, ["a@x.com", "b@x.com"]),
    )


def test_binding_back_to_an_account_gives_back_what_was_kept_of_it(store: StateStore) -> None:
    _synced_on(store, "org-A", "list-A")
    on_a = _held(store)
    assert all(on_a)

    store.forget_platform(CONFIG, "bv")
    store.bind(CONFIG, "bv", "org-B", "B", at=AT)
    assert _held(store) == ([], [], {})  # nothing of A on B
    _synced_on(store, "org-B", "list-B")
    on_b = _held(store)

    store.forget_platform(CONFIG, "bv")
    store.bind(CONFIG, "bv", "org-A", "A", at=AT)
    assert _held(store) == on_a  # A's own objects, ids and memberships, not B's

    store.forget_platform(CONFIG, "bv")
    store.bind(CONFIG, "bv", "org-B", "B", at=AT)
    assert _held(store) == on_b


def test_nothing_is_kept_of_an_account_never_identified(store: StateStore) -> None:
    _synced_on(store, "org-A", "list-A")
    store.bind(CONFIG, "bv", None, None, at=AT)  # a connector that cannot tell
    store.forget_platform(CONFIG, "bv")
    store.bind(CONFIG, "bv", "org-A", "A", at=AT)
    assert _held(store) == ([], [], {})


def test_an_erasure_purges_what_is_kept_of_the_person(store: StateStore) -> None:
    _synced_on(store, "org-A", "list-A")
    store.forget_platform(CONFIG, "bv")
    assert store.purge_person(CONFIG, "a@x.com", "erased:1") == 1
    store.bind(CONFIG, "bv", "org-A", "A", at=AT)
    owned, bases, members = _held(store)
    assert bases == [("b@x.com", "org-A-2")]  # the erased person's snapshot is gone
    assert members == {}
    assert [o.ref for o in owned] == ["list-A"]  # an object names nobody: kept


def test_a_kept_object_never_replaces_one_the_state_records_now(store: StateStore) -> None:
    _synced_on(store, "org-A", "list-A")
    store.forget_platform(CONFIG, "bv")
    store.set_owned(CONFIG, OwnedObject("bv", "static", "vip", "list-now"), at=AT)
    store.bind(CONFIG, "bv", "org-A", "A", at=AT)
    assert [o.ref for o in store.owned(CONFIG, "bv")] == ["list-now"]


# -- end to end: Brevo pointed at another account and back ------------------------------------


@pytest.mark.slow
def test_a_return_to_the_first_account_finds_segsyncs_own_objects_again(
    store: StateStore,
) -> None:
    """The customer's Brevo account A (a person's own list in it) is synced with a tag; the
    configuration moves to another account B (rebind) and back to A (rebind): the plan
    creates no second folder nor tag list on A, the tag Bob lost on Mailchimp meanwhile is
    taken off him on A (not brought back from A's old copy), and the run after writes
    nothing."""
    from accounts_world import BOB, World, other_brevo

    world = World(store)
    try:
        world.mc.seed_member(BOB, "subscribed", merge_fields={"FNAME": "Bob"},
                             tags=["Webinar"])
        world.clock.advance(600)
        assert world.sync().errors == []
        customer = world.bv
        lists_on_a = {i: lst["name"] for i, lst in customer.lists.items()}
        assert "tag: Webinar" in lists_on_a.values()
        folders_on_a = dict(customer.folders)

        def rebound() -> None:
            outcome = world.loop.run_until_complete(rebind(
                "brevo", world.connectors["brevo"], world.engine().state, clock=world.clock))
            assert outcome.done

        world.replace("brevo", world.brevo(other_brevo(world.clock)))
        rebound()
        assert world.sync().errors == []
        # while on B, Bob loses the tag on Mailchimp
        mc_list = world.mc.lists[world.mc.default_list_id]
        member = world.mc.get_member(BOB)
        assert member is not None
        for segment in mc_list.segments.values():
            if segment.name == "Webinar":
                segment.members.pop(member.id, None)
        world.mc._touch(member)
        world.clock.advance(60)
        assert world.sync().errors == []

        world.replace("brevo", world.brevo(customer))
        rebound()
        plan = world.plan()
        shown = plan.render()
        assert "segsync [2]" not in shown
        assert "was not created by segsync" not in shown
        assert world.sync().errors == []

        assert {i: lst["name"] for i, lst in customer.lists.items()} == lists_on_a
        assert dict(customer.folders) == folders_on_a
        bob = customer.contact(BOB)
        assert bob is not None
        webinar = next(i for i, lst in customer.lists.items() if lst["name"] == "tag: Webinar")
        assert webinar not in bob.list_ids
        assert "Webinar" not in str(bob.attributes.get("SEGSYNC_TAGS") or "")
        assert world.mc.get_member_tags(BOB) == set()  # not brought back from A's old copy
        assert world.plan().write_count == 0
    finally:  # the store is the fixture's to close
        for connector in world.connectors.values():
            world.loop.run_until_complete(connector.aclose())
        world.loop.close()
