"""A platform joining a view that already exists (added to the configuration, or rebound to
its account after a time away): its records are newly linked, and older than the view."""

from __future__ import annotations

import dataclasses

from segsync.model import ConsentStatus
from segsync.sync import SyncPolicy, reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

PLATFORMS = ("mc", "hs", "bv")
POLICY = SyncPolicy(platforms=PLATFORMS)
OLD, VIEW_TIME, NEW = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00", \
    "2026-03-01T00:00:00+00:00"


def record(pid: str, *, first: str = "Ada", c: str = "subscribed", at: str = VIEW_TIME,
           consent_at: str | None = None, evidence: str | None = "status") -> PlatformRecord:
    return PlatformRecord(platform_id=pid, email="a@x.com", email_key="a@x.com",
                          fields={"first_name": first}, consent=ConsentStatus(c),
                          consent_at=consent_at or at, updated_at=at,
                          consent_evidence=evidence and f"{evidence}={c}")


def view(first: str = "Ada 6", c: str = "subscribed", at: str = VIEW_TIME) -> CanonicalView:
    return CanonicalView(email="a@x.com", fields={"first_name": first}, tags=(),
                         consent=ConsentStatus(c), consent_source="mc", consent_at=at)


def bases(first: str = "Ada 6", c: str = "subscribed") -> dict[str, PlatformRecord]:
    return {p: record(f"{p}-1", first=first, c=c) for p in ("mc", "bv")}


def test_an_older_record_of_a_platform_joining_does_not_undo_a_newer_edit() -> None:
    """HubSpot's record (last modified before the view's records) holds the old first name:
    the view keeps the newer one and HubSpot gets it."""
    out = reconcile("a@x.com", view(), bases(), {"hs": record("hs-1", first="Ada", at=OLD)},
                    POLICY)

    assert out.view.fields["first_name"] == "Ada 6"
    assert out.writes["hs"]["fields"] == {"first_name": "Ada 6"}
    assert "mc" not in out.writes
    assert "bv" not in out.writes


def test_a_newer_record_of_a_platform_joining_is_taken() -> None:
    """Edited there after the view's records: the platform's value is the later word."""
    out = reconcile("a@x.com", view(), bases(), {"hs": record("hs-1", first="Ada 7", at=NEW)},
                    POLICY)

    assert out.view.fields["first_name"] == "Ada 7"
    assert out.writes["mc"]["fields"] == {"first_name": "Ada 7"}


def test_a_priority_list_ranking_the_joining_platform_first_still_wins() -> None:
    policy = SyncPolicy(platforms=PLATFORMS, fields={"first_name": ("hs", "mc", "bv")})
    out = reconcile("a@x.com", view(), bases(), {"hs": record("hs-1", first="Ada", at=OLD)},
                    policy)

    assert out.view.fields["first_name"] == "Ada"


def test_a_value_the_view_lacks_is_filled_in_whatever_its_age() -> None:
    out = reconcile("a@x.com", CanonicalView(email="a@x.com", fields={}, tags=(),
                                             consent=ConsentStatus.SUBSCRIBED),
                    {p: dataclasses.replace(r, fields={}) for p, r in bases().items()},
                    {"hs": record("hs-1", first="Ada", at=OLD)}, POLICY)

    assert out.view.fields["first_name"] == "Ada"


def test_an_old_opt_out_does_not_cancel_a_later_sign_up() -> None:
    """Opted out on HubSpot long ago, signed up since (pending) on Mailchimp: the old opt-out
    stays on HubSpot and the view keeps the later act."""
    out = reconcile("a@x.com", view(c="pending"), bases(c="pending"),
                    {"hs": record("hs-1", c="unsubscribed", at=OLD)}, POLICY)

    assert out.view.consent == ConsentStatus.PENDING
    assert "consent" not in out.writes.get("mc", {})
    assert "consent" not in out.writes.get("hs", {})


def test_an_opt_out_of_unknown_time_or_newer_than_the_view_wins() -> None:
    for at in (NEW, None):
        read = record("hs-1", c="unsubscribed", at=NEW)
        read = dataclasses.replace(read, consent_at=at, updated_at=at)
        out = reconcile("a@x.com", view(c="pending"), bases(c="pending"), {"hs": read}, POLICY)

        assert out.view.consent == ConsentStatus.UNSUBSCRIBED, at
        assert out.writes["mc"]["consent"] == ConsentStatus.UNSUBSCRIBED


def test_an_old_opt_in_of_a_platform_joining_does_not_undo_a_later_opt_out() -> None:
    """The view is an opt-out (Brevo's blocklist) newer than HubSpot's old subscription:
    HubSpot is sent the opt-out, the view stays."""
    out = reconcile("a@x.com", view(c="unsubscribed"), bases(c="unsubscribed"),
                    {"hs": record("hs-1", c="subscribed", at=OLD)}, POLICY)

    assert out.view.consent == ConsentStatus.UNSUBSCRIBED
    assert out.writes["hs"]["consent"] == ConsentStatus.UNSUBSCRIBED


def test_an_opt_in_of_unknown_time_does_not_undo_an_opt_out() -> None:
    read = dataclasses.replace(record("hs-1", c="subscribed"), consent_at=None,
                               updated_at=None)
    out = reconcile("a@x.com", view(c="unsubscribed"), bases(c="unsubscribed"), {"hs": read},
                    POLICY)

    assert out.view.consent == ConsentStatus.UNSUBSCRIBED


def test_an_opt_out_that_never_reached_a_platform_is_sent_there_despite_a_new_sign_up() -> None:
    """Blocklisted on Brevo while HubSpot was refused; then a sign-up on Mailchimp (pending).
    HubSpot's older subscription is not the person's word any more: it gets the opt-out,
    with the opt-out's provenance, not the sign-up's."""
    old_view = dataclasses.replace(view(c="unsubscribed"), consent_source="bv",
                                   consent_evidence="emailBlacklisted=true")
    base = {"mc": record("mc-1", c="unsubscribed"), "bv": record("bv-1", c="unsubscribed"),
            "hs": record("hs-1", c="subscribed", at=OLD)}
    reads = {"mc": record("mc-1", c="pending", at=NEW)}

    out = reconcile("a@x.com", old_view, base, reads, POLICY)

    assert out.view.consent == ConsentStatus.PENDING
    assert out.writes["hs"]["consent"] == ConsentStatus.UNSUBSCRIBED
    assert out.writes["hs"]["consent_source"] == "bv"
    assert "emailBlacklisted" in out.writes["hs"]["consent_evidence"]
