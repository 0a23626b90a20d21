"""Mailchimp consent as evidence, in an audience people used before segsync and go on using.

Every consent read carries the evidence it rests on (`status=...`, with `timestamp_opt` and
`ip_opt` for an opt-in); segsync never writes `subscribed` over an opt-out (under
`reoptin_via_pending` it sends `pending` and says so in `ChangeResult.sent_consent`); people
confirm double opt-in and unsubscribe between runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.api import iso_time
from segsync_mailchimp.read import member_consent
from segsync_mailchimp.write import CONSENT_FLOOR

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, RemoteContact
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})

ADA = "ada.subscribed@lived.dev"
BEN = "ben.pending@lived.dev"
CY = "cy.transactional@lived.dev"
DEE = "dee.unsubscribed@lived.dev"
EVE = "eve.cleaned@lived.dev"


class Capture(httpx.AsyncBaseTransport):
    """Records (method, path, JSON body) of every request before passing it on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        return await self.inner.handle_async_request(request)

    def statuses_sent(self, email: str) -> list[str]:
        """Every `status` sent for `email` (batch items and member bodies)."""
        found = []
        for method, _, body in self.sent:
            if method == "GET":
                continue
            items = (body or {}).get("members") or [body or {}]
            found += [
                i["status"] for i in items if i.get("email_address") == email and "status" in i
            ]
        return found


World = tuple[MailchimpEmulator, MailchimpConnector, Capture]


def run(body: Callable[[World], Awaitable[None]], **config: Any) -> None:
    """Run `body` against an emulator seeded with a lived-in audience (`seed_lived_in`)."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock)
    emulator.seed_lived_in()
    capture = Capture(emulator.transport())
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST, **config},
        schema=SCHEMA,
        transport=capture,
        clock=clock,
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, capture))

    asyncio.run(main())


async def read_all(
    connector: MailchimpConnector, cursor: str | None = None
) -> tuple[dict[str, RemoteContact], str | None]:
    """Contacts read since `cursor` by email, and the cursor after the read."""
    contacts: dict[str, RemoteContact] = {}
    for page in [p async for p in connector.read(cursor)]:
        contacts.update({c.email: c for c in page.contacts})
        cursor = page.cursor or cursor
    return contacts, cursor


def test_every_status_read_carries_its_evidence() -> None:
    """Each Mailchimp status is evidence of itself; an opt-in adds when and from where."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        emu.seed_member("gone@lived.dev", "subscribed")
        emu.get_member("gone@lived.dev").status = "archived"  # type: ignore[union-attr]
        contacts, _ = await read_all(connector)
        opted = emu.get_member(ADA).timestamp_opt  # type: ignore[union-attr]

        seen = {e: (c.consent.status, c.consent.evidence) for e, c in contacts.items()}
        assert seen == {
            ADA: (
                ConsentStatus.SUBSCRIBED,
                f"status=subscribed; timestamp_opt={opted}; ip_opt=198.51.100.20",
            ),
            BEN: (ConsentStatus.PENDING, "status=pending"),
            CY: (ConsentStatus.NON_SUBSCRIBED, "status=transactional"),
            DEE: (ConsentStatus.UNSUBSCRIBED, "status=unsubscribed"),
            EVE: (ConsentStatus.BOUNCED, "status=cleaned"),
            "gone@lived.dev": (ConsentStatus.NON_SUBSCRIBED, None),
        }
        assert contacts["gone@lived.dev"].deleted
        assert contacts[ADA].consent.updated_at == dt.datetime.fromisoformat(opted)
        assert all(c.consent.source == "mailchimp" for c in contacts.values())
        # the user's own tags come back as they are
        assert contacts[DEE].tags == frozenset({"Customers 2023"})

    run(body)


def test_a_member_without_a_known_status_has_no_evidence() -> None:
    """A missing or unknown status is non-subscribed with no evidence (unknown is not consent)."""
    for record in ({}, {"status": ""}, {"status": "mystery"}):
        consent = member_consent(record, source="mailchimp")
        assert (consent.status, consent.evidence) == (ConsentStatus.NON_SUBSCRIBED, None)
    bare = member_consent({"status": "subscribed"}, source="mailchimp")
    assert bare.evidence == "status=subscribed"
    odd = member_consent(
        {"status": "subscribed", "timestamp_opt": "not a time"}, source="mailchimp"
    )
    assert odd.evidence == "status=subscribed; timestamp_opt=not a time"


def test_segsyncs_own_transactional_member_reads_back_with_that_evidence() -> None:
    """Unknown consent is created transactional, reported as sent, and read back as such."""

    async def body(world: World) -> None:
        _emu, connector, capture = world
        [result] = await connector.write([ContactChange(email="new@lived.dev", create=True)])
        contacts, _ = await read_all(connector)

        assert result.ok
        assert result.created
        assert result.sent_consent is ConsentStatus.NON_SUBSCRIBED
        assert capture.statuses_sent("new@lived.dev") == ["transactional"]
        consent = contacts["new@lived.dev"].consent
        assert (consent.status, consent.evidence) == (
            ConsentStatus.NON_SUBSCRIBED,
            "status=transactional",
        )

    run(body)


def test_confirming_double_opt_in_yields_subscribed_with_evidence() -> None:
    """segsync sends `pending`; the person confirms; the next read is an evidenced opt-in."""

    async def body(world: World) -> None:
        emu, connector, capture = world
        _, cursor = await read_all(connector)
        [result] = await connector.write(
            [ContactChange(email="doi@lived.dev", create=True, consent=ConsentStatus.PENDING)]
        )
        assert result.sent_consent is ConsentStatus.PENDING
        assert capture.statuses_sent("doi@lived.dev") == ["pending"]
        before, cursor = await read_all(connector, cursor)
        assert before["doi@lived.dev"].consent.evidence == "status=pending"

        clock = emu.clock
        assert isinstance(clock, VirtualClock)
        clock.advance(3600)
        emu.confirm_double_opt_in("doi@lived.dev", ip="203.0.113.9")
        emu.confirm_double_opt_in(BEN)  # the user's own pending member confirms too
        after, _ = await read_all(connector, cursor)
        now = iso_time(clock.now())

        assert after["doi@lived.dev"].consent.status is ConsentStatus.SUBSCRIBED
        assert after["doi@lived.dev"].consent.evidence == (
            f"status=subscribed; timestamp_opt={now}; ip_opt=203.0.113.9"
        )
        assert after[BEN].consent.status is ConsentStatus.SUBSCRIBED
        assert after[BEN].tags == frozenset({"Webinar"})
        with pytest.raises(ValueError, match="not pending"):
            emu.confirm_double_opt_in(CY)

    run(body)


@pytest.mark.parametrize("reoptin", [False, True], ids=["refused", "reoptin_via_pending"])
def test_opted_out_members_are_never_written_subscribed(reoptin: bool) -> None:
    """Unsubscribed and cleaned members: no `subscribed` is ever sent, whatever the setting.

    Under `reoptin_via_pending` Mailchimp is sent `pending` and the result says so; otherwise
    the consent part is refused (`ConsentFloor`) and the rest of the change still applies.
    """

    async def body(world: World) -> None:
        emu, connector, capture = world
        await connector.prepare(SCHEMA.fields, [])
        await read_all(connector)
        results = await connector.write(
            [
                ContactChange(
                    email=email,
                    consent=ConsentStatus.SUBSCRIBED,
                    fields={"first_name": "Again"},
                    tags_add=frozenset({"segsync"}),
                )
                for email in (DEE, EVE)
            ]
        )

        for email, result in zip((DEE, EVE), results, strict=True):
            member = emu.get_member(email)
            assert member is not None
            assert "subscribed" not in capture.statuses_sent(email)
            assert member.merge_fields["FNAME"] == "Again", "the rest of the change applies"
            assert "segsync" in emu.get_member_tags(email)
            if reoptin:
                assert result.ok
                assert result.sent_consent is ConsentStatus.PENDING
                assert capture.statuses_sent(email) == ["pending"]
                assert member.status == "pending"
            else:
                assert not result.ok
                assert result.code == CONSENT_FLOOR
                assert result.partial
                assert result.sent_consent is None
                assert capture.statuses_sent(email) == []
        if not reoptin:
            assert emu.get_member(DEE).status == "unsubscribed"  # type: ignore[union-attr]
            assert emu.get_member(EVE).status == "cleaned"  # type: ignore[union-attr]
        # the user's own merge field and tags are left as they were
        assert emu.get_member(DEE).merge_fields["COMPANY"] == "Deep"  # type: ignore[union-attr]
        assert "Customers 2023" in emu.get_member_tags(DEE)

    run(body, reoptin_via_pending=reoptin)


@pytest.mark.parametrize("reoptin", [False, True], ids=["refused", "reoptin_via_pending"])
def test_a_person_unsubscribing_between_runs_is_not_subscribed_again(reoptin: bool) -> None:
    """The last read saw `transactional`; the person unsubscribed since: no `subscribed` sent.

    The opt-in is checked against Mailchimp at write time, not against the snapshot, and the
    next read reports the opt-out with its evidence.
    """

    async def body(world: World) -> None:
        emu, connector, capture = world
        _, cursor = await read_all(connector)
        emu.clock.advance(60)  # type: ignore[attr-defined]
        emu.unsubscribe(CY, reason="Too many emails")
        emu.unsubscribe(ADA)
        [result] = await connector.write(
            [ContactChange(email=CY, consent=ConsentStatus.SUBSCRIBED)]
        )
        contacts, _ = await read_all(connector, cursor)

        assert "subscribed" not in capture.statuses_sent(CY)
        if reoptin:
            assert (result.ok, result.sent_consent) == (True, ConsentStatus.PENDING)
            assert emu.get_member(CY).status == "pending"  # type: ignore[union-attr]
        else:
            assert (result.ok, result.code, result.sent_consent) == (False, CONSENT_FLOOR, None)
            assert emu.get_member(CY).status == "unsubscribed"  # type: ignore[union-attr]
        ada = contacts[ADA].consent
        assert (ada.status, ada.evidence) == (ConsentStatus.UNSUBSCRIBED, "status=unsubscribed")

    run(body, reoptin_via_pending=reoptin)


def test_sent_consent_reports_exactly_what_was_written() -> None:
    """`sent_consent` is set where a status was sent and confirmed, and only there."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        await connector.prepare(SCHEMA.fields, [])
        await read_all(connector)
        results = await connector.write(
            [
                ContactChange(email="in@lived.dev", create=True, consent=ConsentStatus.SUBSCRIBED),
                ContactChange(email=ADA, consent=ConsentStatus.UNSUBSCRIBED),
                ContactChange(email=CY, fields={"first_name": "Cyrus"}),
                ContactChange(email=BEN, consent=ConsentStatus.PENDING),  # already pending
                ContactChange(email=BEN.upper(), consent=ConsentStatus.NON_SUBSCRIBED),
            ]
        )

        assert [r.ok for r in results] == [True] * 5
        assert [r.sent_consent for r in results] == [
            ConsentStatus.SUBSCRIBED,
            ConsentStatus.UNSUBSCRIBED,
            None,  # fields only
            None,  # nothing to send
            None,  # Mailchimp cannot demote a pending member to transactional
        ]
        assert emu.get_member(ADA).status == "unsubscribed"  # type: ignore[union-attr]
        assert emu.get_member(BEN).status == "pending"  # type: ignore[union-attr]

    run(body)


def test_a_bounce_between_runs_reads_as_bounced_with_evidence() -> None:
    """A hard bounce after the last read comes back as `bounced`, `status=cleaned`."""

    async def body(world: World) -> None:
        emu, connector, _ = world
        _, cursor = await read_all(connector)
        emu.clock.advance(60)  # type: ignore[attr-defined]
        emu.bounce(ADA)
        contacts, _ = await read_all(connector, cursor)

        consent = contacts[ADA].consent
        assert (consent.status, consent.evidence) == (ConsentStatus.BOUNCED, "status=cleaned")
        assert emu.get_member(ADA).compliance_blocked  # type: ignore[union-attr]

    run(body)


def test_an_opt_in_mailchimp_refuses_is_a_floor_refusal_and_the_rest_is_written() -> None:
    """A re-opt-in still pending (blocked until confirmed) is not subscribed by segsync.

    Mailchimp answers "Member In Compliance State"; the result is a `ConsentFloor` refusal
    with nothing reported as sent, and the fields and tags of the change are still written.
    """

    async def body(world: World) -> None:
        emu, connector, capture = world
        await connector.prepare(SCHEMA.fields, [])
        emu.seed_member("back@lived.dev", "pending", compliance_blocked=True)
        await read_all(connector)
        [result] = await connector.write(
            [
                ContactChange(
                    email="back@lived.dev",
                    consent=ConsentStatus.SUBSCRIBED,
                    fields={"first_name": "Bea"},
                    tags_add=frozenset({"segsync"}),
                )
            ]
        )
        member = emu.get_member("back@lived.dev")

        assert not result.ok
        assert result.code == CONSENT_FLOOR
        assert result.partial
        assert result.sent_consent is None
        assert "compliance state" in (result.error or "")
        assert member is not None
        assert member.status == "pending"
        assert member.merge_fields["FNAME"] == "Bea"
        assert emu.get_member_tags("back@lived.dev") == {"segsync"}
        assert capture.statuses_sent("back@lived.dev") == ["subscribed"]  # refused by Mailchimp

    run(body)
