"""The official `mailchimp-marketing` client reads back what the connector wrote.

The emulator is served on a free 127.0.0.1 port (uvicorn in a background thread); the
connector writes members, tags and a saved segment over HTTP; the vendor's SDK, pointed at
the same address, lists them.
"""

from __future__ import annotations

import asyncio

import pytest
from segsync_mailchimp import MailchimpCompiler, MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.emulator import subscriber_hash

from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync.rules.parser import parse

mailchimp_marketing = pytest.importorskip("mailchimp_marketing")

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE")),
    }
)
LIST = MailchimpEmulator.default_list_id


@pytest.mark.slow
def test_official_sdk_reads_back_members_tags_and_segments() -> None:
    """Members, their tags and the published saved segment are what the SDK sees."""
    emulator = MailchimpEmulator()
    with emulator.serving() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/3.0")

        async def write() -> str:
            async with MailchimpConnector(
                {"api_key": emulator.api_key, "list_id": LIST, "base_url": base_url},
                schema=SCHEMA,
            ) as connector:
                await connector.check()
                await connector.prepare(SCHEMA.fields, ["vip", "fr-team"])
                results = await connector.write(
                    [
                        ContactChange(
                            email="ada@segsync.dev",
                            create=True,
                            fields={"first_name": "Ada", "country": "FR"},
                            consent=ConsentStatus.SUBSCRIBED,
                            tags_add=frozenset({"vip", "fr-team"}),
                        ),
                        ContactChange(
                            email="alan@segsync.dev",
                            create=True,
                            fields={"first_name": "Alan", "country": "BE"},
                            tags_add=frozenset({"vip"}),
                        ),
                    ]
                )
                assert all(r.ok for r in results), results
                compiled = MailchimpCompiler(SCHEMA).compile(
                    "french vips", parse('country = "FR" and tags has "vip"')
                )
                assert compiled.mode == "native"
                assert compiled.definition is not None
                return await connector.publish_native("french vips", compiled.definition, None)

        segment_id = asyncio.run(write())
        client = mailchimp_marketing.Client()
        client.set_config({"api_key": emulator.api_key, "server": "us21"})
        client.api_client.host = base_url

        assert client.ping.get() == {"health_status": "Everything's Chimpy!"}
        members = client.lists.get_list_members_info(LIST, count=1000)
        by_email = {m["email_address"]: m for m in members["members"]}
        tags = client.lists.get_list_member_tags(LIST, subscriber_hash("ada@segsync.dev"))
        segments = client.lists.list_segments(LIST, count=1000)
        segment = client.lists.get_segment(LIST, segment_id)
        segment_members = client.lists.get_segment_members_list(LIST, segment_id)

    assert set(by_email) == {"ada@segsync.dev", "alan@segsync.dev"}
    assert by_email["ada@segsync.dev"]["merge_fields"]["FNAME"] == "Ada"
    assert by_email["ada@segsync.dev"]["status"] == "subscribed"
    assert by_email["alan@segsync.dev"]["status"] == "transactional"
    assert sorted(t["name"] for t in tags["tags"]) == ["fr-team", "vip"]
    assert {s["name"]: s["type"] for s in segments["segments"]} == {
        "vip": "static",
        "fr-team": "static",
        "french vips": "saved",
    }
    assert segment["options"]["match"] == "all"
    assert [m["email_address"] for m in segment_members["members"]] == ["ada@segsync.dev"]
