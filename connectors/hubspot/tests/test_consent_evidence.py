"""HubSpot consent as evidence (issue 13): what each read status rests on, the subscription
type consent is synced with, legal bases on GDPR portals, and `pending` sending nothing.

Every test starts from a portal used before segsync (`seed_lived_in`: statuses on the
user's own and on internal types, opt-outs of all email, bounces) or changes it between runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.config import HubSpotConfig
from segsync_hubspot.emulator.state import STRICT_SEARCH_INDEX_LAG

from segsync.clock import VirtualClock
from segsync.connector import ChangeResult, ContactChange
from segsync.http import ApiError
from segsync.model import Consent, ConsentStatus

TOKEN = HubSpotEmulator.default_api_key
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
S = ConsentStatus


def connect(emulator: HubSpotEmulator, clock: VirtualClock, wrap: Wrap, **cfg: Any) -> Any:
    return HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9", **cfg},
        transport=wrap(emulator.transport()),
        clock=clock,
    )


def read_all(
    connector: HubSpotConnector, cursor: str | None = None
) -> tuple[dict[str, Consent], str | None]:
    assert isinstance(connector.clock, VirtualClock)
    connector.clock.advance(STRICT_SEARCH_INDEX_LAG)  # until search finds every write

    async def main() -> tuple[dict[str, Consent], str | None]:
        out: dict[str, Consent] = {}
        last = cursor
        async for page in connector.read(cursor):
            out.update({c.email: c.consent for c in page.contacts})
            last = page.cursor or last
        return out, last

    return asyncio.run(main())


def write(connector: HubSpotConnector, *changes: ContactChange) -> list[ChangeResult]:
    return asyncio.run(connector.write(list(changes)))


def test_every_read_status_carries_its_evidence_on_a_lived_in_portal(
    clock: VirtualClock, checked: Wrap
) -> None:
    """SUBSCRIBED on the managed type is an opt-in with its legal basis; UNSUBSCRIBED on it,
    `hs_email_optout` and a hard bounce are opt-outs, each with its evidence; NOT_SPECIFIED,
    and statuses on the user's own or an internal type, are no evidence at all."""
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    connector = connect(emulator, clock, checked)

    consent, cursor = read_all(connector)

    sam = consent["sam.subscribed@lived.dev"]
    assert (sam.status, sam.legal_basis) == (S.SUBSCRIBED, "CONSENT_WITH_NOTICE")
    assert sam.evidence is not None
    assert sam.evidence.startswith("statusState=SUBSCRIBED; subscriptionId=101; timestamp=")
    assert sam.updated_at is not None
    una = consent["una.unsubscribed@lived.dev"]
    assert una.status is S.UNSUBSCRIBED
    assert una.evidence is not None
    assert "hs_email_optout_101=true" in una.evidence
    assert "statusState=UNSUBSCRIBED; subscriptionId=101" in una.evidence
    olga = consent["olga.optout@lived.dev"]
    assert olga.status is S.UNSUBSCRIBED
    assert olga.evidence is not None
    assert olga.evidence.startswith("hs_email_optout=true")
    bob = consent["bob.bounced@lived.dev"]
    assert (bob.status, bob.evidence) == (S.BOUNCED, "hs_email_bad_address=true")
    for nobody in ("nina.own-type@lived.dev", "ivan.internal@lived.dev", "cara.customer@lived.dev"):
        assert (consent[nobody].status, consent[nobody].evidence) == (S.NON_SUBSCRIBED, None), (
            nobody
        )
        assert consent[nobody].legal_basis is None

    # people act in HubSpot between runs: a footer unsubscribe-all, a form sign-up
    clock.advance(120)
    emulator.unsubscribe_all("sam.subscribed@lived.dev")
    emulator.set_subscription(
        "cara.customer@lived.dev",
        101,
        subscribed=True,
        legal_basis="CONSENT_WITH_NOTICE",
        explanation="checked the box at checkout",
    )
    clock.advance(120)
    later, _ = read_all(connector, cursor)

    assert later["sam.subscribed@lived.dev"].status is S.UNSUBSCRIBED
    assert (later["sam.subscribed@lived.dev"].evidence or "").startswith("hs_email_optout=true")
    cara = later["cara.customer@lived.dev"]
    assert (cara.status, cara.legal_basis) == (S.SUBSCRIBED, "CONSENT_WITH_NOTICE")
    assert (cara.evidence or "").startswith("statusState=SUBSCRIBED; subscriptionId=101")


def test_without_batch_status_reads_only_opt_outs_carry_evidence(
    clock: VirtualClock, checked: Wrap
) -> None:
    """Without Marketing Hub Enterprise, a SUBSCRIBED status cannot be seen: unknown, never
    an opt-in; the opt-out properties still are evidence."""
    emulator = HubSpotEmulator(clock=clock, enterprise_consent=False)
    emulator.seed_lived_in()

    consent, _ = read_all(connect(emulator, clock, checked))

    assert (
        consent["sam.subscribed@lived.dev"].status,
        consent["sam.subscribed@lived.dev"].evidence,
    ) == (
        S.NON_SUBSCRIBED,
        None,
    )
    assert consent["una.unsubscribed@lived.dev"].evidence == "hs_email_optout_101=true"
    assert (consent["olga.optout@lived.dev"].evidence or "").startswith("hs_email_optout=true")
    assert consent["bob.bounced@lived.dev"].evidence == "hs_email_bad_address=true"
    for c in consent.values():
        assert (c.evidence is None) == (c.status is S.NON_SUBSCRIBED), c


def _first_default(emulator: HubSpotEmulator, sub_id: int) -> None:
    """Make `sub_id` the first definition HubSpot lists, and a default one."""
    emulator.subscriptions[sub_id]["isDefault"] = True
    emulator.subscriptions = {
        sub_id: emulator.subscriptions[sub_id],
        **{k: v for k, v in emulator.subscriptions.items() if k != sub_id},
    }


@pytest.mark.parametrize(("unusable", "why"), [(99, "internal"), (103, "inactive"), (105, "SMS")])
def test_the_subscription_type_is_an_active_non_internal_email_one(
    clock: VirtualClock, checked: Wrap, unusable: int, why: str
) -> None:
    """A default definition listed first that is internal, inactive or not email is never
    the one consent is synced with: reads ignore it, writes go to the marketing type, and
    `account_facts` names the choice once `check` resolved it."""
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    _first_default(emulator, unusable)
    emulator.seed_contact({"email": "wrong-type@lived.dev"})
    emulator.set_subscription("wrong-type@lived.dev", unusable, subscribed=True)
    connector = connect(emulator, clock, checked)

    assert connector.account_facts() == {}
    asyncio.run(connector.check())
    facts = connector.account_facts()
    consent, _ = read_all(connector)
    [result] = write(
        connector,
        ContactChange(
            email="cara.customer@lived.dev",
            consent=S.SUBSCRIBED,
            consent_basis="CONSENT_WITH_NOTICE",
        ),
    )

    assert facts == {"subscription type": "Marketing Information (id 101)"}, why
    assert (consent["wrong-type@lived.dev"].status, consent["wrong-type@lived.dev"].evidence) == (
        S.NON_SUBSCRIBED,
        None,
    )
    assert consent["sam.subscribed@lived.dev"].status is S.SUBSCRIBED
    assert result.ok
    assert result.sent_consent is S.SUBSCRIBED
    assert emulator.status_writes == [("cara.customer@lived.dev", 101, "SUBSCRIBED")]
    assert emulator.subscription_status("cara.customer@lived.dev", unusable) == "NOT_SPECIFIED"


def test_a_configured_subscription_type_is_used_even_when_not_default(
    clock: VirtualClock, checked: Wrap
) -> None:
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    connector = connect(emulator, clock, checked, subscription_id=104)

    asyncio.run(connector.check())
    consent, _ = read_all(connector)

    assert connector.account_facts() == {"subscription type": "Product updates (id 104)"}
    assert consent["nina.own-type@lived.dev"].status is S.SUBSCRIBED
    assert consent["sam.subscribed@lived.dev"].status is S.NON_SUBSCRIBED


@pytest.mark.parametrize(
    ("sub_id", "code", "says"),
    [
        (99, "subscription_not_usable", "(Service notices) is internal"),
        (103, "subscription_not_usable", "is inactive"),
        (105, "subscription_not_usable", "is a SMS type, not email"),
        (4242, "subscription_not_found", "4242 does not exist"),
    ],
)
def test_a_configured_subscription_type_that_cannot_carry_consent_fails_check(
    clock: VirtualClock, checked: Wrap, sub_id: int, code: str, says: str
) -> None:
    """`check` names the place, what is wrong and the fix (the usable types); reads fail the
    same way rather than read consent from the wrong type."""
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    connector = connect(emulator, clock, checked, subscription_id=sub_id)

    with pytest.raises(ApiError) as caught:
        asyncio.run(connector.check())
    with pytest.raises(ApiError):
        read_all(connector)

    assert caught.value.code == code
    message = caught.value.message
    assert message.startswith(f"hubspot.subscription_id: subscription type {sub_id}")
    assert says in message
    assert "fix:" in message
    assert "Marketing Information (id 101)" in message
    assert "Service notices" not in message.partition("fix:")[2]
    assert TOKEN not in str(caught.value)
    assert connector.account_facts() == {}


def test_an_account_without_a_usable_email_type_fails_check(
    clock: VirtualClock, checked: Wrap
) -> None:
    emulator = HubSpotEmulator(clock=clock)
    for sub in emulator.subscriptions.values():
        sub["isActive"] = sub["isInternal"]  # only the internal one stays active

    with pytest.raises(ApiError) as caught:
        asyncio.run(connect(emulator, clock, checked).check())

    assert caught.value.code == "no_subscription_type"
    assert "hubspot.subscription_id" in caught.value.message


def test_the_legal_basis_setting_is_validated() -> None:
    ok = HubSpotConfig.model_validate({"token": "t", "legal_basis": "consent_with_notice"})
    assert ok.legal_basis == "CONSENT_WITH_NOTICE"
    with pytest.raises(ValidationError) as caught:
        HubSpotConfig.model_validate({"token": "t", "legal_basis": "gdpr"})
    assert "legal_basis" in str(caught.value)
    assert "CONSENT_WITH_NOTICE" in str(caught.value)
    with pytest.raises(ValidationError):
        HubSpotConfig.model_validate({"token": "t", "legal_basis_explanation": "  "})


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
def test_a_gdpr_portal_gets_the_legal_basis_and_explanation(
    clock: VirtualClock, checked: Wrap, batch: bool
) -> None:
    """Without a basis known, a GDPR portal refuses the opt-in (the result says what to
    set; the opt-out in the same write still goes through); with the config default, or
    the change's own basis (which wins), the status is written with the explanation."""
    emulator = HubSpotEmulator(clock=clock, gdpr=True)
    emulator.seed_lived_in()
    bare = connect(emulator, clock, checked, consent_batch_writes=batch)

    refused, opt_out = write(
        bare,
        ContactChange(email="cara.customer@lived.dev", consent=S.SUBSCRIBED),
        ContactChange(email="sam.subscribed@lived.dev", consent=S.UNSUBSCRIBED),
    )

    assert not refused.ok
    assert refused.sent_consent is None
    assert "GDPR" in (refused.error or "")
    assert "hubspot.legal_basis" in (refused.error or "")
    assert emulator.subscription_status("cara.customer@lived.dev") == "NOT_SPECIFIED"
    assert opt_out.ok
    assert opt_out.sent_consent is S.UNSUBSCRIBED
    assert emulator.subscription_status("sam.subscribed@lived.dev") == "NOT_SUBSCRIBED"

    configured = connect(
        emulator,
        clock,
        checked,
        consent_batch_writes=batch,
        legal_basis="legitimate_interest_client",
        legal_basis_explanation="Existing customers, notice in the terms of sale",
    )
    default, own = write(
        configured,
        ContactChange(email="cara.customer@lived.dev", consent=S.SUBSCRIBED),
        ContactChange(
            email="nina.own-type@lived.dev",
            consent=S.SUBSCRIBED,
            consent_basis="consent_with_notice",
        ),
    )

    assert default.ok, default
    assert own.ok, own
    assert default.sent_consent is own.sent_consent is S.SUBSCRIBED
    cara = emulator.statuses["cara.customer@lived.dev"][101]
    assert (cara.status, cara.legal_basis) == ("SUBSCRIBED", "LEGITIMATE_INTEREST_CLIENT")
    assert cara.explanation == "Existing customers, notice in the terms of sale"
    nina = emulator.statuses["nina.own-type@lived.dev"][101]
    assert nina.legal_basis == "CONSENT_WITH_NOTICE"
    assert nina.explanation == "Existing customers, notice in the terms of sale"


def test_outside_gdpr_an_opt_in_without_basis_is_written_without_one(
    clock: VirtualClock, checked: Wrap
) -> None:
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()

    [result] = write(
        connect(emulator, clock, checked),
        ContactChange(email="cara.customer@lived.dev", consent=S.SUBSCRIBED),
    )

    assert result.ok
    assert result.sent_consent is S.SUBSCRIBED
    status = emulator.statuses["cara.customer@lived.dev"][101]
    assert (status.status, status.legal_basis) == ("SUBSCRIBED", None)


def test_the_gdpr_emulator_answers_as_hubspot_does(clock: VirtualClock) -> None:
    """v4 single and batch writes and v3 subscribe refuse an opt-in without legal basis and
    explanation with HubSpot's error body; opt-outs need none."""
    emulator = HubSpotEmulator(clock=clock, gdpr=True)
    emulator.seed_lived_in()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=emulator.transport(), base_url="https://api.hubapi.com", headers=headers
        ) as http:
            cp = "/communication-preferences"
            email = "cara.customer@lived.dev"
            status = {"channel": "EMAIL", "subscriptionId": 101, "statusState": "SUBSCRIBED"}
            return [
                await http.post(f"{cp}/2026-03/statuses/{email}", json=status),
                await http.post(
                    f"{cp}/2026-03/statuses/{email}",
                    json={**status, "legalBasis": "CONSENT_WITH_NOTICE"},
                ),
                await http.post(
                    f"{cp}/v3/subscribe", json={"emailAddress": email, "subscriptionId": "101"}
                ),
                await http.post(
                    f"{cp}/2026-03/statuses/batch/write",
                    json={"inputs": [{**status, "subscriberIdString": email}]},
                ),
                await http.post(
                    f"{cp}/2026-03/statuses/{email}",
                    json={**status, "statusState": "UNSUBSCRIBED"},
                ),
            ]

    bare, no_explanation, v3, batch, opt_out = asyncio.run(main())

    for refused in (bare, no_explanation, v3):
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert body["status"] == "error"
        assert body["category"] == "VALIDATION_ERROR"
        assert body["correlationId"]
        assert re.search(r"legalBasisExplanation required: GDPR is enabled", body["message"])
    assert "legalBasis and legalBasisExplanation" in bare.json()["message"]
    assert batch.status_code == 200
    assert batch.json()["numErrors"] == 1
    assert opt_out.status_code == 200
    assert emulator.status_writes == [("cara.customer@lived.dev", 101, "UNSUBSCRIBED")]


def test_pending_sends_no_status_and_not_specified_stays_no_evidence(
    clock: VirtualClock, checked: Wrap
) -> None:
    """HubSpot cannot express `pending`: writing it sends no status at all (nothing
    reachable), for new and existing contacts, and reading those contacts back gives no
    evidence, so the pending held elsewhere is not downgraded by HubSpot's "not specified"."""
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    connector = connect(emulator, clock, checked, legal_basis="CONSENT_WITH_NOTICE")

    results = write(
        connector,
        ContactChange(email="cara.customer@lived.dev", consent=S.PENDING),
        ContactChange(email="nina.own-type@lived.dev", consent=S.PENDING),
        ContactChange(email="ben.pending@lived.dev", create=True, consent=S.PENDING),
        ContactChange(email="una.unsubscribed@lived.dev", consent=S.BOUNCED),
    )
    consent, _ = read_all(connector)

    assert all(r.ok for r in results), results
    assert [r.sent_consent for r in results] == [None, None, None, S.UNSUBSCRIBED]
    assert emulator.status_writes == [("una.unsubscribed@lived.dev", 101, "UNSUBSCRIBED")]
    assert emulator.log.count(path=re.compile(r"/statuses/(cara|nina|ben)")) == 0
    for email in ("cara.customer@lived.dev", "nina.own-type@lived.dev", "ben.pending@lived.dev"):
        assert (consent[email].status, consent[email].evidence) == (S.NON_SUBSCRIBED, None)
    assert emulator.subscription_status("nina.own-type@lived.dev", 104) == "SUBSCRIBED"
