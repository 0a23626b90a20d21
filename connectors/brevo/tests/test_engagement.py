"""Engagement read from Brevo: contact statistics, no data is not zero, answers per spec."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_brevo.responsecheck import MISSING, response_validator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus
from segsync.testing.responses import ResponseCheckingTransport

Body = Callable[[BrevoConnector, BrevoEmulator, VirtualClock], Awaitable[None]]


def run(body: Body, wrap: Callable[[Any], httpx.AsyncBaseTransport] | None = None) -> None:
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)

    async def main() -> None:
        transport = emulator.transport()
        connector = BrevoConnector(
            {"api_key": emulator.api_key},
            transport=wrap(transport) if wrap else transport,
            clock=clock,
        )
        async with connector:
            await body(connector, emulator, clock)

    asyncio.run(main())


async def refresh(connector: BrevoConnector) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {}
    async for page in connector.read_engagement(None):
        values.update({k: dict(v) for k, v in page.values.items()})
    return values


def test_copy_segsync_created_has_no_engagement_until_a_campaign_reaches_it() -> None:
    """A contact segsync created reads no engagement; once a campaign is sent and delivered
    to it, opened twice and clicked, the figures are read."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.write(
            [ContactChange(email="copy@segsync.dev", create=True, consent=ConsentStatus.SUBSCRIBED)]
        )
        contact = emu.contact("copy@segsync.dev")
        assert contact is not None
        assert await refresh(connector) == {}
        copy = [c async for p in connector.read() for c in p.contacts]
        assert all(c.engagement == {} for c in copy)

        t0 = clock.now()
        emu.record_campaign_event("copy@segsync.dev", "sent", 7, at=t0)
        emu.record_campaign_event("copy@segsync.dev", "delivered", 7, at=t0)
        emu.record_campaign_event("copy@segsync.dev", "opened", 7, at=t0 + dt.timedelta(hours=1))
        emu.record_campaign_event("copy@segsync.dev", "opened", 7, at=t0 + dt.timedelta(hours=4))
        emu.record_campaign_event("copy@segsync.dev", "clicked", 7, at=t0 + dt.timedelta(hours=2))
        clock.advance(5 * 3600)
        got = (await refresh(connector))[str(contact.id)]
        assert got == {
            "emails_delivered": 1,
            "opens": 2,
            "clicks": 1,
            "last_open": (t0 + dt.timedelta(hours=4)).replace(microsecond=0),
            "last_click": (t0 + dt.timedelta(hours=2)).replace(microsecond=0),
        }

    run(body)


def test_preexisting_contacts_sent_but_never_opening_read_zero_opens() -> None:
    """A contact a campaign reached has real zeros (delivered, not opened); one never
    reached has none; events older than the 90-day window are gone."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        emu.seed_contact("quiet@example.com", attributes={"FIRSTNAME": "Quinn"})
        emu.seed_contact("never@example.com")
        emu.seed_contact("old@example.com")
        emu.record_campaign_event("old@example.com", "delivered", 1, at=clock.now())
        clock.advance(91 * 86400)
        emu.record_campaign_event("quiet@example.com", "sent", 3)
        emu.record_campaign_event("quiet@example.com", "delivered", 3)
        values = await refresh(connector)
        ids = {c.id: c.email for c in emu.contacts.values()}
        by_email = {ids[int(k)]: v for k, v in values.items()}
        assert by_email == {"quiet@example.com": {"emails_delivered": 1, "opens": 0, "clicks": 0}}

    run(body)


def test_statistics_answers_follow_the_spec() -> None:
    """GET /contacts/{id} with recorded events validates against getExtendedContactDetails."""
    validator = response_validator()
    if validator is None:
        pytest.skip(MISSING)
    checks: list[ResponseCheckingTransport] = []

    def wrap(inner: Any) -> httpx.AsyncBaseTransport:
        checks.append(ResponseCheckingTransport(inner, validator))
        return checks[-1]

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        emu.seed_contact("a@example.com")
        for event in ("sent", "delivered", "opened", "clicked", "softBounce"):
            emu.record_campaign_event("a@example.com", event, 5)
        values = await refresh(connector)
        assert len(values) == 1

    run(body, wrap)
    assert checks
    assert checks[0].problems == []
    assert checks[0].checked >= 2
    # the check reaches `statistics`: an event without its campaign id does not validate
    bad = {
        "id": 1,
        "email": "a@example.com",
        "emailBlacklisted": False,
        "smsBlacklisted": False,
        "createdAt": "2026-01-01T00:00:00.000+00:00",
        "modifiedAt": "2026-01-01T00:00:00.000+00:00",
        "listIds": [],
        "attributes": {},
        "statistics": {"delivered": [{"eventTime": "2026-01-01T00:00:00+00:00"}]},
    }
    assert validator.problems("GET", "/v3/contacts/1", 200, bad)
