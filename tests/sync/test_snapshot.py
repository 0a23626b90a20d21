"""The storage codec of snapshots (`segsync.sync.snapshot`): records and views, short keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from segsync.connector import RemoteContact
from segsync.model import Consent, ConsentStatus
from segsync.sync.plan import ChangeRow
from segsync.sync.snapshot import (
    CanonicalView,
    PlatformRecord,
    apply_change,
    content_hash,
    encode_record,
)

AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def remote(**consent: Any) -> RemoteContact:
    return RemoteContact(
        platform_id="p-1", email="A@x.com", fields={"n": 1, "gone": None}, tags=frozenset("ba"),
        consent=Consent(**consent), engagement={"opened": AT}, updated_at=AT,
    )


def test_a_record_is_stored_in_the_compact_form_of_earlier_versions() -> None:
    """The stored keys and values are those segsync always wrote (no migration)."""
    record = PlatformRecord.of(
        remote(status="unsubscribed", updated_at=AT, legal_basis="consent"), "a@x.com"
    )

    assert record.encode() == {
        "id": "p-1", "email": "A@x.com", "k": "a@x.com", "f": {"n": 1}, "t": ["a", "b"],
        "c": "unsubscribed", "ca": AT.isoformat(), "lb": "consent",
        "e": {"opened": AT.isoformat()}, "u": AT.isoformat(),
    }
    assert PlatformRecord.decode(record.encode()) == record


def test_consent_evidence_travels_from_the_read_to_the_store() -> None:
    """Evidence is kept as `ce` and counts in the content hash; without it, no key."""
    with_evidence = PlatformRecord.of(
        remote(status="subscribed", evidence="status=subscribed"), "a@x.com"
    )
    without = PlatformRecord.of(remote(status="subscribed"), "a@x.com")

    assert with_evidence.consent_evidence == "status=subscribed"
    assert with_evidence.encode()["ce"] == "status=subscribed"
    assert "ce" not in without.encode()
    assert PlatformRecord.loads(encode_record(with_evidence)[0]) == with_evidence
    assert content_hash(with_evidence) != content_hash(without)


def test_a_stored_record_of_an_older_version_decodes_with_defaults() -> None:
    """Keys absent from a stored record (older snapshots, deletions) take their defaults."""
    record = PlatformRecord.loads('{"id":"1","k":"a@x.io","d":true}')

    assert record == PlatformRecord("1", "", "a@x.io", deleted=True)
    assert record.consent is ConsentStatus.NON_SUBSCRIBED


def test_a_view_round_trips_with_its_short_keys() -> None:
    """A view's optional consent keys are stored only when set."""
    view = CanonicalView("a@x.com", {"n": 1}, ("vip",), ConsentStatus.UNSUBSCRIBED,
                         consent_source="hs", consent_at="2026-01-01", legal_basis="consent",
                         consent_evidence="status=unsubscribed")

    assert view.encode() == {
        "email": "a@x.com", "f": {"n": 1}, "t": ["vip"], "c": "unsubscribed", "cs": "hs",
        "ca": "2026-01-01", "lb": "consent", "ce": "status=unsubscribed",
    }
    assert CanonicalView.loads(view.dumps()) == view
    assert CanonicalView("a@x.com").encode() == {
        "email": "a@x.com", "f": {}, "t": [], "c": "non_subscribed"
    }


def test_a_written_consent_has_no_evidence_and_other_writes_keep_it() -> None:
    """What segsync wrote rests on its own write: the evidence goes with a consent change."""
    before = PlatformRecord("p-1", "a@x.com", "a@x.com", {"n": 1}, ("a",),
                            ConsentStatus.SUBSCRIBED, consent_evidence="status=subscribed")
    tags_only = ChangeRow(cid="a@x.com", email="a@x.com", platform_id="p-1", tags_add=["b"])
    consent = ChangeRow(cid="a@x.com", email="a@x.com", platform_id="p-1",
                        consent=ConsentStatus.UNSUBSCRIBED, consent_basis="consent")

    kept = apply_change(before, tags_only, "p-1", email_key="a@x.com", at="2026-02-01")
    written = apply_change(before, consent, "p-1", email_key="a@x.com", at="2026-02-01")

    assert (kept.tags, kept.consent_evidence, kept.updated_at) == (
        ("a", "b"), "status=subscribed", "2026-02-01"
    )
    assert (written.consent, written.consent_at, written.legal_basis, written.consent_evidence) == (
        ConsentStatus.UNSUBSCRIBED, "2026-02-01", "consent", None
    )


def test_a_creation_starts_from_an_empty_record() -> None:
    """A record written where there was none (or a deleted one) holds only the change."""
    gone = PlatformRecord("p-0", "a@x.com", "a@x.com", {"old": 1}, deleted=True)
    create = ChangeRow(cid="a@x.com", email="A@x.com", create=True, fields={"n": AT.date()})

    for before in (None, gone):
        record = apply_change(before, create, "p-9", email_key="a@x.com", at="2026-02-01")
        assert record == PlatformRecord("p-9", "A@x.com", "a@x.com", {"n": "2026-01-02"},
                                        updated_at="2026-02-01")


def test_reachable_travels_to_the_store_and_a_written_opt_out_ends_it() -> None:
    """`reachable` is stored as `r` only when the platform says it (older snapshots and
    every other record keep their form and hash); a consent segsync writes ends it, other
    writes keep it."""
    base = RemoteContact(platform_id="p-1", email="a@x.com", updated_at=AT,
                         consent=Consent(status="unsubscribed", evidence="listUnsubscribed=1"))
    plain = PlatformRecord.of(base, "a@x.com")
    reach = PlatformRecord.of(base.model_copy(update={"reachable": True}), "a@x.com")

    assert plain.reachable is None
    assert "r" not in plain.encode()
    assert reach.reachable is True
    assert reach.encode()["r"] is True
    assert PlatformRecord.loads(encode_record(reach)[0]) == reach
    assert content_hash(reach) != content_hash(plain)
    opt_out = ChangeRow(cid="a@x.com", email="a@x.com", platform_id="p-1",
                        consent=ConsentStatus.UNSUBSCRIBED)
    tags_only = ChangeRow(cid="a@x.com", email="a@x.com", platform_id="p-1", tags_add=["b"])
    assert apply_change(reach, opt_out, "p-1", email_key="a@x.com").reachable is None
    assert apply_change(reach, tags_only, "p-1", email_key="a@x.com").reachable is True
