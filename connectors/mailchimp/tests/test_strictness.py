"""The emulator takes the strict reading where Mailchimp's behaviour is unverified, and the
connector works under both readings; the connector is safe with hostile names and keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from segsync_mailchimp import MailchimpConfig, MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.api import SERVER_TIME_LIMIT, path_segment

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
BASE = "https://us21.api.mailchimp.com/3.0"
SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
HOSTILE = "a/b?c#d%e..f"


class Capture(httpx.AsyncBaseTransport):
    """Records every request (method, raw path without the query, JSON body)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.raw_path.decode().split("?", 1)[0], body))
        return await self.inner.handle_async_request(request)


World = tuple[MailchimpEmulator, MailchimpConnector, Capture]


def run(body: Callable[[World], Awaitable[None]], **emulator_options: Any) -> None:
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock, **emulator_options)
    capture = Capture(emulator.transport())
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST}, schema=SCHEMA, transport=capture, clock=clock
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, capture))

    asyncio.run(main())


def api(emulator: MailchimpEmulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=BASE, transport=emulator.transport(), auth=("anystring", KEY))


# -- the emulator's strict readings --------------------------------------------------------


def test_strict_defaults_and_their_lenient_switches() -> None:
    """Unverified behaviours default to the strict reading."""
    strict = MailchimpEmulator()
    assert strict.batch_items_need_status
    assert strict.tag_search_pages
    assert not strict.tag_changes_bump_last_changed
    assert strict.reject_fake_emails
    lenient = MailchimpEmulator(
        batch_items_need_status=False,
        tag_search_pages=False,
        tag_changes_bump_last_changed=True,
    )
    assert not lenient.batch_items_need_status
    assert not lenient.tag_search_pages


@pytest.mark.parametrize("pages", [True, False], ids=["strict", "lenient"])
def test_tag_search_pages_and_counts_every_match(pages: bool) -> None:
    """Tag search answers 10 tags a page (strict) with total_items counting all matches."""

    async def body(world: World) -> None:
        emulator, _, _ = world
        emulator.seed_member("a@segsync.dev", tags=[f"vip {i:02d}" for i in range(25)])
        async with api(emulator) as client:
            found = (await client.get(f"/lists/{LIST}/tag-search", params={"name": "VIP"})).json()
        assert found["total_items"] == 25
        assert len(found["tags"]) == (10 if pages else 25)

    run(body, tag_search_pages=pages)


@pytest.mark.parametrize("bump", [False, True], ids=["strict", "lenient"])
def test_tag_edits_move_last_changed_only_in_the_lenient_reading(bump: bool) -> None:
    async def body(world: World) -> None:
        emulator, _, _ = world
        member = emulator.seed_member("a@segsync.dev")
        before = member.last_changed
        assert isinstance(emulator.clock, VirtualClock)
        emulator.clock.advance(60)
        async with api(emulator) as client:
            answer = await client.post(
                f"/lists/{LIST}/members/{member.id}/tags",
                json={"tags": [{"name": "T", "status": "active"}]},
            )
        assert answer.status_code == 204
        assert (member.last_changed != before) is bump

    run(body, tag_changes_bump_last_changed=bump)


def test_post_lists_creates_an_audience_as_specified() -> None:
    """`POST /lists` (in the spec) creates an audience; missing required fields are named."""

    async def body(world: World) -> None:
        emulator, _, _ = world
        complete = {
            "name": "Newsletter",
            "contact": {
                "company": "Segsync",
                "address1": "1 Main St",
                "city": "Lyon",
                "country": "FR",
            },
            "permission_reminder": "You signed up on our site.",
            "campaign_defaults": {
                "from_name": "Segsync",
                "from_email": "news@segsync.dev",
                "subject": "News",
                "language": "en",
            },
            "email_type_option": False,
            "double_optin": True,
        }
        async with api(emulator) as client:
            created = await client.post("/lists", json=complete)
            partial = await client.post(
                "/lists", json={"name": "x", "contact": {"company": "Segsync"}}
            )
            listed = (await client.get("/lists")).json()
        assert created.status_code == 200
        audience = created.json()
        assert (audience["name"], audience["double_optin"]) == ("Newsletter", True)
        assert audience["id"] in emulator.lists
        assert audience["id"] in {x["id"] for x in listed["lists"]}
        assert partial.status_code == 400
        message = partial.json()["errors"][0]["message"]
        for field in ("permission_reminder", "campaign_defaults", "contact.city"):
            assert field in message

    run(body)


# -- the connector under both readings ----------------------------------------------------


@pytest.mark.parametrize("need_status", [True, False], ids=["strict", "lenient"])
def test_updates_that_leave_consent_alone_never_send_a_status(need_status: bool) -> None:
    """A field change of an existing member is written without sending any status (a PATCH),
    so a person who unsubscribed meanwhile stays unsubscribed; consent changes still batch."""

    async def body(world: World) -> None:
        emulator, connector, capture = world
        emulator.seed_member("kept@segsync.dev", "subscribed")
        emulator.seed_member("later@segsync.dev", "subscribed")
        _ = [p async for p in connector.read(None)]
        emulator.unsubscribe("later@segsync.dev")  # in Mailchimp, after segsync read it
        results = await connector.write(
            [
                ContactChange(email="kept@segsync.dev", fields={"first_name": "Kept"}),
                ContactChange(email="later@segsync.dev", fields={"first_name": "Later"}),
                ContactChange(
                    email="new@segsync.dev",
                    fields={"first_name": "New"},
                    consent=ConsentStatus.SUBSCRIBED,
                    create=True,
                ),
            ]
        )

        assert all(r.ok for r in results), results
        kept, later = (
            emulator.get_member("kept@segsync.dev"),
            emulator.get_member("later@segsync.dev"),
        )
        assert kept is not None
        assert later is not None
        assert (kept.status, kept.merge_fields["FNAME"]) == ("subscribed", "Kept")
        assert (later.status, later.merge_fields["FNAME"]) == ("unsubscribed", "Later")
        batch_items = [
            item
            for method, path, body in capture.sent
            if method == "POST" and path.endswith(f"/lists/{LIST}")
            for item in body["members"]
        ]
        assert batch_items
        assert all("status" in item for item in batch_items)
        patched = [body for method, _, body in capture.sent if method == "PATCH"]
        assert patched
        assert all("status" not in body for body in patched)

    run(body, batch_items_need_status=need_status)


@pytest.mark.parametrize("pages", [True, False], ids=["strict", "lenient"])
def test_the_exact_tag_is_found_among_many_with_its_prefix(pages: bool) -> None:
    """`find_owned` finds segsync's tag of a static segment (`segsync:<name>`, any case)
    named exactly, though 12 others start with its name and it is not on tag search's first
    page; never the person's tag named like the segment."""

    async def body(world: World) -> None:
        emulator, connector, _ = world
        tags = [*(f"segsync:vip {i:02d}" for i in range(12)), "segsync:VIP", "vip"]
        emulator.seed_member("a@segsync.dev", tags=tags)
        exact = next(s for s in emulator.lists[LIST].segments.values() if s.name == "segsync:VIP")
        assert await connector.find_owned("static", "vip") == str(exact.id)
        assert await connector.find_owned("static", "vi") is None

    run(body, tag_search_pages=pages)


def test_the_client_waits_beyond_mailchimps_own_time_limit() -> None:
    """A 500-member batch may take Mailchimp's 120 s: the client does not give up first."""
    connector = MailchimpConnector({"api_key": KEY, "list_id": LIST})
    timeout = connector.client._client.timeout
    assert timeout.read is not None
    assert timeout.read > SERVER_TIME_LIMIT


# -- security -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["/", "?", "#", "%", "..", ".", "a/../b", HOSTILE])
def test_a_path_segment_never_changes_the_target(value: str) -> None:
    segment = path_segment(value)
    assert not set(segment) & set("/?#")
    assert segment not in (".", "..")
    url = httpx.URL(f"{BASE}/lists/x/segments/{segment}/members")
    assert url.raw_path.decode().split("/")[-1] == "members"
    assert len(url.raw_path.decode().split("/")) == 7


def test_hostile_emails_and_tag_names_stay_inside_their_path_segment() -> None:
    """Emails and tag names with `/ ? # % ..` are written, tagged and read back as they are,
    and every request goes to the resource it names."""
    email = f"{HOSTILE}@segsync.dev"
    tag = f"tag {HOSTILE}"

    async def body(world: World) -> None:
        emulator, connector, capture = world
        results = await connector.write(
            [
                ContactChange(
                    email=email,
                    fields={"first_name": HOSTILE},
                    tags_add=frozenset({tag}),
                    consent=ConsentStatus.SUBSCRIBED,
                    create=True,
                )
            ]
        )
        assert all(r.ok for r in results), results
        found = await connector._find_tag(tag)  # the tag as written (a person's: not owned)
        assert found is not None
        ref = str(found)
        # a person's tag is never taken as a segment's: segsync makes its `segsync:` one
        assert await connector.ensure_static(tag, ref) != ref
        members = [m async for m in connector.segment_members(ref)]
        contacts = [c async for p in connector.read(None) for c in p.contacts]
        moved = await connector.change_static_members(ref, [], [email])

        assert members == [email]
        assert [(c.email, c.tags, c.fields["first_name"]) for c in contacts] == [
            (email, frozenset({tag}), HOSTILE)
        ]
        assert all(r.ok for r in moved)
        assert emulator.get_member_tags(email) == set()
        for _, path, _ in capture.sent:
            assert "?" not in path
            assert "#" not in path
            assert "/../" not in path
            assert not path.endswith("/..")

    run(body)


def test_a_crafted_reference_cannot_reach_another_segment() -> None:
    """A segment reference like `1/../2` names no segment: the other one is untouched."""

    async def body(world: World) -> None:
        emulator, connector, _ = world
        emulator.seed_member("a@segsync.dev", tags=["mine", "theirs"])
        segments = {s.name: s.id for s in emulator.lists[LIST].segments.values()}
        await connector.delete_owned("static", f"{segments['mine']}/../{segments['theirs']}")
        await connector.delete_owned("static", "..")
        assert set(emulator.get_member_tags("a@segsync.dev")) == {"mine", "theirs"}

    run(body)


@pytest.mark.parametrize(
    "key",
    [
        "0123456789abcdef0123456789abcdef-evil.com/x",
        "abc-evil.com/x",
        "0123456789abcdef0123456789abcdef-us21.evil.com",
        "0123456789abcdef0123456789abcdef-us21/",
        "0123456789abcdef0123456789abcdef-us21@evil",
        "0123456789abcdef0123456789abcdef",
    ],
)
def test_a_key_that_names_no_datacenter_is_a_config_error(key: str) -> None:
    """The datacenter becomes the host: a crafted key never sends the key elsewhere."""
    with pytest.raises(ValidationError) as caught:
        MailchimpConfig.model_validate({"api_key": key, "list_id": LIST})
    message = str(caught.value)
    assert "api_key" in message
    assert "us21" in message
    assert "base_url" in message
    assert key not in message


def test_a_real_shaped_key_names_its_datacenter() -> None:
    config = MailchimpConfig.model_validate({"api_key": KEY, "list_id": LIST})
    assert config.datacenter == "us21"
    assert config.api_root == "https://us21.api.mailchimp.com/3.0"
