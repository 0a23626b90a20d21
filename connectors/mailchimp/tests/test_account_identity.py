"""`MailchimpConnector.account_identity`: the API root's account id (`GET /`, only the
fields needed) with the configured audience; another account or audience is another
identity."""

from __future__ import annotations

import asyncio

from segsync_mailchimp import MailchimpConnector, MailchimpEmulator


def connector_for(emulator: MailchimpEmulator, list_id: str) -> MailchimpConnector:
    return MailchimpConnector(
        {"api_key": emulator.api_key, "list_id": list_id}, transport=emulator.transport()
    )


def test_the_identity_is_the_account_and_the_audience_in_one_call() -> None:
    emulator = MailchimpEmulator()
    connector = connector_for(emulator, emulator.default_list_id)

    found = asyncio.run(connector.account_identity())

    assert found.id == f"{emulator.account_id}/{emulator.default_list_id}"
    assert found.label == f"segsync emulator, audience {emulator.default_list_id}"
    assert connector.stats.calls == 1
    assert emulator.log.count("GET", "/3.0/", 200) == 1


def test_another_audience_or_account_is_another_identity() -> None:
    emulator = MailchimpEmulator()
    other = emulator.seed_list("Another audience")
    first = asyncio.run(connector_for(emulator, emulator.default_list_id).account_identity())
    audience = asyncio.run(connector_for(emulator, other.id).account_identity())
    emulator.account_id = "f00dfeedf00dfeedf00dfeed0"
    account = asyncio.run(connector_for(emulator, emulator.default_list_id).account_identity())

    assert len({first.id, audience.id, account.id}) == 3


def test_the_root_answers_only_the_fields_asked() -> None:
    emulator = MailchimpEmulator()

    async def root() -> dict[str, object]:
        connector = connector_for(emulator, emulator.default_list_id)
        body = await connector.client.get_json("/", endpoint="GET /",
                                               params={"fields": "account_id,account_name"})
        return dict(body)

    assert set(asyncio.run(root())) == {"account_id", "account_name"}
