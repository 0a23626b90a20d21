"""Brevo's folder and tag lists are segsync's only when segsync made them (by the ids the state
recorded), never by name (docs/sync.md, "Ownership"). Lived-in accounts: a person's folder
named like segsync's, a person's `tag: VIP` list with their own subscribers, and a second
`tag: VIP` list a person adds in segsync's folder. Also the upgrade from a state without those
records (adopt the folder only when it holds nothing but segsync-named lists).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.state import open_store
from segsync.sync import Engine
from segsync.testing.data import DEFAULT_SCHEMA

mailchimp = pytest.importorskip("segsync_mailchimp")
hubspot = pytest.importorskip("segsync_hubspot")
brevo = pytest.importorskip("segsync_brevo")
brevo_emulator = pytest.importorskip("segsync_brevo.emulator")

LOCAL = "http://127.0.0.1:9"
ANN, BEA = "ann@x.test", "bea@x.test"
VIC, WES = "vic@x.test", "wes@x.test"  # the person's own subscribers, Brevo only


class World:
    """Mailchimp, HubSpot and Brevo, lived in: Ann is VIP and Bea Gold in Mailchimp."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.mc = mailchimp.MailchimpEmulator(clock=self.clock)
        self.hs = hubspot.HubSpotEmulator(clock=self.clock)
        self.bv = brevo_emulator.BrevoEmulator(clock=self.clock)
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.mc.seed_member(ANN, merge_fields={"FNAME": "Ann"}, tags=["VIP"])
        self.mc.seed_member(BEA, merge_fields={"FNAME": "Bea"}, tags=["Gold"])

    def connectors(self) -> dict[str, Connector]:
        return {
            "mailchimp": mailchimp.MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": LOCAL + self.mc.base_path},
                schema=DEFAULT_SCHEMA, transport=self.mc.transport(), clock=self.clock),
            "hubspot": hubspot.HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": LOCAL},
                schema=DEFAULT_SCHEMA, transport=self.hs.transport(), clock=self.clock),
            "brevo": brevo.BrevoConnector(
                {"api_key": self.bv.api_key}, schema=DEFAULT_SCHEMA,
                transport=self.bv.transport(), clock=self.clock),
        }

    def engine(self) -> Engine:
        return Engine(self.connectors(), self.store, config="own", schema=DEFAULT_SCHEMA,
                      clock=self.clock)

    def run(self, coro: Any) -> Any:
        self.clock.advance(60)
        return asyncio.run(coro)

    def sync(self) -> Any:
        report = self.run(self.engine().sync())
        assert report.errors == []
        return report

    def members(self, list_id: int) -> set[str]:
        return {c.email for c in self.bv.contacts.values() if list_id in c.list_ids}

    def folders(self, name: str) -> list[int]:
        return [i for i, n in self.bv.folders.items() if n == name]

    def lists_named(self, name: str) -> list[int]:
        return [i for i, lst in self.bv.lists.items() if lst["name"] == name]

    def mc_tags(self, email: str) -> set[str]:
        return set(self.mc.get_member_tags(email)) if self.mc.get_member(email) else set()

    def hs_tags(self, email: str) -> str:
        return (self.hs.contact_by_email(email) or {}).get("segsync_tags") or ""


def _persons_list(world: World, folder: int) -> int:
    """The person's own `tag: VIP` list in `folder`, holding Vic and Wes (Brevo only)."""
    list_id = world.bv.seed_list("tag: VIP", folder)
    for email in (VIC, WES):
        world.bv.seed_contact(email, attributes={"FIRSTNAME": email[:3].title()},
                              lists=(list_id,))
    return list_id


def _assert_left_alone(world: World, theirs: int) -> None:
    assert world.members(theirs) == {VIC, WES}  # neither emptied nor filled
    for email in (VIC, WES):  # not read as tagged VIP, so not spread as VIP
        assert "VIP" not in world.mc_tags(email)
        assert "VIP" not in world.hs_tags(email).upper()
    assert world.mc_tags(ANN) >= {"VIP"}  # Ann's own tag is not removed
    assert "VIP" in world.hs_tags(ANN).upper()


def test_a_persons_folder_named_segsync_and_its_tag_list_are_left_alone() -> None:
    """Case a: the person's folder `segsync` holds their list `tag: VIP` (Vic and Wes)."""
    world = World()
    folder = world.bv.seed_folder("segsync")
    theirs = _persons_list(world, folder)

    plan = world.run(world.engine().plan())
    rendered = plan.render()
    assert "-VIP" not in rendered.replace(" ", "")  # nobody untagged from the person's list
    assert "'segsync [2]'" in rendered  # segsync's own folder, named apart, shown

    world.sync()
    world.sync()

    _assert_left_alone(world, theirs)
    [mine] = world.folders("segsync [2]")
    assert world.bv.lists[theirs]["folderId"] == folder
    [vip] = [i for i in world.lists_named("tag: VIP") if i != theirs]
    assert world.bv.lists[vip]["folderId"] == mine
    assert world.members(vip) == {ANN}
    kinds = {(o.kind, o.ref) for o in world.store.scoped("own").owned("brevo")}
    assert ("folder", str(mine)) in kinds
    assert ("list", str(vip)) in kinds


def test_a_second_tag_list_a_person_adds_in_segsyncs_folder_is_not_segsyncs() -> None:
    """Case b: segsync's folder holds its `tag: VIP` (Ann); a person adds another `tag: VIP`
    there with Vic and Wes."""
    world = World()
    world.sync()
    [folder] = world.folders("segsync")
    [mine] = world.lists_named("tag: VIP")
    theirs = _persons_list(world, folder)

    plan = world.run(world.engine().plan())
    assert "-VIP" not in plan.render().replace(" ", "")
    world.sync()
    world.sync()

    _assert_left_alone(world, theirs)
    assert world.members(mine) == {ANN}
    assert world.folders("segsync") == [folder]  # no second folder


def test_a_tag_list_a_person_made_first_in_segsyncs_folder_gets_a_distinct_list() -> None:
    """A person's `tag: Silver` in segsync's folder before segsync needs that tag: segsync
    makes `tag: Silver [2]` and never touches the person's."""
    world = World()
    world.sync()
    [folder] = world.folders("segsync")
    theirs = world.bv.seed_list("tag: Silver", folder)
    world.bv.seed_contact(VIC, lists=(theirs,))
    world.mc.seed_member("cal@x.test", merge_fields={"FNAME": "Cal"}, tags=["Silver"])

    plan = world.run(world.engine().plan())
    assert "'tag: Silver [2]'" in plan.render()
    world.sync()
    world.sync()

    assert world.members(theirs) == {VIC}
    [mine] = world.lists_named("tag: Silver [2]")
    assert world.bv.lists[mine]["folderId"] == folder
    assert world.members(mine) == {"cal@x.test"}
    assert "Silver" not in world.mc_tags(VIC)


def _forget_records(world: World) -> None:
    """The state as an older segsync left it: no folder or tag list recorded."""
    state = world.store.scoped("own")
    for obj in state.owned("brevo"):
        if obj.kind in ("folder", "list"):
            world.store.forget_owned("own", "brevo", obj.kind, obj.name)


def test_upgrade_adopts_the_folder_and_its_tag_lists_but_not_a_persons_list() -> None:
    """A state from before the records: the folder and its tag lists are adopted (and now
    recorded); a person's list in it stays theirs; nobody is untagged."""
    world = World()
    world.sync()
    [folder] = world.folders("segsync")
    [vip] = world.lists_named("tag: VIP")
    picks = world.bv.seed_list("My picks", folder)
    world.bv.seed_contact(VIC, lists=(picks,))
    _forget_records(world)

    world.mc.seed_member("cal@x.test", merge_fields={"FNAME": "Cal"}, tags=["VIP"])
    plan = world.run(world.engine().plan())
    assert "-VIP" not in plan.render().replace(" ", "")
    world.sync()
    world.sync()

    assert world.folders("segsync") == [folder]  # adopted, no second folder
    assert world.lists_named("tag: VIP") == [vip]
    assert world.members(vip) == {ANN, "cal@x.test"}
    assert world.members(picks) == {VIC}
    assert "VIP" in world.mc_tags(ANN)
    assert "VIP" in world.hs_tags(ANN).upper()
    kinds = {(o.kind, o.ref) for o in world.store.scoped("own").owned("brevo")}
    assert ("folder", str(folder)) in kinds
    assert ("list", str(vip)) in kinds
    assert ("list", str(picks)) not in kinds


def test_upgrade_refuses_to_guess_between_two_tag_lists_of_one_name() -> None:
    """A state from before the records and a second `tag: VIP` in the folder: which one is
    segsync's cannot be told; Brevo sits the run out (an error naming the fix), the person's
    list and everyone's tags elsewhere are as they were."""
    world = World()
    world.sync()
    [folder] = world.folders("segsync")
    theirs = _persons_list(world, folder)
    _forget_records(world)

    report = world.run(world.engine().sync())

    [error] = [e for e in report.errors if e.platform == "brevo"]
    assert "tag: vip" in error.message.casefold()
    assert "fix:" in error.message
    _assert_left_alone(world, theirs)
