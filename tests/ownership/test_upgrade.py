"""Upgrade: a state made before static segments became `segsync:<name>` tags records a
Mailchimp static segment under its bare name (the tag `fans`). People use such a tag as a
tag now: it is never written or deleted again, and the segment gets its `segsync:fans` tag
with every member of the rule (not only the changes since the old state)."""

from __future__ import annotations

import asyncio

import pytest

from segsync.clock import VirtualClock
from segsync.model import PublishMode
from segsync.rules import parse
from segsync.state import open_store
from segsync.state.base import OwnedObject
from segsync.sync import Engine, SegmentTarget
from segsync.testing.data import DEFAULT_SCHEMA

mailchimp = pytest.importorskip("segsync_mailchimp")

FANS = ["ann1@segsync.dev", "ann2@segsync.dev"]
PERSON = "bob@segsync.dev"  # tagged `fans` by a person, not a fan
SEGMENT = SegmentTarget("fans", parse('first_name = "Ann"'),
                        publish={"mailchimp": PublishMode.MATERIALISE})


def test_a_bare_named_owned_tag_of_an_older_segsync_is_left_to_people() -> None:
    clock = VirtualClock()
    emu = mailchimp.MailchimpEmulator(clock=clock)
    for email in FANS:
        emu.seed_member(email, merge_fields={"FNAME": "Ann"}, tags=["fans"])
    emu.seed_member(PERSON, merge_fields={"FNAME": "Bob"}, tags=["fans"])
    lst = emu.lists[emu.default_list_id]
    [bare] = [s for s in lst.segments.values() if s.name == "fans"]
    store = open_store("sqlite:///:memory:", clock=clock)

    def engine(*segments: SegmentTarget) -> Engine:
        connector = mailchimp.MailchimpConnector(
            {"api_key": emu.default_api_key, "list_id": emu.default_list_id,
             "base_url": "http://127.0.0.1:9" + emu.base_path},
            schema=DEFAULT_SCHEMA, transport=emu.transport(), clock=clock)
        return Engine({"mailchimp": connector}, store, config="old", schema=DEFAULT_SCHEMA,
                      clock=clock, segments=segments)

    assert asyncio.run(engine().sync()).errors == []
    # what the older segsync left: the bare tag as the owned static, its members recorded
    state = store.scoped("old")
    state.set_owned(OwnedObject("mailchimp", "static", "fans", str(bare.id)), at="2025-01-01")
    cids = state.cids_by_email(FANS)
    state.commit_members("mailchimp", "fans", [cids[e] for e in FANS], [])
    members_before = set(bare.members)

    clock.advance(60)
    plan = asyncio.run(engine(SEGMENT).plan())
    [note] = [d for d in plan.diagnostics if d.get("step") == "ownership"]
    [pub] = plan.platforms["mailchimp"].publications
    [change] = plan.platforms["mailchimp"].memberships
    report = asyncio.run(engine(SEGMENT).apply(plan))

    assert "'fans'" in note["message"]
    assert "segsync:fans" in note["message"]
    assert (pub.kind, pub.platform_name) == ("static", "segsync:fans")
    assert sorted(m.email for m in change.add) == FANS  # every fan, as for a new segment
    assert report.errors == []
    assert set(bare.members) == members_before  # the person's tag, untouched
    [mine] = [s for s in lst.segments.values() if s.name == "segsync:fans"]
    assert {lst.members[h].email_address for h in mine.members} == set(FANS)
    [owned] = store.scoped("old").owned("mailchimp")
    assert owned.ref == str(mine.id)

    clock.advance(60)
    assert asyncio.run(engine(SEGMENT).sync()).writes == 0
    clock.advance(60)
    dropped = asyncio.run(engine().sync())  # the segment leaves the configuration

    assert dropped.errors == []
    assert bare.id in lst.segments
    assert set(bare.members) == members_before
    assert mine.id not in lst.segments


def test_a_bare_named_tag_is_never_deleted_by_its_old_ref() -> None:
    """The connector alone (a plan made before the upgrade, applied after): deleting the
    owned object by the bare tag's id leaves the person's tag alone."""
    clock = VirtualClock()
    emu = mailchimp.MailchimpEmulator(clock=clock)
    emu.seed_member(PERSON, tags=["fans"])
    lst = emu.lists[emu.default_list_id]
    [bare] = [s for s in lst.segments.values() if s.name == "fans"]
    connector = mailchimp.MailchimpConnector(
        {"api_key": emu.default_api_key, "list_id": emu.default_list_id},
        transport=emu.transport(), clock=clock)

    async def main() -> str:
        async with connector:
            await connector.delete_owned("static", str(bare.id))
            return await connector.ensure_static("fans", str(bare.id))

    ref = asyncio.run(main())

    assert bare.id in lst.segments
    assert len(bare.members) == 1
    assert ref != str(bare.id)
    assert lst.segments[int(ref)].name == "segsync:fans"
