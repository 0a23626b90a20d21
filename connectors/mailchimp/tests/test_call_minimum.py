"""Calls at the minimum: tag memberships of concurrent write batches share their calls.

The engine writes a plan in batches of `write_batch_size` (500), several at once. Each tag's
members go to Mailchimp 500 adds + 500 removes a call for all those batches together, not
per batch and tag. Against a lived-in audience (members in every status, the user's own
tags), counted from the emulator's request log.
"""

from __future__ import annotations

import asyncio
import collections

from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
LIST = MailchimpEmulator.default_list_id


def _calls(emulator: MailchimpEmulator, start: int) -> collections.Counter[str]:
    """Requests since `start` in the emulator's log, by method and path pattern."""
    out: collections.Counter[str] = collections.Counter()
    for entry in emulator.log.entries[start:]:
        path = str(entry.path)
        if "/segments/" in path:
            path = "segments/{id}"
        elif path.rstrip("/").endswith(f"/lists/{LIST}"):
            path = "lists/{id}"
        out[f"{entry.method} {path}"] += 1
    return out


def test_tags_of_concurrent_batches_go_in_one_set_of_calls_per_tag() -> None:
    """Three batches (200 new members each) written at once, each member tagged `vip` and
    the user's own `Webinar`; lived-in members re-tagged beside them: 2 calls per tag
    (ceil(601 / 500)), not one per batch and tag; every member holds its tags, the lived-in
    members keep their status and the tags nobody asked to change."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    people = emulator.seed_lived_in()
    connector = MailchimpConnector(
        {"api_key": emulator.api_key, "list_id": LIST},
        schema=SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )
    new = [
        ContactChange(
            email=f"p{i:04d}@segsync.dev",
            create=True,
            fields={"first_name": f"P{i}"},
            consent=ConsentStatus.SUBSCRIBED if i % 2 else None,
            tags_add=frozenset({"vip", "Webinar"}),
        )
        for i in range(600)
    ]
    lived_in = [
        ContactChange(email="ada.subscribed@lived.dev", tags_add=frozenset({"vip"})),
        ContactChange(email="ben.pending@lived.dev", tags_remove=frozenset({"Webinar"})),
    ]
    batches = [new[:200], new[200:400], new[400:] + lived_in]

    async def main() -> list[bool]:
        async with connector:
            async for _page in connector.read(None):
                pass
            await connector.prepare(SCHEMA.fields, ["vip", "Webinar"])
            start = len(emulator.log)
            answers = await asyncio.gather(*(connector.write(b) for b in batches))
            calls = _calls(emulator, start)
            assert calls["POST segments/{id}"] == 4, calls
            assert calls["POST lists/{id}"] == 3, calls
            assert sum(calls.values()) == 7, calls
            return [r.ok for rs in answers for r in rs]

    oks = asyncio.run(main())
    assert len(oks) == 602
    assert all(oks)
    for i in (0, 199, 200, 599):
        assert emulator.get_member_tags(f"p{i:04d}@segsync.dev") == {"vip", "Webinar"}
    assert emulator.get_member_tags("ada.subscribed@lived.dev") == {
        "Customers 2023", "Webinar", "vip",
    }
    assert emulator.get_member_tags("ben.pending@lived.dev") == set()
    for email, status in people.items():
        member = emulator.get_member(email)
        assert member is not None
        assert member.status == status
    assert emulator.get_member_tags("dee.unsubscribed@lived.dev") == {"Customers 2023"}


def test_a_failing_batch_does_not_hold_up_the_others_tags() -> None:
    """A batch whose write raises leaves the pool: the other batch's tags are still sent."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    emulator.seed_lived_in()
    connector = MailchimpConnector(
        {"api_key": emulator.api_key, "list_id": LIST},
        schema=SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )
    good = [
        ContactChange(email=f"g{i}@segsync.dev", create=True, tags_add=frozenset({"vip"}))
        for i in range(3)
    ]

    async def broken() -> None:
        pool = connector._tag_pool()
        ticket = pool.join()
        try:
            await asyncio.sleep(0)
            raise RuntimeError("this batch failed before its tags")
        finally:
            pool.leave(ticket)

    async def main() -> list[bool]:
        async with connector:
            await connector.prepare(SCHEMA.fields, ["vip"])
            answers = await asyncio.gather(connector.write(good), broken(),
                                           return_exceptions=True)
            assert isinstance(answers[1], RuntimeError)
            results = answers[0]
            assert isinstance(results, list)
            return [r.ok for r in results]

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [True, True, True]
    assert emulator.get_member_tags("g2@segsync.dev") == {"vip"}
