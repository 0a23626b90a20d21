"""The Mailchimp connector against its emulator: batching, consent, reads, segments, config."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator, subscriber_hash
from segsync_mailchimp.speccheck import SpecChecker, default_spec_dir

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, load_object, registry
from segsync.http import ApiError
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync.rules.compiler import PlatformCannotExpress

SPEC_DIR = default_spec_dir()
CHECKER = SpecChecker(SPEC_DIR) if SPEC_DIR.is_dir() else None
KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "score": FieldSpec(type=FieldType.NUMBER),
        "plan": FieldSpec(type=FieldType.ENUM, options=("free", "pro")),
        "topics": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "events")),
    }
)


class Capture(httpx.AsyncBaseTransport):
    """Records (method, path, JSON body) of every request before passing it on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        if CHECKER is not None:  # every request must fit the Mailchimp API description
            problems = CHECKER.problems(
                request.method, request.url.path, dict(request.url.params), body
            )
            assert not problems, problems
        return await self.inner.handle_async_request(request)

    def writes(self) -> list[tuple[str, str, Any]]:
        return [s for s in self.sent if s[0] != "GET"]


World = tuple[MailchimpEmulator, MailchimpConnector, Capture]


def run(body: Callable[[World], Awaitable[None]], **config: Any) -> None:
    """Run `body` with a fresh emulator and a connector reaching it through `Capture`."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    capture = Capture(emulator.transport())
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST, **config},
        schema=SCHEMA,
        transport=capture,
        clock=clock,
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, capture))

    asyncio.run(main())


def statuses_sent(capture: Capture, email: str) -> list[str]:
    """Every `status` the connector sent for `email` (batch items and member bodies)."""
    found = []
    for _, _, body in capture.writes():
        items = (body or {}).get("members") or [body or {}]
        found += [i["status"] for i in items if i.get("email_address") == email and "status" in i]
    return found


def test_registered_under_its_entry_point() -> None:
    """`mailchimp` resolves to this connector, with its compiler and emulator declared."""
    assert registry.get("mailchimp") is MailchimpConnector
    assert MailchimpConnector.compiler_path == "segsync_mailchimp.compiler:MailchimpCompiler"


def test_platform_facts_are_class_data() -> None:
    """Rate-limit hints, credential shape, shipped mapping and the emulator's demo config
    belong to the connector package (the core names no platform)."""
    from segsync.logs import redactor
    from segsync.mapping import load_mapping

    assert MailchimpConnector.rate_limit_hints.headers[0].name == "Retry-After"
    assert redactor(f"key {KEY} in a message") == "key *** in a message"
    resource = MailchimpConnector.default_mapping_resource()
    assert resource is not None
    assert resource.name == "mapping.yaml"
    assert resource.is_file()
    shipped = load_mapping("mailchimp")
    assert shipped.fields["company"].path == "merge_fields.COMPANY"
    emulator = MailchimpEmulator()
    assert MailchimpEmulator.demo_port == 8001
    assert emulator.client_config() == {"api_key": KEY, "list_id": LIST}
    assert MailchimpConnector(emulator.client_config()).config.list_id == LIST


@pytest.mark.slow
def test_importing_the_connector_does_not_load_the_emulator() -> None:
    """The emulator is imported only when asked for (kit, `segsync emulate`, demo, bench)."""
    code = (
        "import sys, segsync_mailchimp, segsync_mailchimp.connector, segsync_mailchimp.compiler;"
        "print(sorted(m for m in sys.modules if 'emulator' in m))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert found == "[]"
    assert MailchimpConnector.emulator_path is not None
    assert load_object(MailchimpConnector.emulator_path) is MailchimpEmulator


def test_config_datacenter_base_url_and_secrets() -> None:
    """The base URL comes from the key's datacenter; the key never shows in reprs or errors."""
    connector = MailchimpConnector({"api_key": "abc123abc123abc123-us7", "list_id": "l1"})

    assert connector.config.api_root == "https://us7.api.mailchimp.com/3.0"
    assert "abc123" not in repr(connector.config)
    with pytest.raises(ValidationError, match="datacenter"):
        MailchimpConnector({"api_key": "nodatacenter", "list_id": "l1"})
    with pytest.raises(ValidationError, match="loopback"):
        MailchimpConnector({"api_key": KEY, "list_id": "l1", "base_url": "http://example.org"})


def test_check_reports_bad_key_without_leaking_it() -> None:
    """check() raises ApiError 401 with Mailchimp's message; the key is not in the text."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock, api_key="f" * 32 + "-us21")
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST}, transport=emulator.transport(), clock=clock
    )

    with pytest.raises(ApiError) as caught:
        asyncio.run(connector.check())

    assert caught.value.status == 401
    assert caught.value.code == "API Key Invalid"
    assert KEY not in str(caught.value)
    assert KEY.split("-")[0] not in str(caught.value)


def test_prepare_creates_fields_groups_and_tags_with_matching_types() -> None:
    """Missing merge fields, interest categories/interests and tags are created once."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        await connector.prepare(SCHEMA.fields, ["vip", "VIP", "b2b"])
        lst = emu.lists[LIST]
        writes = len(capture.writes())
        await connector.prepare(SCHEMA.fields, ["vip", "b2b"])

        assert {t: f.type for t, f in lst.merge_fields.items() if t in ("SCORE", "PLAN")} == {
            "SCORE": "number",
            "PLAN": "dropdown",
        }
        assert lst.merge_fields["PLAN"].options["choices"] == ["free", "pro"]
        [category] = lst.categories.values()
        assert (category.title, category.type) == ("topics", "checkboxes")
        assert sorted(i["name"] for i in category.interests.values()) == ["events", "news"]
        assert sorted(s.name for s in lst.segments.values()) == ["VIP", "b2b"] or sorted(
            s.name for s in lst.segments.values()
        ) == ["b2b", "vip"]
        assert len(capture.writes()) == writes, "nothing created twice"

    run(body)


def test_prepare_refuses_an_incompatible_existing_field() -> None:
    """A merge field of another type is reported unwritable naming both types, never
    silently reused."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        emu.lists[LIST].merge_fields["SCORE"] = type(emu.lists[LIST].merge_fields["FNAME"])(
            99, "SCORE", "Score", "text"
        )
        problems = await connector.prepare(SCHEMA.fields, [])
        assert [p.kind for p in problems] == ["field"]
        assert "SCORE is 'text'" in problems[0].message

    run(body)


def test_creates_batch_500_a_call_and_tags_through_segment_bulk() -> None:
    """1200 new contacts: 3 batch calls (500, 500, 200), 3 bulk calls per tag, nothing else."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        await connector.prepare(SCHEMA.fields, ["a", "b"])
        before = len(capture.writes())
        changes = [
            ContactChange(
                email=f"p{i:04d}@segsync.dev",
                create=True,
                fields={"first_name": f"P{i}", "topics": {"news"}},
                tags_add=frozenset({"a", "b"}),
            )
            for i in range(1200)
        ]
        results = await connector.write(changes)
        writes = capture.writes()[before:]
        batches = [len(b["members"]) for m, p, b in writes if p == f"/3.0/lists/{LIST}"]
        bulks = [len(b["members_to_add"]) for m, p, b in writes if "/segments/" in p]

        assert all(r.ok and r.created for r in results)
        assert sorted(batches) == [200, 500, 500]
        assert sorted(bulks) == [200, 200, 500, 500, 500, 500]
        assert len(writes) == 9
        assert emu.get_member_tags("p0042@segsync.dev") == {"a", "b"}
        member = emu.get_member("p0042@segsync.dev")
        assert member is not None
        assert member.status == "transactional", "unknown consent -> transactional"
        # the platform id is the member's contact_id (stable across renames), not its hash
        assert results[42].platform_id == member.contact_id

    run(body)


def test_nothing_is_sent_when_nothing_changes() -> None:
    """write([]) sends nothing; changes equal to what was read are not sent either."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        emu.seed_member("same@segsync.dev", merge_fields={"FNAME": "Sam"}, tags=["vip"])
        async for _ in connector.read():
            pass
        before = len(capture.sent)
        assert await connector.write([]) == []
        results = await connector.write(
            [
                ContactChange(
                    email="same@segsync.dev",
                    fields={"first_name": "Sam"},
                    consent=ConsentStatus.SUBSCRIBED,
                    tags_add=frozenset({"VIP"}),
                ),
                ContactChange(email="same@segsync.dev"),
            ]
        )

        assert [r.ok for r in results] == [True, True]
        assert capture.sent[before:] == []

    run(body)


def test_consent_floor_never_resubscribes() -> None:
    """`subscribed` is never sent for a member Mailchimp holds as unsubscribed or cleaned."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        emu.seed_member("out@segsync.dev", "unsubscribed")
        emu.seed_member("bounced@segsync.dev", "cleaned")
        results = await connector.write(
            [
                ContactChange(
                    email="out@segsync.dev",
                    consent=ConsentStatus.SUBSCRIBED,
                    fields={"first_name": "Olive"},
                ),
                ContactChange(
                    email="bounced@segsync.dev", create=True, consent=ConsentStatus.SUBSCRIBED
                ),
            ]
        )

        assert [r.ok for r in results] == [False, False]
        assert all(
            r.code == "ConsentFloor" and "never subscribes" in (r.error or "") for r in results
        )
        assert statuses_sent(capture, "out@segsync.dev") == []
        # a create goes in a batch that cannot touch existing members (update_existing false)
        creating = [
            b
            for _, p, b in capture.writes()
            if p.endswith(LIST)
            and any(m["email_address"] == "bounced@segsync.dev" for m in b["members"])
        ]
        assert [b["update_existing"] for b in creating] == [False]
        assert statuses_sent(capture, "bounced@segsync.dev") == ["subscribed"]
        assert emu.get_member("bounced@segsync.dev").status == "cleaned"  # type: ignore[union-attr]
        out = emu.get_member("out@segsync.dev")
        assert out is not None
        assert out.status == "unsubscribed"
        assert out.merge_fields["FNAME"] == "Olive", "the rest of the change still applies"

    run(body)


def test_reoptin_goes_through_pending_when_configured() -> None:
    """With reoptin_via_pending, a newer opt-in of an unsubscribed member is sent as pending."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        emu.seed_member("back@segsync.dev", "unsubscribed")
        [result] = await connector.write(
            [ContactChange(email="back@segsync.dev", consent=ConsentStatus.SUBSCRIBED)]
        )

        assert result.ok
        assert statuses_sent(capture, "back@segsync.dev") == ["pending"]
        member = emu.get_member("back@segsync.dev")
        assert member is not None
        assert member.status == "pending"

    run(body, reoptin_via_pending=True)


def test_opt_out_and_new_subscriber_statuses() -> None:
    """Unsubscribe is sent as is; a new member gets the canonical status."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        emu.seed_member("leaving@segsync.dev", "subscribed")
        results = await connector.write(
            [
                ContactChange(email="leaving@segsync.dev", consent=ConsentStatus.UNSUBSCRIBED),
                ContactChange(
                    email="new@segsync.dev", create=True, consent=ConsentStatus.SUBSCRIBED
                ),
                ContactChange(
                    email="bounce@segsync.dev", create=True, consent=ConsentStatus.BOUNCED
                ),
            ]
        )

        assert all(r.ok for r in results)
        assert [
            emu.get_member(e).status
            for e in ("leaving@segsync.dev", "new@segsync.dev", "bounce@segsync.dev")  # type: ignore[union-attr]
        ] == ["unsubscribed", "subscribed", "cleaned"]

    run(body)


def test_per_record_errors_carry_mailchimps_message() -> None:
    """A refused record fails alone, with Mailchimp's own message and the field at fault."""

    async def body(world: World) -> None:
        _emu, connector, _ = world
        await connector.prepare(SCHEMA.fields, [])
        results = await connector.write(
            [
                ContactChange(email="ok@segsync.dev", create=True, fields={"score": 3}),
                ContactChange(email="bad@segsync.dev", create=True, fields={"plan": "gold"}),
                ContactChange(email="fake@example.com", create=True),
            ]
        )

        assert [r.ok for r in results] == [True, False, False]
        assert results[1].error == (
            "Your merge fields were invalid. (PLAN: Please select one of the choices)"
        )
        assert results[2].error == (
            "fake@example.com looks fake or invalid, please enter a real email address."
        )

    run(body)


def test_incremental_read_overlap_is_deduplicated() -> None:
    """A read from a cursor re-reads the overlap window but returns each change once."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        clock = emu.clock
        assert isinstance(clock, VirtualClock)
        for i in range(5):
            emu.seed_member(f"r{i}@segsync.dev", merge_fields={"FNAME": f"R{i}"})
        pages = [p async for p in connector.read()]
        cursor = pages[-1].cursor
        clock.advance(10)  # well inside the 300 s overlap window
        await connector.write(
            [ContactChange(email="r3@segsync.dev", fields={"first_name": "Changed"})]
        )
        again = [c for p in [p async for p in connector.read(cursor)] for c in p.contacts]
        empty = [c for p in [p async for p in connector.read(pages[-1].cursor)] for c in p.contacts]

        assert sum(len(p.contacts) for p in pages) == 5
        assert [(c.email, c.fields["first_name"]) for c in again] == [("r3@segsync.dev", "Changed")]
        assert len(empty) == 1, "the old cursor still sees the change"

    run(body)


def test_read_maps_fields_groups_consent_engagement_and_deletions() -> None:
    """Members map to canonical fields, tags (all of them), consent and engagement."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        await connector.prepare(SCHEMA.fields, [])
        lst = emu.lists[LIST]
        [category] = lst.categories.values()
        news = next(i for i, v in category.interests.items() if v["name"] == "news")
        tags = [f"t{i:02d}" for i in range(60)]
        emu.seed_member(
            "many@segsync.dev",
            "cleaned",
            merge_fields={"SCORE": 2.5, "PLAN": "pro"},
            tags=tags,
            member_rating=4,
            avg_open_rate=0.5,
        )
        emu.lists[LIST].members[subscriber_hash("many@segsync.dev")].interests[news] = True
        emu.seed_member("gone@segsync.dev", "subscribed")
        emu.lists[LIST].members[subscriber_hash("gone@segsync.dev")].status = "archived"
        contacts = {c.email: c for p in [p async for p in connector.read()] for c in p.contacts}
        many = contacts["many@segsync.dev"]

        assert many.fields["score"] == 2.5
        assert many.fields["plan"] == "pro"
        assert many.fields["topics"] == frozenset({"news"})
        assert many.fields["first_name"] is None
        assert many.tags == frozenset(tags), "tags beyond the 50 a member shows are fetched"
        assert many.consent.status is ConsentStatus.BOUNCED
        assert many.engagement["member_rating"] == 4
        assert many.engagement["open_rate"] == 0.5
        assert contacts["gone@segsync.dev"].deleted

    run(body)


def test_segments_publish_update_static_members_and_delete() -> None:
    """Saved segments resolve tag names to ids; static members move 500 + 500 a call."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        for i in range(700):
            emu.seed_member(f"s{i:03d}@segsync.dev", merge_fields={"FNAME": "Ann" if i < 3 else ""})
        definition = {
            "match": "all",
            "conditions": [
                {
                    "condition_type": "StaticSegment",
                    "field": "static_segment",
                    "op": "static_is",
                    "value": "segsync:fans",
                },
                {"condition_type": "TextMerge", "field": "FNAME", "op": "is", "value": "ann"},
            ],
        }
        tag_ref = await connector.ensure_static("segsync:fans", None)
        same = await connector.ensure_static("segsync:fans", tag_ref)
        before = len(capture.writes())
        added = await connector.change_static_members(
            tag_ref, [f"s{i:03d}@segsync.dev" for i in range(600)] + ["x@segsync.dev"], []
        )
        bulk_calls = len(capture.writes()) - before
        moved = await connector.change_static_members(
            tag_ref, [], [f"s{i:03d}@segsync.dev" for i in range(1, 600)]
        )
        ref = await connector.publish_native("fans named ann", definition, None)
        members = [e async for e in connector.segment_members(ref)]
        updated = await connector.publish_native(
            "fans named ann", {**definition, "match": "any"}, ref
        )
        any_members = [e async for e in connector.segment_members(ref)]
        await connector.delete_owned("segment", ref)

        assert same == tag_ref
        assert bulk_calls == 2
        assert [r.ok for r in added][-1] is False
        assert all(r.ok for r in added[:-1])
        assert all(r.ok for r in moved)
        assert members == ["s000@segsync.dev"]
        assert updated == ref
        assert len(any_members) == 3
        assert int(ref) not in emu.lists[LIST].segments

    run(body)


def test_rename_goes_through_patch() -> None:
    """A new email is written with PATCH on the member (batch subscribe cannot rename)."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        emu.seed_member("old@segsync.dev")
        [result] = await connector.write(
            [ContactChange(email="old@segsync.dev", new_email="new@segsync.dev")]
        )

        assert result.ok
        assert [m for m, _, _ in capture.writes()] == ["PATCH"]

    run(body)


@pytest.mark.slow
def test_concurrency_stays_within_ten_connections() -> None:
    """Large writes run concurrently but never beyond Mailchimp's 10 connections."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock, latency_ms=50)
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST}, transport=emulator.transport(), clock=clock
    )
    changes = [
        ContactChange(email=f"c{i:05d}@segsync.dev", create=True) for i in range(5500)
    ]  # 11 batches: one must wait

    results = asyncio.run(connector.write(changes))

    assert all(r.ok for r in results)
    assert emulator.limits[0].peak == 10  # type: ignore[union-attr]
    assert emulator.rate_limited == 0


def test_shared_mapping_places_language_on_the_member() -> None:
    """The shipped mapping.yaml puts a text `language` on the member, lowercased both ways."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    schema = Schema(fields={"language": FieldSpec(type=FieldType.TEXT)})
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST},
        schema=schema,
        transport=emulator.transport(),
        clock=clock,
    )

    async def main() -> list[Any]:
        await connector.prepare(schema.fields, [])
        await connector.write(
            [ContactChange(email="lang@segsync.dev", create=True, fields={"language": "FR"})]
        )
        return [c async for p in connector.read() for c in p.contacts]

    [contact] = asyncio.run(main())
    member = emulator.get_member("lang@segsync.dev")

    assert member is not None
    assert member.language == "fr"
    assert "LANGUAGE" not in emulator.lists[LIST].merge_fields
    assert contact.fields == {"language": "fr"}


def test_marketing_permissions_where_configured() -> None:
    """A boolean field configured as a marketing permission is written and read there."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    emulator.lists[LIST].marketing_permissions["perm1"] = "Email"
    emulator.seed_member("gdpr@segsync.dev")
    schema = Schema(fields={"email_ok": FieldSpec(type=FieldType.BOOLEAN)})
    capture = Capture(emulator.transport())
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST, "marketing_permissions": {"email_ok": "perm1"}},
        schema=schema,
        transport=capture,
        clock=clock,
    )

    async def main() -> list[Any]:
        await connector.prepare(schema.fields, [])
        [result] = await connector.write(
            [ContactChange(email="gdpr@segsync.dev", fields={"email_ok": True})]
        )
        assert result.ok
        return [c async for p in connector.read() for c in p.contacts]

    [contact] = asyncio.run(main())
    member = emulator.get_member("gdpr@segsync.dev")

    assert member is not None
    assert member.marketing_permissions == {"perm1": True}
    assert "EMAIL_OK" not in emulator.lists[LIST].merge_fields
    assert [m for m, _, _ in capture.writes()] == ["PATCH"]
    assert contact.fields["email_ok"] is True


def test_publishing_a_condition_on_a_missing_merge_field_is_refused() -> None:
    """A definition naming a merge field the audience lacks is refused before any write."""

    async def body(world: World) -> None:
        _, connector, capture = world
        definition = {
            "match": "all",
            "conditions": [
                {"condition_type": "TextMerge", "field": "NOPE", "op": "is", "value": "x"}
            ],
        }
        with pytest.raises(PlatformCannotExpress, match="no merge field 'NOPE'"):
            await connector.publish_native("s", definition, None)

        assert capture.writes() == []

    run(body)
