"""The three-way merge of one contact (`segsync.sync.reconcile`), a pure function."""

from __future__ import annotations

from typing import Any

import pytest

from segsync.model import ConsentStatus
from segsync.sync import Direction, SyncPolicy, consent_target, reconcile
from segsync.sync.snapshot import (
    CanonicalView,
    PlatformRecord,
    content_hash,
    dumps,
    encode_record,
)

PLATFORMS = ("mc", "hs", "bv")
POLICY = SyncPolicy(platforms=PLATFORMS)


def snap(pid: str, *, email: str = "a@x.com", f: dict[str, Any] | None = None,
         t: list[str] | None = None, c: str = "subscribed", u: str = "2026-01-01T00:00:00",
         d: bool = False, e: str | None = "") -> PlatformRecord:
    """A record; its consent rests on evidence `e` ("": `consent=<c>`; None: no evidence)."""
    return PlatformRecord(platform_id=pid, email=email, email_key=email.lower(), fields=f or {},
                          tags=tuple(sorted(t or [])), consent=ConsentStatus(c), updated_at=u,
                          deleted=d, consent_evidence=f"consent={c}" if e == "" else e)


def synced(
    f: dict[str, Any] | None = None, t: list[str] | None = None, c: str = "subscribed"
) -> tuple[CanonicalView, dict[str, PlatformRecord]]:
    """Canonical view and identical bases on the three platforms."""
    view = CanonicalView(email="a@x.com", fields=f or {}, tags=tuple(sorted(t or [])),
                         consent=ConsentStatus(c))
    bases = {p: snap(f"{p}-1", f=f, t=t, c=c) for p in PLATFORMS}
    return view, bases


def test_a_field_changed_on_one_platform_is_taken_everywhere() -> None:
    """One side changed: its value wins and the others get exactly that field."""
    view, bases = synced(f={"country": "FR", "city": "Lyon"})

    out = reconcile("a@x.com", view, bases,
                    {"hs": snap("hs-1", f={"country": "BE", "city": "Lyon"})}, POLICY)

    assert out.view.fields == {"country": "BE", "city": "Lyon"}
    assert {p: w.get("fields") for p, w in out.writes.items()} == {
        "mc": {"country": "BE"}, "bv": {"country": "BE"}
    }
    assert out.conflicts == []


def test_nothing_changed_means_no_writes() -> None:
    """A record read again as it was written costs nothing."""
    view, bases = synced(f={"country": "FR"}, t=["vip"])

    out = reconcile("a@x.com", view, bases, {"mc": bases["mc"]}, POLICY)

    assert out.writes == {}


def test_conflict_goes_to_the_latest_change_by_default() -> None:
    """Two platforms changed a field differently: the newest record wins."""
    view, bases = synced(f={"country": "FR"})
    reads = {
        "mc": snap("mc-1", f={"country": "BE"}, u="2026-01-02T00:00:00"),
        "hs": snap("hs-1", f={"country": "NL"}, u="2026-01-03T00:00:00"),
    }

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.fields["country"] == "NL"
    assert out.conflicts == ["country"]
    assert out.writes["mc"]["fields"] == {"country": "NL"}


def test_conflict_follows_a_field_priority_list() -> None:
    """With a priority list the first platform in it wins, whatever the times."""
    policy = SyncPolicy(platforms=PLATFORMS, fields={"country": ("mc", "hs")})
    view, bases = synced(f={"country": "FR"})
    reads = {
        "mc": snap("mc-1", f={"country": "BE"}, u="2026-01-02T00:00:00"),
        "hs": snap("hs-1", f={"country": "NL"}, u="2026-01-03T00:00:00"),
    }

    out = reconcile("a@x.com", view, bases, reads, policy)

    assert out.view.fields["country"] == "BE"


def test_destination_only_changes_are_ignored_and_source_only_never_written() -> None:
    """A destination-only platform is overwritten; a source-only one is never written."""
    policy = SyncPolicy(
        platforms=PLATFORMS,
        directions={"country": {"bv": Direction.DESTINATION_ONLY, "hs": Direction.SOURCE_ONLY}},
    )
    view, bases = synced(f={"country": "FR"})
    reads = {
        "bv": snap("bv-1", f={"country": "XX"}),
        "mc": snap("mc-1", f={"country": "BE"}),
    }

    out = reconcile("a@x.com", view, bases, reads, policy)

    assert out.view.fields["country"] == "BE"
    assert out.writes["bv"]["fields"] == {"country": "BE"}
    assert "hs" not in out.writes


def test_a_cleared_field_is_cleared_everywhere() -> None:
    """Unsetting a field is a change like any other."""
    view, bases = synced(f={"country": "FR"})

    out = reconcile("a@x.com", view, bases, {"mc": snap("mc-1", f={})}, POLICY)

    assert out.view.fields == {}
    assert out.writes["hs"]["fields"] == {"country": None}


def test_tags_merge_as_sets_of_adds_and_removes() -> None:
    """A tag added on one platform and another removed elsewhere: both happen."""
    view, bases = synced(t=["old", "keep"])
    reads = {"mc": snap("mc-1", t=["old", "keep", "new"]), "hs": snap("hs-1", t=["keep"])}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.tags == ("keep", "new")
    assert out.writes["bv"]["tags_add"] == ["new"]
    assert out.writes["bv"]["tags_remove"] == ["old"]
    assert out.writes["mc"]["tags_remove"] == ["old"]
    assert out.writes["hs"]["tags_add"] == ["new"]


def test_a_tag_added_and_removed_follows_the_latest_record() -> None:
    """The same tag added on one side and removed on another: the later change wins."""
    view, bases = synced(t=["vip"])
    reads = {
        "mc": snap("mc-1", t=[], u="2026-01-03T00:00:00"),
        "hs": snap("hs-1", t=["vip", "x"], u="2026-01-02T00:00:00"),
    }

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.tags == ("x",)


def test_segment_tags_are_not_synced_as_tags() -> None:
    """Tags segsync owns (segsync:*, materialised segments) never travel as tags."""
    policy = SyncPolicy(platforms=PLATFORMS, excluded_tags=frozenset({"actifs"}))
    view, bases = synced()

    out = reconcile("a@x.com", view, bases,
                    {"mc": snap("mc-1", t=["actifs", "segsync:x:1"])}, policy)

    assert out.writes == {}


def test_an_opt_out_anywhere_is_an_opt_out_everywhere() -> None:
    """Unsubscribed on one platform reaches all others in the same run, and is recorded."""
    view, bases = synced()

    out = reconcile("a@x.com", view, bases, {"hs": snap("hs-1", c="unsubscribed")}, POLICY)

    assert out.view.consent == "unsubscribed"
    assert {p: w["consent"] for p, w in out.writes.items()} == {
        "mc": "unsubscribed", "bv": "unsubscribed"
    }
    assert [(e.platform, e.previous, e.new, e.source) for e in out.events] == [
        ("hs", "subscribed", "unsubscribed", "hs"),
        ("canonical", "subscribed", "unsubscribed", "hs"),
    ]


def test_an_opt_out_wins_over_a_later_opt_in_of_the_same_run() -> None:
    """A bounce and a newer subscription in one run: the opt-out wins."""
    view, bases = synced(c="pending")
    reads = {
        "mc": snap("mc-1", c="bounced", u="2026-01-02T00:00:00"),
        "hs": snap("hs-1", c="subscribed", u="2026-01-05T00:00:00"),
    }

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.consent == "bounced"
    assert out.writes["hs"]["consent"] == "bounced"


def test_a_newer_opt_in_is_never_written_as_subscribed_over_an_opt_out() -> None:
    """A re-subscription stands where given; opted-out platforms get pending only if configured."""
    policy = SyncPolicy(platforms=PLATFORMS, reconfirm=frozenset({"mc"}))
    view, bases = synced(c="unsubscribed")

    out = reconcile("a@x.com", view, bases,
                    {"hs": snap("hs-1", c="subscribed", u="2026-02-01T00:00:00")}, policy)

    assert out.view.consent == "subscribed"
    assert {p: w.get("consent") for p, w in out.writes.items()} == {"mc": "pending"}


@pytest.mark.parametrize(
    ("canonical", "current", "reconfirm", "expected"),
    [
        ("unsubscribed", "subscribed", False, "unsubscribed"),
        ("bounced", "unsubscribed", False, None),
        ("subscribed", "unsubscribed", False, None),
        ("subscribed", "bounced", True, "pending"),
        ("subscribed", "non_subscribed", False, "subscribed"),
        ("pending", "subscribed", False, None),
        ("non_subscribed", "subscribed", False, "non_subscribed"),
        ("subscribed", "subscribed", True, None),
    ],
)
def test_consent_target_table(canonical: str, current: str, reconfirm: bool,
                              expected: str | None) -> None:
    """What is written where a platform holds `current`: never subscribed over an opt-out."""

    assert consent_target(canonical, current, reconfirm) == expected


def test_a_new_contact_is_created_with_its_consent_and_data() -> None:
    """Seen on one platform only: created on the others with fields, tags and consent."""
    out = reconcile("a@x.com", None, {},
                    {"mc": snap("mc-9", f={"country": "FR"}, t=["vip"], c="subscribed")}, POLICY)

    assert out.writes["hs"] == {
        "cid": "a@x.com", "email": "a@x.com", "create": True, "fields": {"country": "FR"},
        "tags_add": ["vip"], "consent": "subscribed", "consent_source": "mc",
        "consent_evidence": "consent=subscribed",
    }


def test_unknown_consent_creates_non_subscribed() -> None:
    """With no opt-in anywhere a created contact is non_subscribed, never subscribed."""
    out = reconcile("a@x.com", None, {}, {"mc": snap("mc-9", c="non_subscribed")}, POLICY)

    assert out.writes["bv"]["consent"] == "non_subscribed"


def test_a_newly_linked_record_adds_but_never_removes() -> None:
    """A record seen for the first time contributes its values and tags, removes nothing."""
    view, bases = synced(f={"country": "FR"}, t=["vip"])
    del bases["bv"]

    out = reconcile("a@x.com", view, bases,
                    {"bv": snap("bv-7", f={"city": "Paris"}, t=["new"], c="non_subscribed")},
                    POLICY)

    assert out.view.fields == {"country": "FR", "city": "Paris"}
    assert out.view.tags == ("new", "vip")
    assert out.view.consent == "subscribed"
    assert out.writes["bv"]["fields"] == {"country": "FR"}
    assert out.writes["bv"]["consent"] == "subscribed"


def test_an_opt_out_on_a_newly_linked_record_still_wins() -> None:
    """A new record created opted out counts as an opt-out, even against a re-subscription."""
    view, bases = synced(c="unsubscribed")
    del bases["hs"]
    reads = {
        "mc": snap("mc-1", c="subscribed", u="2026-02-01T00:00:00"),
        "hs": snap("hs-2", c="unsubscribed", u="2026-02-02T00:00:00"),
    }

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.consent == "unsubscribed"
    assert out.writes["mc"]["consent"] == "unsubscribed"


def test_a_deleted_record_is_neither_written_nor_recreated() -> None:
    """Deleted on a platform: segsync leaves that platform alone for that contact."""
    view, bases = synced(f={"country": "FR"})
    reads = {"bv": snap("bv-1", d=True), "mc": snap("mc-1", f={"country": "BE"})}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert set(out.writes) == {"hs"}


def test_an_email_change_is_an_update() -> None:
    """A new email on one platform renames the contact on the others."""
    view, bases = synced()

    out = reconcile("a@x.com", view, bases, {"mc": snap("mc-1", email="b@x.com")}, POLICY)

    assert out.view.email == "b@x.com"
    assert {p: w.get("new_email") for p, w in out.writes.items()} == {
        "hs": "b@x.com", "bv": "b@x.com"
    }
    assert all(not w.get("create") for w in out.writes.values())


def test_fields_a_platform_does_not_carry_are_neither_read_nor_written() -> None:
    """platform_fields limits a platform to the fields it has."""
    policy = SyncPolicy(platforms=PLATFORMS, platform_fields={"bv": frozenset({"city"})})
    view, bases = synced(f={"country": "FR"})
    bases["bv"] = snap("bv-1")

    out = reconcile("a@x.com", view, bases, {"mc": snap("mc-1", f={"country": "BE"})}, policy)

    assert "bv" not in out.writes
    assert out.writes["hs"]["fields"] == {"country": "BE"}


@pytest.mark.parametrize(
    "snapshot",
    [
        {"id": "1", "email": "A@x.io", "k": "a@x.io", "f": {"n": "é\"\\"}, "t": ["b"],
         "c": "subscribed", "u": "2026-01-01T00:00:00+00:00"},
        {"id": "1", "k": "a@x.io", "c": "unsubscribed", "ca": "2026-01-02", "u": "2026-01-03"},
        {"id": "1", "k": "a@x.io", "c": "pending", "ca": "2026-01-02"},
        {"id": "1", "k": "a@x.io", "f": {}, "t": [], "c": "non_subscribed"},
        {"id": "1", "k": "a@x.io", "d": True, "e": {"opened": "2026-01-01"}, "u": "2026"},
    ],
)
def test_encode_record_is_dumps_and_content_hash_in_one(snapshot: dict[str, Any]) -> None:
    """The one-pass encoding gives exactly the stored text and the echo hash."""
    record = PlatformRecord.decode(snapshot)

    assert encode_record(record) == (dumps(record.encode()), content_hash(record))
    moved = PlatformRecord.decode(
        {**snapshot, "u": "2027-05-05T00:00:00+00:00", "ca": "2027-05-05"}
    )
    assert encode_record(moved)[1] == content_hash(record)  # times do not change the hash
