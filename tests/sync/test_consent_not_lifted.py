"""The merge of one contact (`reconcile`): an opt-out is lifted only by an explicit opt-in
(subscribed or pending, with the platform's evidence), and a withdrawn opt-in stays
withdrawn in the view, so that an account rebound back to, still holding the opt-in, gets
the opt-out."""

from __future__ import annotations

from segsync.model import ConsentStatus
from segsync.sync import SyncPolicy, reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

PLATFORMS = ("mc", "hs", "bv")
POLICY = SyncPolicy(platforms=PLATFORMS)
A = "a@x.com"
OLD = "2025-01-05T00:00:00+00:00"  # 300 days before the view's consent
VIEW_AT = "2025-11-01T00:00:00+00:00"
NOW = "2025-11-02T00:00:00+00:00"


def rec(pid: str, consent: str, at: str = VIEW_AT, evidence: str | None = "auto",
        ) -> PlatformRecord:
    return PlatformRecord(
        platform_id=pid, email=A, email_key=A, fields={}, consent=ConsentStatus(consent),
        consent_at=at, updated_at=at,
        consent_evidence=f"status={consent}" if evidence == "auto" else evidence,
    )


def view(consent: str, source: str = "hs", evidence: str | None = None) -> CanonicalView:
    return CanonicalView(email=A, consent=ConsentStatus(consent), consent_source=source,
                         consent_at=VIEW_AT, consent_evidence=evidence or f"status={consent}")


def test_a_move_to_not_subscribed_does_not_lift_an_opt_out() -> None:
    """Mailchimp's member (the same id) goes from unsubscribed to transactional: the change is
    seen, but it is no act of the person; the opt-out stays and is written back there."""
    bases = {p: rec(f"{p}-1", "unsubscribed") for p in PLATFORMS}
    out = reconcile(A, view("unsubscribed"), bases,
                    {"mc": rec("mc-1", "non_subscribed", at=NOW)}, POLICY)

    assert out.view.consent == ConsentStatus.UNSUBSCRIBED
    assert [(e.platform, e.new) for e in out.events] == [("mc", "non_subscribed")]
    assert out.writes["mc"]["consent"] == ConsentStatus.UNSUBSCRIBED
    assert set(out.writes) == {"mc"}


def test_an_explicit_opt_in_still_lifts_an_opt_out_and_a_downgrade_still_counts() -> None:
    """The rule is narrow: `pending` with evidence is an opt-in over the opt-out; and over a
    view that is no opt-out, a move to not subscribed is still taken."""
    bases = {p: rec(f"{p}-1", "unsubscribed") for p in PLATFORMS}
    asked = reconcile(A, view("unsubscribed"), bases,
                      {"mc": rec("mc-1", "pending", at=NOW)}, POLICY)
    assert asked.view.consent == ConsentStatus.PENDING

    bases = {p: rec(f"{p}-1", "subscribed") for p in PLATFORMS}
    demoted = reconcile(A, view("subscribed"), bases,
                        {"mc": rec("mc-1", "non_subscribed", at=NOW)}, POLICY)
    assert demoted.view.consent == ConsentStatus.NON_SUBSCRIBED


def test_a_rebound_accounts_old_opt_in_is_no_offer_over_an_opt_out() -> None:
    """Mailchimp rebound to another audience (no base there) where she opted in 300 days
    ago: older than the view's opt-out, so no offer; the audience is sent the opt-out."""
    bases = {p: rec(f"{p}-1", "unsubscribed") for p in ("hs", "bv")}
    out = reconcile(A, view("unsubscribed"), bases,
                    {"mc": rec("mc-9", "subscribed", at=OLD)}, POLICY)

    assert out.view.consent == ConsentStatus.UNSUBSCRIBED
    assert out.writes["mc"]["consent"] == ConsentStatus.UNSUBSCRIBED


def test_a_withdrawn_opt_in_stays_withdrawn_in_the_view() -> None:
    """The run that sees Mailchimp go subscribed -> pending keeps the withdrawal in the
    view's evidence; a later run, with Mailchimp's base back at an audience that holds her
    `subscribed` since before (rebound back to), sends that audience the opt-out."""
    bases = {p: rec(f"{p}-1", "subscribed", at=OLD) for p in PLATFORMS}
    seen = reconcile(A, view("subscribed", "mc"), bases,
                     {"mc": rec("mc-1", "pending", at=VIEW_AT)}, POLICY)
    assert seen.view.consent == ConsentStatus.PENDING
    assert (seen.view.consent_evidence or "").endswith("(opt-in withdrawn)")

    back = {"mc": rec("mc-1", "subscribed", at=OLD),
            "hs": rec("hs-1", "unsubscribed"), "bv": rec("bv-1", "unsubscribed")}
    later = reconcile(A, seen.view, back, {}, POLICY)

    assert later.view == seen.view
    assert {p: w.get("consent") for p, w in later.writes.items()} == {
        "mc": ConsentStatus.UNSUBSCRIBED}
    assert "opt-in withdrawn" in later.writes["mc"]["consent_evidence"]


def test_a_pending_view_that_withdrew_nothing_leaves_a_confirmed_opt_in() -> None:
    """A `pending` asked on Mailchimp over a confirmed HubSpot opt-in withdrew nothing: the
    confirmed opt-in stays (never downgraded), run after run."""
    bases = {"mc": rec("mc-1", "pending"), "hs": rec("hs-1", "subscribed", at=OLD),
             "bv": rec("bv-1", "subscribed", at=OLD)}
    out = reconcile(A, view("pending", "mc"), bases, {}, POLICY)

    assert out.writes == {}


def test_an_older_opt_in_newly_linked_does_not_undo_a_withdrawal() -> None:
    """After the withdrawal, Mailchimp is rebound to an audience never bound before (no base)
    where she opted in 300 days ago: older than the withdrawal, so no offer; it gets the
    opt-out. An opt-in there after the withdrawal is her new word."""
    withdrawn = view("pending", "mc", "status=pending (opt-in withdrawn)")
    bases = {"hs": rec("hs-1", "unsubscribed"), "bv": rec("bv-1", "unsubscribed")}

    old = reconcile(A, withdrawn, bases, {"mc": rec("mc-9", "subscribed", at=OLD)}, POLICY)
    new = reconcile(A, withdrawn, bases, {"mc": rec("mc-9", "subscribed", at=NOW)}, POLICY)

    assert old.view.consent == ConsentStatus.PENDING
    assert old.writes["mc"]["consent"] == ConsentStatus.UNSUBSCRIBED
    assert new.view.consent == ConsentStatus.SUBSCRIBED
