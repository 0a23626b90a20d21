"""Calls at the minimum on Brevo: changed contacts through an import, no needless look-ups.

- A re-sync that changes a few dozen contacts writes them through one `/contacts/import`
  (a status read, a read-back, the temporary list of contacts without opt-in), not one
  `PUT` each: from `ImportCostModel.threshold()` on (single calls would take four times
  the requests).
- Contacts segsync has just created are added to its lists without a `GET` each: a new
  contact has unsubscribed from no list, and whether it may be in segsync's lists is what
  the write decided.

Against a lived-in account (a person's folder, list, attribute and blocklisted contact),
counted from the emulator's request log.
"""

from __future__ import annotations

import asyncio
import re

from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
SINGLE = re.compile(r"^(GET|PUT|POST) /v3/contacts/(?!folders$|lists$|import$|attributes$)[^/]+$")


def _connector(emulator: BrevoEmulator, clock: VirtualClock) -> BrevoConnector:
    return BrevoConnector(
        {"api_key": emulator.api_key}, schema=SCHEMA, transport=emulator.transport(), clock=clock
    )


def test_a_resync_of_a_few_dozen_changes_is_one_import() -> None:
    """24 contacts a person imported years ago (one blocklisted, several in the person's
    own list) get a new first name: one import, its status read and read-back, and the
    temporary list of contacts without opt-in made and deleted; no single-contact call.
    Every name is written, the blocklist stays, the person's list keeps its members."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    folder = emulator.seed_folder("Marketing")
    newsletter = emulator.seed_list("Newsletter", folder)
    emulator.seed_attribute("SHOE_SIZE", kind="float")
    emails = [f"p{i:02d}@lived.dev" for i in range(24)]
    for i, email in enumerate(emails):
        emulator.seed_contact(
            email,
            lists=(newsletter,) if i % 3 == 0 else (),
            blocklisted=i == 7,
            attributes={"FIRSTNAME": f"Old {i}", "SHOE_SIZE": 40 + i % 5},
        )
    connector = _connector(emulator, clock)

    async def main() -> None:
        async with connector:
            async for _page in connector.read(None):
                pass  # what a run's pull knows of the contacts
            await connector.prepare(SCHEMA.fields, [])
            assert connector.import_threshold() <= len(emails)
            start = len(emulator.log)
            results = await connector.write(
                [ContactChange(email=e, fields={"first_name": f"New {i}"})
                 for i, e in enumerate(emails)]
            )
            assert all(r.ok for r in results), [r for r in results if not r.ok][:2]
            calls = emulator.log.entries[start:]
            paths = [f"{c.method} {c.path}" for c in calls]
            assert not [p for p in paths if SINGLE.search(p)], paths
            assert paths.count("POST /v3/contacts/import") == 1
            # segsync's folder and base list (made once), the temporary list made, deleted
            assert paths.count("POST /v3/contacts/folders") == 1
            assert paths.count("POST /v3/contacts/lists") == 2
            assert sum(p.startswith("DELETE /v3/contacts/lists/") for p in paths) == 1
            assert paths.count("GET /v3/contacts") == 1  # the read-back
            assert len(calls) <= 8, paths  # and at most two status reads

    asyncio.run(main())
    for i, email in enumerate(emails):
        contact = emulator.contact(email)
        assert contact is not None
        assert contact.attributes["FIRSTNAME"] == f"New {i}"
        assert contact.attributes["SHOE_SIZE"] == 40 + i % 5
        assert (newsletter in contact.list_ids) == (i % 3 == 0)
        assert contact.email_blacklisted == (i == 7)
    assert [n for n in (v["name"] for v in emulator.lists.values()) if "import" in n] == [], (
        "the temporary list is gone"
    )


def test_contacts_just_created_join_a_list_without_a_look_up_each() -> None:
    """30 new subscribed contacts (an import) then added to segsync's segment list: one
    membership call and no `GET` of a contact; a lived-in contact the read saw, who
    unsubscribed from that list, is still never put back in it."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    emulator.seed_list("Customers")
    connector = _connector(emulator, clock)
    emails = [f"n{i:02d}@segsync.dev" for i in range(30)]

    async def main() -> None:
        async with connector:
            await connector.prepare(SCHEMA.fields, [])
            ref = await connector.ensure_static("vip", None)
            emulator.seed_contact("left@lived.dev", unsubscribed_lists=(int(ref),))
            async for _page in connector.read(None):
                pass
            results = await connector.write(
                [ContactChange(email=e, create=True, consent=ConsentStatus.SUBSCRIBED,
                               fields={"first_name": "N"}) for e in emails]
            )
            assert all(r.ok and r.created for r in results)
            start = len(emulator.log)
            added = await connector.change_static_members(ref, [*emails, "left@lived.dev"], [])
            paths = [f"{c.method} {c.path}" for c in emulator.log.entries[start:]]
            assert paths == [f"POST /v3/contacts/lists/{ref}/contacts/add"], paths
            left = [r for r in added if r.email == "left@lived.dev"]
            assert [r.code for r in left] == ["list_unsubscribed"]
            members = {c.email for c in emulator.contacts.values() if int(ref) in c.list_ids}
            assert members == set(emails)

    asyncio.run(main())


def test_once_an_import_was_measured_the_next_is_polled_once() -> None:
    """The first import is polled on an assumed estimate (early, then later); the next one,
    once the estimate is measured, with a single status read, and both are written."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    emulator.seed_list("Newsletter")
    connector = _connector(emulator, clock)
    polls = re.compile(r"^/v3/processes")

    async def main() -> list[int]:
        counts = []
        async with connector:
            await connector.prepare(SCHEMA.fields, [])
            for round_ in range(2):
                start = len(emulator.log)
                results = await connector.write(
                    [ContactChange(email=f"r{round_}-{i:02d}@segsync.dev", create=True,
                                   consent=ConsentStatus.SUBSCRIBED, fields={"first_name": "R"})
                     for i in range(24)]
                )
                assert all(r.ok and r.created for r in results)
                counts.append(sum(1 for c in emulator.log.entries[start:]
                                  if polls.search(c.path)))
        return counts

    first, second = asyncio.run(main())
    assert first >= 1
    assert second == 1
    assert connector.cost.learned
    assert all(emulator.contact(f"r1-{i:02d}@segsync.dev") is not None for i in range(24))
