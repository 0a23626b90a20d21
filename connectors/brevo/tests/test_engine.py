"""The sync engine drives the Brevo connector: segments become lists, reruns write nothing."""

from __future__ import annotations

import asyncio
import random

from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.model import ConsentStatus, PublishMode
from segsync.rules import load_rule
from segsync.state import open_store
from segsync.sync import Engine
from segsync.sync.engine import SegmentTarget
from segsync.testing.data import DEFAULT_SCHEMA, change_for, sample_contacts


def test_sync_materialises_segments_and_converges() -> None:
    """A run fills the segment's owned list with its subscribed members (the others are
    left out as `unconsented`); the next run writes nothing.

    The subscribed people signed up through the user's newsletter list, declared as a
    consent list (their evidence); segsync's own consent attribute, written for everyone,
    is no evidence, so the others stay unknown."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    contacts = sample_contacts(DEFAULT_SCHEMA, 30, random.Random(1))
    rule = load_rule('country = "FR"', DEFAULT_SCHEMA)
    newsletter = emulator.seed_list("Newsletter")
    for contact in contacts:
        if contact.consent.status is ConsentStatus.SUBSCRIBED:
            emulator.seed_contact(contact.email, lists=(newsletter,))

    async def main() -> None:
        connector = BrevoConnector(
            {"api_key": emulator.api_key, "consent": {"lists": [newsletter]}},
            schema=DEFAULT_SCHEMA,
            transport=emulator.transport(),
            clock=clock,
        )
        async with connector:
            await connector.prepare(DEFAULT_SCHEMA.fields, ["alpha", "beta", "gamma"])
            await connector.write([change_for(c) for c in contacts])
            store = open_store("sqlite:///:memory:", clock=clock)
            engine = Engine(
                {"brevo": connector},
                store,
                schema=DEFAULT_SCHEMA,
                clock=clock,
                segments=[SegmentTarget("french", rule, {"brevo": PublishMode.AUTO})],
            )
            first = await engine.sync()
            clock.advance(60)
            second = await engine.sync()
            store.close()

        [listed] = [i for i, d in emulator.lists.items() if d["name"] == "segment: french"]
        members = {c.email for c in emulator.contacts.values() if listed in c.list_ids}
        french = {c.email for c in contacts if c.fields["country"] == "FR"}
        subscribed = {c.email for c in contacts if c.consent.status is ConsentStatus.SUBSCRIBED}
        assert french - subscribed  # the sample holds both
        assert french & subscribed
        assert members == french & subscribed  # a list makes its members reachable
        assert first.errors == []  # left out deliberately (`unconsented`), not failed
        # the folder the connector made on its own (no state recorded it) is not segsync's
        # to this state: its segment list goes in a folder of its own, and the plan says so
        assert [d["step"] for d in first.diagnostics] == ["materialise", "ownership"]
        assert second.writes == 0

    asyncio.run(main())
