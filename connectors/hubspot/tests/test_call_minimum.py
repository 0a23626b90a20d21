"""Calls at the minimum: subscription statuses read 100 a call across search pages.

Search pages hold 200 records and each page after the first repeats its anchor (the
previous page's last record), so a page brings 199 new records: their statuses are read in
whole calls of 100, the remainder waiting for the next page, and a finished window sends
what is left. Every record's status is read, the opted-out ones' too: the status gives an
opt-out its time, and is the only opt-in evidence HubSpot has. Against a portal used before
segsync (`seed_lived_in`), counted from the emulator's request log.
"""

from __future__ import annotations

import asyncio
import math
import re

from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.clock import VirtualClock
from segsync.model import Consent, ConsentStatus

STATUS_READ = re.compile(r"^/communication-preferences/[^/]+/statuses/batch/read$")
SEARCH = re.compile(r"/contacts/search$")


def _read(emulator: HubSpotEmulator, clock: VirtualClock) -> dict[str, Consent]:
    clock.advance(emulator.read_lag_seconds)  # until search finds what the test seeded
    connector = HubSpotConnector(
        {"token": emulator.api_key, "base_url": "http://127.0.0.1:9"},
        transport=emulator.transport(),
        clock=clock,
    )

    async def main() -> dict[str, Consent]:
        out: dict[str, Consent] = {}
        async with connector:
            async for page in connector.read(None):
                out.update({c.email: c.consent for c in page.contacts})
        return out

    return asyncio.run(main())


def test_statuses_are_read_in_whole_calls_across_pages() -> None:
    """450 contacts and the lived-in portal's seven, over three search pages: ceil(457 /
    100) status calls, each consent read with its evidence (opt-outs of all email, of the
    managed type, bounces, form opt-ins, nothing) whichever page it came on."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    people = emulator.seed_lived_in()
    for i in range(450):
        email = f"p{i:03d}@segsync.dev"
        emulator.seed_contact({"email": email, "firstname": f"P{i}"})
        if i % 15 == 0:
            emulator.unsubscribe_all(email)
        elif i % 15 == 1:
            emulator.set_subscription(email, 101, subscribed=False)
        elif i % 15 == 2:
            emulator.hard_bounce(email)
        elif i % 2:
            emulator.set_subscription(email, 101, subscribed=True,
                                      legal_basis="CONSENT_WITH_NOTICE", explanation="form")
    emulator.log.clear()

    read = _read(emulator, clock)

    total = 450 + len(people)
    assert len(read) == total
    assert emulator.log.count("POST", SEARCH) == 3
    assert emulator.log.count("POST", STATUS_READ) == math.ceil(total / 100)
    for i in range(450):
        consent = read[f"p{i:03d}@segsync.dev"]
        if i % 15 in (0, 1):
            assert consent.status is ConsentStatus.UNSUBSCRIBED, i
            assert "statusState=UNSUBSCRIBED" in (consent.evidence or ""), i
        elif i % 15 == 2:
            assert consent.status is ConsentStatus.BOUNCED, i
        elif i % 2:
            assert consent.status is ConsentStatus.SUBSCRIBED, i
            assert consent.legal_basis == "CONSENT_WITH_NOTICE", i
        else:
            assert (consent.status, consent.evidence) == (ConsentStatus.NON_SUBSCRIBED, None), i
    assert read["sam.subscribed@lived.dev"].status is ConsentStatus.SUBSCRIBED
    assert read["una.unsubscribed@lived.dev"].status is ConsentStatus.UNSUBSCRIBED
    assert read["olga.optout@lived.dev"].status is ConsentStatus.UNSUBSCRIBED
    assert read["bob.bounced@lived.dev"].status is ConsentStatus.BOUNCED
    assert read["nina.own-type@lived.dev"].status is ConsentStatus.NON_SUBSCRIBED
    assert read["cara.customer@lived.dev"].status is ConsentStatus.NON_SUBSCRIBED
