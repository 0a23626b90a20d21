"""Engagement read from Mailchimp: member stats, campaign email activity, no data is not zero."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.responsecheck import response_validator
from segsync_mailchimp.speccheck import SpecChecker, SpecCheckingTransport, default_spec_dir

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync.testing.responses import ResponseCheckingTransport

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
SPEC_DIR = default_spec_dir()
SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "location_country": FieldSpec(type=FieldType.TEXT, read_only=True),
        "timezone": FieldSpec(type=FieldType.TEXT, read_only=True),
        "birthday_mmdd": FieldSpec(type=FieldType.TEXT, read_only=True),
        "opt_in_ip": FieldSpec(type=FieldType.TEXT, read_only=True),
    }
)
World = tuple[MailchimpEmulator, MailchimpConnector, VirtualClock]


def run(body: Callable[[World], Awaitable[None]]) -> None:
    """`body` on a fresh emulator; every request must fit the API description, and every
    JSON answer too (when the description is here)."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    transport: httpx.AsyncBaseTransport = emulator.transport()
    answers = response_validator()
    answer_check = None
    if answers is not None:
        answer_check = ResponseCheckingTransport(transport, answers)
        transport = answer_check
    request_check = None
    if SPEC_DIR.is_dir():
        request_check = SpecCheckingTransport(transport, SpecChecker(SPEC_DIR))
        transport = request_check
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST}, schema=SCHEMA, transport=transport, clock=clock
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, clock))

    asyncio.run(main())
    assert request_check is None or request_check.summary() == []
    assert answer_check is None or answer_check.problems == []


async def read_all(connector: MailchimpConnector) -> dict[str, Any]:
    return {c.email: c for p in [p async for p in connector.read()] for c in p.contacts}


async def refresh(connector: MailchimpConnector) -> dict[str, dict[str, Any]]:
    """Engagement values by email (checked to be keyed by the platform ids `read` gives)."""
    values: dict[str, dict[str, Any]] = {}
    async for page in connector.read_engagement(None):
        values.update({k: dict(v) for k, v in page.values.items()})
    emails = {c.platform_id: c.email for c in (await read_all(connector)).values()}
    assert set(values) <= set(emails), "values keyed by the platform ids `read` gives"
    return {emails[k]: v for k, v in values.items()}


def test_copy_segsync_created_has_no_engagement_until_a_send() -> None:
    """A member segsync created reads no rate, no rating, no opt-in time (Mailchimp shows
    0.0, 2 and the write time); once a campaign is sent to it the figures are read."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        await connector.prepare(SCHEMA.fields, [])
        await connector.write(
            [ContactChange(email="copy@segsync.dev", create=True, consent=ConsentStatus.SUBSCRIBED)]
        )
        member = emu.get_member("copy@segsync.dev")
        assert member is not None
        assert member.member_rating == 2
        assert member.timestamp_opt
        copy = (await read_all(connector))["copy@segsync.dev"]
        assert copy.engagement == {}
        assert await refresh(connector) == {}

        campaign = emu.record_campaign()
        emu.record_send("copy@segsync.dev", campaign)
        values = (await refresh(connector))["copy@segsync.dev"]
        assert values == {
            "emails_delivered": 1,
            "opens": 0,
            "clicks": 0,
            "open_rate": 0.0,
            "click_rate": 0.0,
            "member_rating": 2,
        }

    run(body)


def test_engagement_from_sends_opens_clicks_and_seeded_members() -> None:
    """A pre-existing member signed up by form keeps its sign-up facts; activity recorded in
    two campaigns is tallied per member, bounces are not deliveries."""

    async def body(world: World) -> None:
        emu, connector, clock = world
        emu.seed_lived_in()
        t0 = clock.now()
        emu.seed_member(
            "reader@example.com",
            "subscribed",
            timestamp_signup="2021-05-01T10:00:00+00:00",
            timestamp_opt="2021-05-01T10:05:00+00:00",
            ip_opt="203.0.113.9",
            source="Hosted Signup Form",
            member_rating=4,
            location={"country_code": "fr", "timezone": "Europe/Paris"},
        )
        emu.seed_member("bounce@example.com", "subscribed")
        first, second = emu.record_campaign(), emu.record_campaign()
        for campaign in (first, second):
            emu.record_send("reader@example.com", campaign)
        emu.record_send("bounce@example.com", first)
        emu.record_bounce("bounce@example.com", first)
        emu.record_open("reader@example.com", first, at=t0 + dt.timedelta(hours=1))
        emu.record_open("reader@example.com", first, at=t0 + dt.timedelta(hours=3))
        emu.record_click("reader@example.com", first, at=t0 + dt.timedelta(hours=2))

        reader = (await read_all(connector))["reader@example.com"]
        assert reader.engagement["open_rate"] == 0.5
        assert reader.engagement["member_rating"] == 4
        assert reader.engagement["signup_at"] == dt.datetime(2021, 5, 1, 10, tzinfo=dt.UTC)
        assert reader.engagement["opted_in_at"] == dt.datetime(2021, 5, 1, 10, 5, tzinfo=dt.UTC)
        assert reader.engagement["signup_source"] == "Hosted Signup Form"
        assert reader.fields["location_country"] == "FR"
        assert reader.fields["timezone"] == "Europe/Paris"
        assert reader.fields["opt_in_ip"] == "203.0.113.9"

        values = await refresh(connector)
        got = values["reader@example.com"]
        assert got["emails_delivered"] == 2
        assert (got["opens"], got["clicks"]) == (1, 1)  # emails opened: one, opened twice
        assert got["last_open"] == t0 + dt.timedelta(hours=3)
        assert got["last_click"] == t0 + dt.timedelta(hours=2)
        assert got["open_rate"] == 0.5
        assert got["click_rate"] == 0.5
        bounced = values["bounce@example.com"]
        assert bounced["emails_delivered"] == 0
        assert "last_open" not in bounced
        # members seeded but never emailed have no data at all
        assert all(key in ("reader@example.com", "bounce@example.com") for key in values)

    run(body)


def test_open_rate_change_seen_by_read_engagement_without_last_changed() -> None:
    """An open moves `stats` but not `last_changed`: an incremental read misses it,
    `read_engagement` sees it."""

    async def body(world: World) -> None:
        emu, connector, clock = world
        emu.seed_member("late@example.com", "subscribed", source="Hosted Signup Form")
        campaign = emu.record_campaign()
        emu.record_send("late@example.com", campaign)
        cursor = None
        async for page in connector.read():
            cursor = page.cursor
        before = emu.get_member("late@example.com")
        assert before is not None
        changed = before.last_changed
        assert (await refresh(connector))["late@example.com"]["open_rate"] == 0

        clock.advance(3600)
        emu.record_open("late@example.com", campaign)
        assert before.last_changed == changed
        clock.advance(3600)
        again = [c for p in [p async for p in connector.read(cursor)] for c in p.contacts]
        assert "late@example.com" not in {c.email for c in again}
        got = (await refresh(connector))["late@example.com"]
        assert got["open_rate"] == 1.0
        assert got["opens"] == 1
        assert got["last_open"] == clock.now() - dt.timedelta(seconds=3600)

    run(body)


def test_email_activity_and_campaigns_follow_the_spec() -> None:
    """The emulator's answers carry only properties the spec names, and `since` filters."""
    spec_file = SPEC_DIR / "marketing-3.0.85.openapi3.ballerina.json"
    if not spec_file.is_file():
        pytest.skip("the Mailchimp spec is not here")
    spec = json.loads(spec_file.read_text())
    schemas = spec["components"]["schemas"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = schemas[node["$ref"].split("/")[-1]]
        return node

    op = spec["paths"]["/reports/{campaignId}/email-activity"]["get"]
    top = resolve(op["responses"]["200"]["content"]["application/json"]["schema"])
    item = resolve(resolve(top["properties"]["emails"])["items"])
    action = resolve(resolve(item["properties"]["activity"])["items"])

    async def body(world: World) -> None:
        emu, connector, clock = world
        emu.seed_member("a@example.com", "subscribed")
        emu.seed_member("b@example.com", "subscribed")
        campaign = emu.record_campaign()
        emu.record_send("a@example.com", campaign)
        emu.record_send("b@example.com", campaign)
        emu.record_open("a@example.com", campaign)
        clock.advance(60)
        since = clock.now()
        clock.advance(60)
        emu.record_click("b@example.com", campaign)
        client = connector.client
        answer = await client.get_json(
            f"/reports/{campaign}/email-activity", endpoint="x", params={"count": 1000}
        )
        assert set(answer) <= set(top["properties"])
        assert answer["total_items"] == 2
        for entry in answer["emails"]:
            assert set(entry) <= set(item["properties"])
            for act in entry["activity"]:
                assert set(act) <= set(action["properties"])
        recent = await client.get_json(
            f"/reports/{campaign}/email-activity",
            endpoint="x",
            params={"since": since.isoformat()},
        )
        assert [e["email_address"] for e in recent["emails"]] == ["b@example.com"]
        assert [a["action"] for a in recent["emails"][0]["activity"]] == ["click"]
        listed = await client.get_json(
            "/campaigns", endpoint="x", params={"list_id": LIST, "status": "sent"}
        )
        assert [c["id"] for c in listed["campaigns"]] == [campaign]

    run(body)
