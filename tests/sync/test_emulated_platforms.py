"""The engine over the three built-in connectors and their emulators (in-process).

Contacts start on Mailchimp; a run creates them on HubSpot and Brevo, the next run writes
nothing, an edit on HubSpot and an unsubscribe on Brevo reach the others, and the run after
that writes nothing again.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from segsync.clock import VirtualClock
from segsync.connector import Connector, ContactChange
from segsync.model import ConsentStatus
from segsync.state import open_store
from segsync.sync import Engine, RunReport
from segsync.testing.data import DEFAULT_SCHEMA, change_for, sample_contacts

mailchimp = pytest.importorskip("segsync_mailchimp")
hubspot = pytest.importorskip("segsync_hubspot")
brevo = pytest.importorskip("segsync_brevo")
brevo_emulator = pytest.importorskip("segsync_brevo.emulator")


def connectors(clock: VirtualClock) -> dict[str, Connector]:
    mc = mailchimp.MailchimpEmulator(clock=clock, reject_fake_emails=False)
    hs = hubspot.HubSpotEmulator(clock=clock)
    bv = brevo_emulator.BrevoEmulator(clock=clock)
    local = "http://127.0.0.1:9"
    return {
        "mailchimp": mailchimp.MailchimpConnector(
            {"api_key": mc.default_api_key, "list_id": mc.default_list_id,
             "base_url": local + mc.base_path},
            schema=DEFAULT_SCHEMA, transport=mc.transport(), clock=clock,
        ),
        "hubspot": hubspot.HubSpotConnector(
            {"token": hs.default_api_key, "base_url": local},
            schema=DEFAULT_SCHEMA, transport=hs.transport(), clock=clock,
        ),
        "brevo": brevo.BrevoConnector(
            {"api_key": bv.api_key}, schema=DEFAULT_SCHEMA, transport=bv.transport(), clock=clock
        ),
    }


def counts(report: RunReport) -> dict[str, tuple[int, int]]:
    return {n: (p.created, p.updated) for n, p in report.platforms.items()}


def test_three_emulated_platforms_converge() -> None:
    """Creations, an edit and an unsubscribe propagate; reruns write nothing."""
    clock = VirtualClock()
    contacts = sample_contacts(DEFAULT_SCHEMA, 12, random.Random(4),
                               consents=(ConsentStatus.SUBSCRIBED,))

    async def main() -> dict[str, Any]:
        platforms = connectors(clock)
        await platforms["mailchimp"].prepare(DEFAULT_SCHEMA.fields, ["alpha", "beta", "gamma"])
        await platforms["mailchimp"].write([change_for(c) for c in contacts])
        engine = Engine(platforms, open_store("sqlite:///:memory:", clock=clock),
                        schema=DEFAULT_SCHEMA, clock=clock)
        out: dict[str, Any] = {"first": await engine.sync()}
        clock.advance(60)
        out["second"] = await engine.sync()

        target = contacts[0].email
        ids = {}
        for name in ("hubspot", "brevo"):
            async for page in platforms[name].read(None):
                ids.update({(name, c.email.lower()): c.platform_id for c in page.contacts})
        clock.advance(60)
        await platforms["hubspot"].write([ContactChange(
            email=target, platform_id=ids[("hubspot", target)], fields={"first_name": "Renée"})])
        await platforms["brevo"].write([ContactChange(
            email=target, platform_id=ids[("brevo", target)],
            consent=ConsentStatus.UNSUBSCRIBED)])
        clock.advance(60)
        out["third"] = await engine.sync()
        clock.advance(60)
        out["fourth"] = await engine.sync()
        seen = {}
        for name, connector in platforms.items():
            async for page in connector.read(None):
                for c in page.contacts:
                    if c.email.lower() == target:
                        seen[name] = (c.fields.get("first_name"), c.consent.status)
            await connector.aclose()
        out["seen"] = seen
        return out

    out = asyncio.run(main())

    for name in ("first", "second", "third", "fourth"):
        assert out[name].errors == [], (name, out[name].errors)
    assert counts(out["first"]) == {"mailchimp": (0, 0), "hubspot": (12, 0), "brevo": (12, 0)}
    assert out["second"].writes == 0
    assert counts(out["third"]) == {"mailchimp": (0, 1), "hubspot": (0, 1), "brevo": (0, 1)}
    assert out["fourth"].writes == 0
    expected = ("Renée", ConsentStatus.UNSUBSCRIBED)
    assert out["seen"] == dict.fromkeys(("mailchimp", "hubspot", "brevo"), expected)
