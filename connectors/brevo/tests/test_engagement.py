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
    """A first (full) refresh: the contacts with data and their values."""
    values, _ = await read(connector, None)
    return {k: v for k, v in values.items() if v}


async def read(
    connector: BrevoConnector, cursor: str | None
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """One refresh from `cursor`: every contact read (`{}`: no data) and the next cursor."""
    values: dict[str, dict[str, Any]] = {}
    async for page in connector.read_engagement(cursor):
        values.update({k: dict(v) for k, v in page.values.items()})
        cursor = page.cursor if page.cursor is not None else cursor
    return values, cursor


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
            "opens": 1,  # emails opened: one, opened twice
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


def _statistics_calls(emu: BrevoEmulator) -> list[str]:
    """Contact ids whose `GET /contacts/{id}` the emulator served since the log was cleared."""
    return [e[1].rsplit("/", 1)[1] for e in emu.log.entries
            if e[0] == "GET" and e[1].rstrip("/").split("/")[-2] == "contacts"
            and e[1].rsplit("/", 1)[1].isdigit()]


def test_later_refreshes_read_only_contacts_whose_lists_moved_or_who_changed() -> None:
    """After the first (full) refresh, a contact's statistics are read again only when a list
    it is in shows new campaign activity or it was modified; an account where nothing moved
    costs the list and contact listings only; events leaving the 90-day window clear the
    figures; a full read comes back after 7 days."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        news, other = emu.seed_list("Newsletter"), emu.seed_list("Partners")
        for i in range(3):
            emu.seed_contact(f"n{i}@example.com", lists=(news,))
        emu.seed_contact("p0@example.com", lists=(other,))
        emu.seed_contact("loose@example.com")
        ids = {c.email: str(c.id) for c in emu.contacts.values()}
        for i in range(3):
            emu.record_engagement(f"n{i}@example.com", "send", "march")
        emu.record_engagement("n0@example.com", "open", "march")
        clock.advance(3600)  # the seeds are older than the refresh's overlap
        values, cursor = await read(connector, None)
        assert set(values) == set(ids.values())  # first refresh: everyone
        assert values[ids["n0@example.com"]]["opens"] == 1
        assert values[ids["p0@example.com"]] == {}

        clock.advance(86400)
        emu.log.entries.clear()
        values, cursor = await read(connector, cursor)
        assert values == {}
        assert _statistics_calls(emu) == []
        assert len(emu.log.entries) == 1 + len(emu.lists) + 1  # lists, each list, contacts

        clock.advance(86400)
        emu.record_engagement("n1@example.com", "open", "march")  # moves the newsletter
        emu.add_to_list("loose@example.com", other)  # modified
        emu.log.entries.clear()
        values, cursor = await read(connector, cursor)
        assert sorted(_statistics_calls(emu)) == sorted(
            ids[e] for e in ("n0@example.com", "n1@example.com", "n2@example.com",
                             "loose@example.com"))
        assert values[ids["n1@example.com"]]["opens"] == 1

        clock.advance(89 * 86400)  # the campaign leaves the window: the list moves again
        emu.log.entries.clear()
        values, cursor = await read(connector, cursor)
        # past the 7 days since the first refresh: a full read, clearing every figure
        assert set(_statistics_calls(emu)) == set(ids.values())
        assert values == {key: {} for key in ids.values()}

    run(body)


def test_a_contact_emailed_outside_any_list_is_read_by_the_weekly_full_read() -> None:
    """Activity no list shows (a send to a contact in no list, e.g. through a segment) is
    read by the next full read, at most `FULL_EVERY` later."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        contact = emu.seed_contact("segment@example.com")
        clock.advance(3600)
        _, cursor = await read(connector, None)
        clock.advance(3600)
        emu.record_engagement("segment@example.com", "send", "promo")
        values, cursor = await read(connector, cursor)
        assert values == {}
        clock.advance(int(BrevoConnector.FULL_EVERY.total_seconds()))
        values, cursor = await read(connector, cursor)
        assert values[str(contact.id)]["emails_delivered"] == 1

    run(body)


def test_list_campaign_stats_follow_the_spec() -> None:
    """`GET /contacts/lists/{id}` with its window shows the campaigns sent to the list in
    it, with counters that validate against getExtendedList; a lone startDate is a 400."""
    validator = response_validator()
    if validator is None:
        pytest.skip(MISSING)
    checks: list[ResponseCheckingTransport] = []

    def wrap(inner: Any) -> httpx.AsyncBaseTransport:
        checks.append(ResponseCheckingTransport(inner, validator))
        return checks[-1]

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        news = emu.seed_list("Newsletter")
        emu.seed_contact("a@example.com", lists=(news,))
        emu.seed_contact("b@example.com", lists=(news,))
        old = emu.record_campaign([news], sent_at=clock.now() - dt.timedelta(days=120))
        for email in ("a@example.com", "b@example.com"):
            emu.record_engagement(email, "send", "june")
        emu.record_engagement("a@example.com", "open", "june")
        emu.record_engagement("a@example.com", "open", "june")
        with pytest.raises(KeyError):  # no open of an email never sent
            emu.record_engagement("a@example.com", "open", "july")
        await read(connector, None)
        now = clock.now()
        window = {"startDate": (now - dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                  "endDate": now.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
        got = (await connector._call("GET", f"/contacts/lists/{news}",
                                     "/contacts/lists/{listId}", params=window)).json()
        stats = {s["campaignId"]: s["stats"] for s in got["campaignStats"]}
        assert old not in stats
        (june,) = stats.values()
        assert (june["sent"], june["delivered"], june["viewed"], june["uniqueViews"]) == (
            2, 2, 2, 1)
        every = (await connector._call("GET", f"/contacts/lists/{news}",
                                       "/contacts/lists/{listId}")).json()
        assert len(every["campaignStats"]) == 2
        lone = await connector._call("GET", f"/contacts/lists/{news}",
                                     "/contacts/lists/{listId}",
                                     params={"startDate": window["startDate"]}, ok=(400,))
        assert lone.status_code == 400

    run(body, wrap)
    assert checks
    assert checks[0].problems == []


def test_a_contact_deleted_while_the_refresh_pages_makes_no_one_skipped() -> None:
    """Brevo lists contacts oldest first by offset: a contact deleted after its page was
    served moves the others back; the refresh steps back instead of skipping one, and a
    contact deleted before its statistics are read reads as no data."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        connector.capabilities = connector.capabilities.model_copy(
            update={"read_page_size": 2})
        news = emu.seed_list("Newsletter")
        emails = [f"r{i}@example.com" for i in range(7)]
        for email in emails:
            emu.seed_contact(email, lists=(news,))
            emu.record_engagement(email, "send", "june")
        clock.advance(3600)
        ids = {e: str(emu.contact(e).id) for e in emails}  # type: ignore[union-attr]

        def delete(pages: int) -> None:
            if pages == 1:  # after the first page: the first listed goes, the rest move back
                for email in (emails[0], emails[1]):
                    contact = emu.contact(email)
                    assert contact is not None
                    del emu.contacts[contact.id]
                    emu._by_email.pop(email)

        emu.after_read_page = delete
        values, _ = await read(connector, None)
        emu.after_read_page = None
        assert set(emails[2:]) <= {e for e, i in ids.items() if values.get(i)}
        assert values[ids[emails[0]]] == {}  # read after its deletion: no data
        assert values[ids[emails[1]]] == {}

    run(body)
