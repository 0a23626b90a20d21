"""A creation for a member archived before segsync linked her (read as a deletion, never
linked) is never sent: Mailchimp's batch subscribe would add her back. The connector answers
it `deleted` (code `MemberArchived`); other people's creations in the batch go through."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.write import MEMBER_ARCHIVED

from segsync.clock import VirtualClock
from segsync.connector import ChangeResult, ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
ERIN = "erin@people.dev"


class Capture(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        return await self.inner.handle_async_request(request)


def test_a_creation_for_an_archived_member_is_answered_deleted_not_sent() -> None:
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    emulator.seed_lived_in()  # people in every status, besides erin
    erin = emulator.seed_member(ERIN, "subscribed", merge_fields={"FNAME": "Erin"})
    erin.status = "archived"  # hook: archive_member(email); before segsync's first read
    capture = Capture(emulator.transport())
    connector = MailchimpConnector(
        {"api_key": MailchimpEmulator.default_api_key,
         "list_id": MailchimpEmulator.default_list_id},
        schema=SCHEMA, transport=capture, clock=clock,
    )

    async def main() -> list[ChangeResult]:
        async with connector:
            read = [c async for page in connector.read(None) for c in page.contacts]
            assert [c.deleted for c in read if c.email == ERIN] == [True]
            capture.sent.clear()
            results: list[ChangeResult] = await connector.write([
                ContactChange(email=ERIN, create=True, consent=ConsentStatus.SUBSCRIBED,
                              fields={"first_name": "Erin"}),
                ContactChange(email="fay@people.dev", create=True,
                              consent=ConsentStatus.NON_SUBSCRIBED),
            ])
            return results

    results = asyncio.run(main())

    assert [(r.email, r.ok, r.deleted, r.code) for r in results] == [
        (ERIN, False, True, MEMBER_ARCHIVED), ("fay@people.dev", True, False, None)]
    assert results[0].platform_id == erin.contact_id
    assert erin.status == "archived"
    sent = [m["email_address"] for _, _, body in capture.sent if body
            for m in body.get("members", [body])]
    assert ERIN not in sent
    assert "fay@people.dev" in sent
