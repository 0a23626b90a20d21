"""Renames: a member PATCH with another `email_address` changes the address and the
subscriber hash (the emulator does what Mailchimp does), and the connector counts a rename
done only when the member's answer shows the new address."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator, subscriber_hash
from segsync_mailchimp.write import RENAME_IGNORED

from segsync.clock import VirtualClock
from segsync.connector import ContactChange

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
BASE = f"/3.0/lists/{LIST}/members"


def _emulator() -> MailchimpEmulator:
    return MailchimpEmulator(clock=VirtualClock())


def _patch(emu: MailchimpEmulator, email: str, body: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=emu.transport(), base_url="http://mc") as c:
            return await c.patch(f"{BASE}/{subscriber_hash(email)}", json=body,
                                 auth=("any", KEY))

    return asyncio.run(go())


def test_the_emulator_renames_a_member_and_its_hash_follows() -> None:
    emu = _emulator()
    emu.seed_member("old@segsync.dev", tags=["vip"])

    answer = _patch(emu, "old@segsync.dev", {"email_address": "New@segsync.dev"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["email_address"] == "New@segsync.dev"
    assert answer.json()["id"] == subscriber_hash("new@segsync.dev")
    members = emu.lists[LIST].members
    assert subscriber_hash("old@segsync.dev") not in members
    assert members[subscriber_hash("new@segsync.dev")].email_address == "New@segsync.dev"
    [vip] = [s for s in emu.lists[LIST].segments.values() if s.name == "vip"]
    assert list(vip.members) == [subscriber_hash("new@segsync.dev")]  # the tag follows
    assert _patch(emu, "old@segsync.dev", {"language": "fr"}).status_code == 404


def test_the_emulator_refuses_a_rename_onto_a_member() -> None:
    emu = _emulator()
    emu.seed_member("old@segsync.dev")
    emu.seed_member("taken@segsync.dev")

    answer = _patch(emu, "old@segsync.dev",
                    {"email_address": "taken@segsync.dev", "language": "fr"})

    assert answer.status_code == 400
    assert answer.json()["title"] == "Member Exists"
    old = emu.lists[LIST].members[subscriber_hash("old@segsync.dev")]
    assert (old.email_address, old.language) == ("old@segsync.dev", "")


def _connector(transport: httpx.AsyncBaseTransport) -> MailchimpConnector:
    return MailchimpConnector({"api_key": KEY, "list_id": LIST}, transport=transport,
                              clock=VirtualClock())


async def _write(connector: MailchimpConnector, change: ContactChange) -> Any:
    async with connector:
        [result] = await connector.write([change])
        return result


def test_a_rename_is_done_when_the_platform_shows_it() -> None:
    emu = _emulator()
    emu.seed_member("old@segsync.dev")

    result = asyncio.run(_write(_connector(emu.transport()),
                                ContactChange(email="old@segsync.dev",
                                              new_email="new@segsync.dev")))

    assert result.ok, result
    assert subscriber_hash("new@segsync.dev") in emu.lists[LIST].members


def test_a_refused_rename_is_a_failed_record() -> None:
    emu = _emulator()
    emu.seed_member("old@segsync.dev")
    emu.seed_member("taken@segsync.dev")

    result = asyncio.run(_write(_connector(emu.transport()),
                                ContactChange(email="old@segsync.dev",
                                              new_email="taken@segsync.dev")))

    assert not result.ok
    assert "already a list member" in (result.error or "")


class _IgnoresRenames(httpx.AsyncBaseTransport):
    """A platform that answers 200 to a member PATCH but leaves the address as it was."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and request.content:
            body = json.loads(request.content)
            body.pop("email_address", None)
            request = httpx.Request("PATCH", request.url, headers=request.headers,
                                    json=body)
        return await self.inner.handle_async_request(request)


def test_an_ignored_rename_is_a_failed_record_not_done() -> None:
    emu = _emulator()
    emu.seed_member("old@segsync.dev")

    result = asyncio.run(_write(_connector(_IgnoresRenames(emu.transport())),
                                ContactChange(email="old@segsync.dev",
                                              new_email="new@segsync.dev")))

    assert not result.ok
    assert result.code == RENAME_IGNORED
    assert "new@segsync.dev" in (result.error or "")
    assert subscriber_hash("old@segsync.dev") in emu.lists[LIST].members
