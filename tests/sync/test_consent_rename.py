"""Consent follows the person, not the address: a record moved to another address (by a
user, or by segsync's rename) may show the status its new address held for someone else.

Found by an outside tester: two people swapped addresses on HubSpot; the opted-out person
then read `SUBSCRIBED` (the address's former holder's status), and segsync took it as her
opt-in. Such a reading is no evidence for this person; an opt-out still counts.
"""

from __future__ import annotations

import dataclasses

from segsync.model import ConsentStatus
from segsync.sync import SyncPolicy, reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

PLATFORMS = ("mc", "hs")
POLICY = SyncPolicy(platforms=PLATFORMS)
BEFORE = "2026-01-01T00:00:00"
LATER = "2026-03-01T00:00:00"


def rec(pid: str, email: str, c: ConsentStatus, evidence: str | None, when: str) -> PlatformRecord:
    return PlatformRecord(platform_id=pid, email=email, email_key=email, consent=c,
                          updated_at=when, consent_evidence=evidence)


DORA = CanonicalView(email="dora@x.dev", consent=ConsentStatus.UNSUBSCRIBED,
                     consent_source="mc", consent_evidence="status=unsubscribed")
BASES = {
    "mc": rec("mc-1", "dora@x.dev", ConsentStatus.UNSUBSCRIBED, "status=unsubscribed", BEFORE),
    "hs": rec("hs-1", "dora@x.dev", ConsentStatus.UNSUBSCRIBED, "statusState=UNSUBSCRIBED",
              BEFORE),
}


def test_a_status_read_at_a_new_address_is_no_opt_in_and_the_opt_out_is_written_there() -> None:
    """Dora's HubSpot record now sits at carl@, which holds Carl's SUBSCRIBED: her view stays
    unsubscribed, and HubSpot is sent the opt-out for the address she now uses."""
    moved = rec("hs-1", "carl@x.dev", ConsentStatus.SUBSCRIBED,
                "statusState=SUBSCRIBED; subscriptionId=101", LATER)

    out = reconcile("dora", DORA, BASES, {"hs": moved}, POLICY)

    assert out.view.email == "carl@x.dev"
    assert out.view.consent is ConsentStatus.UNSUBSCRIBED
    assert out.writes["hs"]["consent"] == ConsentStatus.UNSUBSCRIBED
    assert all(w.get("consent") != ConsentStatus.SUBSCRIBED for w in out.writes.values())


def test_an_opt_out_read_at_a_new_address_still_counts() -> None:
    """The floor: an opt-out is honoured wherever it is read, moved record or not."""
    view = dataclasses.replace(DORA, consent=ConsentStatus.SUBSCRIBED,
                               consent_evidence="status=subscribed")
    bases = {p: dataclasses.replace(r, consent=ConsentStatus.SUBSCRIBED) for p, r in BASES.items()}
    moved = rec("hs-1", "dora.new@x.dev", ConsentStatus.UNSUBSCRIBED,
                "statusState=UNSUBSCRIBED; subscriptionId=101", LATER)

    out = reconcile("dora", view, bases, {"hs": moved}, POLICY)

    assert out.view.consent is ConsentStatus.UNSUBSCRIBED
    assert out.writes["mc"]["consent"] == ConsentStatus.UNSUBSCRIBED


def test_an_opt_in_at_the_same_address_is_still_evidence() -> None:
    """Without a move, a newer explicit opt-in is evidence as before."""
    view = dataclasses.replace(DORA, consent=ConsentStatus.NON_SUBSCRIBED,
                               consent_evidence="status=transactional")
    bases = {p: dataclasses.replace(r, consent=ConsentStatus.NON_SUBSCRIBED)
             for p, r in BASES.items()}
    signed_up = rec("hs-1", "dora@x.dev", ConsentStatus.SUBSCRIBED,
                    "statusState=SUBSCRIBED; subscriptionId=101", LATER)

    out = reconcile("dora", view, bases, {"hs": signed_up}, POLICY)

    assert out.view.consent is ConsentStatus.SUBSCRIBED
