"""Brevo's official client (`brevo-python`) reads back, over loopback, the lists, folders,
attributes, contact details (with `statistics`) and import processes behind what the connector
wrote, in the shapes Brevo's description gives them (the SDK's typed models parse them)."""

from __future__ import annotations

import asyncio

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

brevo = pytest.importorskip("brevo", reason="brevo-python is not installed")

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE")),
    }
)


@pytest.mark.slow
def test_official_client_reads_lists_attributes_statistics_and_processes() -> None:
    """Lists both ways (a list's members, a contact's lists), the owned folder's lists, the
    attributes segsync made, a contact's statistics and the processes of an import."""
    emulator = BrevoEmulator(tier="extended")
    with emulator.serving() as base_url:

        async def write() -> None:
            connector = BrevoConnector(
                {"api_key": emulator.api_key, "base_url": base_url, "tier": "extended",
                 "import_threshold": 3},
                schema=SCHEMA,
            )
            async with connector:
                await connector.prepare(SCHEMA.fields, ["vip", "b2b"])
                results = await connector.write(
                    [
                        ContactChange(
                            email=f"p{i}@example.com",
                            create=True,
                            fields={"first_name": f"P{i}", "country": ("FR", "BE")[i % 2]},
                            consent=ConsentStatus.SUBSCRIBED,
                            tags_add=frozenset({"vip"} if i % 2 else {"vip", "b2b"}),
                        )
                        for i in range(4)
                    ]
                )
                assert all(r.ok for r in results), results

        asyncio.run(write())
        client = brevo.Brevo(api_key=emulator.api_key, base_url=base_url, max_retries=0)
        every_list = client.contacts.get_lists(limit=50, offset=0).lists or []
        folder = next(f for f in client.contacts.get_folders(limit=10, offset=0).folders or []
                      if f.name == "segsync")
        in_folder = client.contacts.get_folder_lists(folder.id).lists or []
        b2b = next(item for item in every_list if item.name == "tag: b2b")
        one = client.contacts.get_list(b2b.id)
        members = client.contacts.get_contacts_from_list(b2b.id).contacts or []
        p0 = client.contacts.get_contact_info("p0@example.com")
        attributes = {a.name: a for a in client.contacts.get_attributes().attributes or []}
        processes = client.process.get_processes(limit=10).processes or []
        process = client.process.get_process(processes[0].id)

    assert {item.name for item in in_folder} >= {"tag: vip", "tag: b2b"}
    assert all(item.folder_id is not None for item in every_list)
    assert one.folder_id == folder.id
    assert one.unique_subscribers == 2
    assert sorted(c.email for c in members) == ["p0@example.com", "p2@example.com"]
    assert b2b.id in (p0.list_ids or [])
    assert p0.statistics is not None
    assert p0.statistics.messages_sent == []
    assert {"COUNTRY", "FIRSTNAME"} <= set(attributes)
    assert [e.label for e in attributes["COUNTRY"].enumeration or []] == ["FR", "BE"]
    assert processes
    assert all(p.name == "IMPORTUSER" for p in processes)
    assert process.status == "completed"
