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


def test_a_rename_keeps_the_contact_id_and_a_new_member_at_the_old_address_has_its_own() -> None:
    """`contact_id` is the member's, whatever its address: kept by a rename (also in batch
    subscribe answers), never given to a later member at the old address."""
    emu = _emulator()
    before = emu.seed_member("old@segsync.dev").contact_id

    renamed = _patch(emu, "old@segsync.dev", {"email_address": "new@segsync.dev"}).json()

    assert (renamed["contact_id"], renamed["unique_email_id"]) == (
        before, emu.lists[LIST].members[subscriber_hash("new@segsync.dev")].unique_email_id)
    assert renamed["id"] != subscriber_hash("old@segsync.dev")

    async def batch() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=emu.transport(), base_url="http://mc") as c:
            answer = await c.post(f"/3.0/lists/{LIST}", auth=("any", KEY), json={
                "update_existing": True,
                "members": [{"email_address": "old@segsync.dev", "status": "subscribed"},
                            {"email_address": "new@segsync.dev", "status": "subscribed"}]})
            return dict(answer.json())

    answer = asyncio.run(batch())
    [again] = answer["new_members"]
    [updated] = answer["updated_members"]
    assert updated["contact_id"] == before
    assert again["email_address"] == "old@segsync.dev"
    assert again["contact_id"] != before


def test_the_connector_links_a_member_by_contact_id_across_a_rename() -> None:
    """`read` gives the contact_id as the platform id (the hash as its alias); a write
    answers the same id for a member it renamed."""
    emu = _emulator()
    emu.seed_member("old@segsync.dev")
    contact_id = emu.lists[LIST].members[subscriber_hash("old@segsync.dev")].contact_id

    async def go() -> tuple[list[Any], list[Any]]:
        connector = MailchimpConnector({"api_key": KEY, "list_id": LIST},
                                       transport=emu.transport(), clock=emu.clock)
        try:
            read = [c async for page in connector.read(None) for c in page.contacts]
            results = await connector.write(
                [ContactChange(email="old@segsync.dev", platform_id=contact_id,
                               new_email="new@segsync.dev")])
            return read, results
        finally:
            await connector.aclose()

    read, results = asyncio.run(go())

    [member] = read
    assert (member.platform_id, member.aliases) == (
        contact_id, frozenset({subscriber_hash("old@segsync.dev")}))
    assert [(r.ok, r.platform_id) for r in results] == [(True, contact_id)]
    assert emu.lists[LIST].members[subscriber_hash("new@segsync.dev")].contact_id == contact_id


def test_member_paths_take_the_contact_id_as_the_spec_says() -> None:
    """GET/PATCH/DELETE `/members/{x}` take a `contact_id` too (spec 3.0.85), whatever the
    member's address now; the sub-resources (tags) only the hash or the address."""
    emu = _emulator()
    emu.seed_member("old@segsync.dev")
    _patch(emu, "old@segsync.dev", {"email_address": "new@segsync.dev"})
    contact_id = emu.lists[LIST].members[subscriber_hash("new@segsync.dev")].contact_id

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=emu.transport(), base_url="http://mc") as c:
            return [await c.get(f"{BASE}/{contact_id}", auth=("any", KEY)),
                    await c.get(f"{BASE}/{contact_id}/tags", auth=("any", KEY))]

    member, tags = asyncio.run(go())

    assert member.status_code == 200
    assert member.json()["email_address"] == "new@segsync.dev"
    assert tags.status_code == 404


def test_erase_finds_the_linked_member_renamed_since_by_its_contact_id() -> None:
    """`segsync erase` of a person whose linked member holds another address now: the
    member is found by its contact_id and permanently deleted, not called absent."""
    emu = _emulator()
    emu.seed_member("old@segsync.dev")
    contact_id = emu.lists[LIST].members[subscriber_hash("old@segsync.dev")].contact_id
    _patch(emu, "old@segsync.dev", {"email_address": "new@segsync.dev"})

    async def go() -> Any:
        connector = MailchimpConnector({"api_key": KEY, "list_id": LIST},
                                       transport=emu.transport(), clock=emu.clock)
        try:
            return await connector.erase("old@segsync.dev", contact_id)
        finally:
            await connector.aclose()

    result = asyncio.run(go())

    assert (result.confirmed, result.already_absent) == (True, False)
    assert emu.lists[LIST].members == {}
    assert subscriber_hash("new@segsync.dev") in emu.lists[LIST].forgotten


def test_a_person_signing_up_again_stays_the_same_member() -> None:
    """Seeding an address the audience holds (the person signs up again on a form) keeps
    the member's `contact_id`: it is the same member, not a new one."""
    emu = _emulator()
    first = emu.seed_member("jon@segsync.dev", "transactional")

    again = emu.seed_member("jon@segsync.dev", "subscribed")

    assert (again.contact_id, again.unique_email_id, again.web_id) == (
        first.contact_id, first.unique_email_id, first.web_id)
