"""Ownership on the three emulated platforms: an object a person made under the name segsync
would give a segment is never adopted, written or deleted. The segment gets a distinct name
(`... [2]`), the plan shows it and names both, and the person's object and its members are
as they were after two runs and after the segment is dropped from the configuration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from segsync.clock import VirtualClock
from segsync.connector import Connector, ContactChange
from segsync.model import ConsentStatus, PublishMode
from segsync.rules import parse
from segsync.state import open_store
from segsync.sync import Engine, Plan, SegmentTarget
from segsync.testing.data import DEFAULT_SCHEMA

mailchimp = pytest.importorskip("segsync_mailchimp")
hubspot = pytest.importorskip("segsync_hubspot")
brevo = pytest.importorskip("segsync_brevo")
brevo_emulator = pytest.importorskip("segsync_brevo.emulator")
hubspot_records = pytest.importorskip("segsync_hubspot.emulator.records")

LOCAL = "http://127.0.0.1:9"
FANS = ["ann1@segsync.dev", "ann2@segsync.dev"]
OTHERS = ["bob@segsync.dev"]
USER = "user.pick@segsync.dev"  # in the person's object, not a fan


def _segment(platform: str, mode: PublishMode = PublishMode.MATERIALISE) -> SegmentTarget:
    publish = dict.fromkeys(("mailchimp", "hubspot", "brevo"), PublishMode.OFF)
    publish[platform] = mode
    return SegmentTarget("fans", parse('first_name = "Ann"'), publish=publish)


class World:
    """Mailchimp holds the people; one other platform (or Mailchimp itself) publishes."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.clock = VirtualClock()
        self.mc = mailchimp.MailchimpEmulator(clock=self.clock)
        self.hs = hubspot.HubSpotEmulator(clock=self.clock)
        self.bv = brevo_emulator.BrevoEmulator(clock=self.clock)
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        for email in [*FANS, *OTHERS, USER]:
            name = "Ann" if email in FANS else "Bob"
            self.mc.seed_member(email, merge_fields={"FNAME": name})

    def connectors(self) -> dict[str, Connector]:
        out: dict[str, Connector] = {
            "mailchimp": mailchimp.MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": LOCAL + self.mc.base_path},
                schema=DEFAULT_SCHEMA, transport=self.mc.transport(), clock=self.clock),
        }
        if self.platform == "hubspot":
            out["hubspot"] = hubspot.HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": LOCAL},
                schema=DEFAULT_SCHEMA, transport=self.hs.transport(), clock=self.clock)
        if self.platform == "brevo":
            out["brevo"] = brevo.BrevoConnector(
                {"api_key": self.bv.api_key}, schema=DEFAULT_SCHEMA,
                transport=self.bv.transport(), clock=self.clock)
        return out

    def engine(self, *segments: SegmentTarget) -> Engine:
        return Engine(self.connectors(), self.store, config="own", schema=DEFAULT_SCHEMA,
                      clock=self.clock, segments=segments)

    def run(self, coro: Any) -> Any:
        self.clock.advance(60)
        return asyncio.run(coro)


# -- each platform's person-made object and how to read it back -------------------------


def _seed_user_object(world: World) -> Any:
    """The person's object named as segsync would name segment `fans`; its key."""
    if world.platform == "mailchimp":
        world.mc.seed_member(USER.replace("pick", "tagged"), tags=["segsync:fans"])
        lst = world.mc.lists[world.mc.default_list_id]
        [tag] = [s for s in lst.segments.values() if s.name == "segsync:fans"]
        return tag.id
    if world.platform == "hubspot":
        record = world.hs.seed_contact({"email": USER, "firstname": "Bob"})
        now = world.clock.now()
        world.hs.lists["77"] = hubspot_records.ListRecord(
            "77", "segsync: fans", "MANUAL", None, now, now, now, members={record: now})
        return "77"
    folder = world.bv.seed_folder("segsync")  # a person's folder, named like segsync's
    list_id = world.bv.seed_list("segment: fans", folder)
    world.bv.seed_contact(USER, lists=(list_id,))
    return list_id


def _user_object(world: World, key: Any) -> tuple[str, set[str]]:
    """The person's object now: its name and its members."""
    if world.platform == "mailchimp":
        segment = world.mc.lists[world.mc.default_list_id].segments[key]
        return segment.name, set(segment.members)
    if world.platform == "hubspot":
        lst = world.hs.lists[key]
        return lst.name, set(lst.members) if not lst.deleted else {"(deleted)"}
    name = world.bv.lists[key]["name"] if key in world.bv.lists else "(deleted)"
    return name, {c.email for c in world.bv.contacts.values() if key in c.list_ids}


async def _members(connector: Connector, ref: str) -> set[str]:
    return {e.lower() async for e in connector.segment_members(ref)}


@pytest.mark.parametrize("platform", ["mailchimp", "hubspot", "brevo"])
def test_a_persons_object_named_like_a_segment_is_never_adopted(platform: str) -> None:
    world = World(platform)
    key = _seed_user_object(world)
    before = _user_object(world, key)
    wanted = {"mailchimp": "segsync:fans", "hubspot": "segsync: fans",
              "brevo": "segment: fans"}[platform]

    engine = world.engine(_segment(platform))
    plan: Plan = world.run(engine.plan())
    [pub] = plan.platforms[platform].publications
    if platform == "brevo":  # the person's folder `segsync` is theirs: segsync makes its own
        assert pub.platform_name == wanted
        [note] = [d for d in plan.diagnostics if d.get("step") == "ownership"]
        assert "own folder 'segsync [2]'" in note["message"]
    else:
        assert pub.platform_name == f"{wanted} [2]"
        assert f"as '{wanted} [2]'" in plan.render()
        [note] = [d for d in plan.diagnostics if d.get("step") == "ownership"]
        assert wanted in note["message"]
        assert f"{wanted} [2]" in note["message"]

    first = world.run(engine.apply(plan))
    second = world.run(world.engine(_segment(platform)).sync())

    assert first.errors == []
    assert second.errors == []
    assert second.writes == 0
    assert _user_object(world, key) == before
    [owned] = [o for o in world.store.scoped("own").owned(platform) if o.kind == "static"]
    assert str(owned.ref) != str(key)
    connector = world.connectors()[platform]
    assert world.run(_members(connector, owned.ref)) == set(FANS)

    dropped = world.run(world.engine().sync())  # the segment leaves the configuration

    assert dropped.errors == []
    assert _user_object(world, key) == before
    assert [o for o in world.store.scoped("own").owned(platform) if o.kind == "static"] == []


def test_a_saved_segment_named_like_a_native_segment_is_not_adopted() -> None:
    """Mailchimp: a person's saved segment called `fans` stays theirs; segsync's is
    `fans [2]`, and only segsync's follows the rule."""
    world = World("mailchimp")
    lst = world.mc.lists[world.mc.default_list_id]
    theirs = world.run(_person_saved_segment(world))
    options_before = dict(lst.segments[theirs].options or {})

    report = world.run(world.engine(_segment("mailchimp", PublishMode.NATIVE)).sync())

    assert report.errors == []
    assert lst.segments[theirs].name == "fans"
    assert lst.segments[theirs].options == options_before
    [mine] = [s for s in lst.segments.values() if s.type == "saved" and s.id != theirs]
    assert mine.name == "fans [2]"


async def _person_saved_segment(world: World) -> int:
    import httpx

    async with httpx.AsyncClient(transport=world.mc.transport(), base_url="http://mc") as c:
        answer = await c.post(
            f"/3.0/lists/{world.mc.default_list_id}/segments",
            json={"name": "fans", "options": {"match": "all", "conditions": [
                {"condition_type": "TextMerge", "field": "FNAME", "op": "is", "value": "Bob"}]}},
            auth=("any", world.mc.default_api_key),
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["id"])


_ = (ContactChange, ConsentStatus, dt)  # kept for readers extending the worlds
