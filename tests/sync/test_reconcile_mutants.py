"""The merge (`segsync.sync.reconcile`) pinned where mutation testing found it unpinned.

Each test states a documented behaviour (docs/sync.md, docs/consent.md, the module
docstring): directions named per field, rename conflicts, tie-breaks, the times and
provenance the view and the ledger events keep, tag conflicts, and when a re-read opt-out
is a new act. The mutation run and its score are in the note of issue 13.
"""

from __future__ import annotations

from typing import Any

from segsync.model import ConsentStatus
from segsync.sync import ConsentEvent, Direction, SyncPolicy, reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

PLATFORMS = ("mc", "hs", "bv")
POLICY = SyncPolicy(platforms=PLATFORMS)
T0, T1, T2, T3 = ("2026-01-01T00:00:00", "2026-01-02T00:00:00", "2026-01-03T00:00:00",
                  "2026-01-04T00:00:00")
SRC, DEST = Direction.SOURCE_ONLY, Direction.DESTINATION_ONLY


def rec(p: str, *, email: str = "a@x.com", f: dict[str, Any] | None = None,
        t: list[str] | None = None, c: str = "non_subscribed", e: str | None = "",
        u: str | None = T0, ca: str | None = None, lb: str | None = None,
        d: bool = False) -> PlatformRecord:
    """A record on `p`; its consent `c` rests on evidence `e` ("": `status=<c>`; None: none)."""
    return PlatformRecord(platform_id=f"{p}-1", email=email, email_key=email.lower(),
                          fields=f or {}, tags=tuple(sorted(t or [])), consent=ConsentStatus(c),
                          consent_at=ca, legal_basis=lb, updated_at=u, deleted=d,
                          consent_evidence=f"status={c}" if e == "" else e)


def synced(
    f: dict[str, Any] | None = None, t: list[str] | None = None, c: str = "non_subscribed",
    **view: Any,
) -> tuple[CanonicalView, dict[str, PlatformRecord]]:
    """A canonical view and identical bases on the three platforms."""
    canonical = CanonicalView(email="a@x.com", fields=f or {}, tags=tuple(sorted(t or [])),
                              consent=ConsentStatus(c), **view)
    return canonical, {p: rec(p, f=f, t=t, c=c) for p in PLATFORMS}


def policy(**directions: dict[str, Direction]) -> SyncPolicy:
    return SyncPolicy(platforms=PLATFORMS, directions=directions)


# -- directions are per field: a direction on one field binds that field ------------------


def test_a_destination_only_field_ignores_that_platforms_change_only() -> None:
    view, bases = synced(f={"country": "FR", "city": "Lyon"})
    reads = {"mc": rec("mc", f={"country": "BE", "city": "Lyon"}, u=T2),
             "hs": rec("hs", f={"country": "NL", "city": "Lyon"}, u=T1)}

    out = reconcile("a@x.com", view, bases, reads, policy(country={"mc": DEST}))

    assert out.view.fields == {"country": "NL", "city": "Lyon"}
    assert out.conflicts == []
    assert out.writes["mc"]["fields"] == {"country": "NL"}  # destination-only is written


def test_a_source_only_field_is_written_neither_on_update_nor_on_creation() -> None:
    view, bases = synced(f={"country": "FR", "city": "Lyon"})
    del bases["bv"]
    reads = {"mc": rec("mc", f={"country": "BE", "city": "Lyon"}, u=T1)}

    out = reconcile("a@x.com", view, bases, reads,
                    policy(country={"hs": SRC, "bv": SRC}))

    assert "hs" not in out.writes
    assert out.writes["bv"]["create"] is True
    assert out.writes["bv"]["fields"] == {"city": "Lyon"}


def test_destination_only_tags_are_not_read_but_written() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", t=["vip"], u=T1), "hs": rec("hs", t=["new"], u=T1)}

    out = reconcile("a@x.com", view, bases, reads, policy(tags={"mc": DEST}))

    assert out.view.tags == ("new",)
    assert out.writes["mc"]["tags_add"] == ["new"]
    assert out.writes["mc"]["tags_remove"] == ["vip"]


def test_source_only_tags_are_written_neither_on_update_nor_on_creation() -> None:
    view, bases = synced(f={"city": "Lyon"})
    del bases["bv"]
    reads = {"mc": rec("mc", f={"city": "Lyon"}, t=["vip"], u=T1)}

    out = reconcile("a@x.com", view, bases, reads, policy(tags={"hs": SRC, "bv": SRC}))

    assert out.view.tags == ("vip",)
    assert "hs" not in out.writes
    assert out.writes["bv"]["create"] is True
    assert "tags_add" not in out.writes["bv"]


def test_an_opt_in_from_a_destination_only_platform_is_no_offer() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", c="subscribed", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, policy(consent={"mc": DEST}))

    assert out.view.consent == "non_subscribed"
    assert {p: w.get("consent") for p, w in out.writes.items()} == {"mc": "non_subscribed"}


def test_an_opt_in_is_written_neither_to_nor_created_on_a_source_only_platform() -> None:
    view, bases = synced(f={"city": "Lyon"})
    del bases["bv"]
    reads = {"mc": rec("mc", f={"city": "Lyon"}, c="subscribed", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, policy(consent={"hs": SRC, "bv": SRC}))

    assert out.view.consent == "subscribed"
    assert "hs" not in out.writes
    creation = out.writes["bv"]
    assert creation["consent"] == "non_subscribed"
    assert "consent_source" not in creation
    assert "consent_evidence" not in creation


def test_a_rename_on_a_destination_only_platform_is_ignored_and_undone() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", email="b@x.com", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, policy(email={"mc": DEST}))

    assert out.view.email == "a@x.com"
    assert out.writes == {"mc": {"cid": "a@x.com", "email": "b@x.com",
                                 "platform_id": "mc-1", "new_email": "a@x.com"}}


def test_a_rename_is_not_written_to_a_source_only_platform() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", email="b@x.com", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, policy(email={"hs": SRC}))

    assert out.view.email == "b@x.com"
    assert "hs" not in out.writes
    # the record is addressed by the email it holds, and renamed
    assert out.writes["bv"]["email"] == "a@x.com"
    assert out.writes["bv"]["new_email"] == "b@x.com"


# -- email ----------------------------------------------------------------------------------


def test_one_rename_is_no_conflict() -> None:
    view, bases = synced()

    out = reconcile("a@x.com", view, bases, {"hs": rec("hs", email="b@x.com", u=T1)}, POLICY)

    assert out.view.email == "b@x.com"
    assert out.conflicts == []


def test_two_renames_are_a_conflict_settled_by_the_email_priority_list() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", email="b@x.com", u=T2), "hs": rec("hs", email="c@x.com", u=T1)}

    out = reconcile("a@x.com", view, bases, reads,
                    SyncPolicy(platforms=PLATFORMS, fields={"email": ("hs",)}))

    assert out.view.email == "c@x.com"
    assert out.conflicts == ["email"]


def test_a_contact_known_only_from_a_deleted_record_keeps_its_key_as_email() -> None:
    out = reconcile("a@x.com", None, {"mc": rec("mc", d=True)}, {}, POLICY)

    assert out.view.email == "a@x.com"


# -- fields ---------------------------------------------------------------------------------


def test_a_tie_goes_to_the_platform_listed_first() -> None:
    view, bases = synced(f={"country": "FR"})
    reads = {"mc": rec("mc", f={"country": "BE"}, u=T1),
             "hs": rec("hs", f={"country": "NL"}, u=T1)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.fields["country"] == "BE"
    assert out.conflicts == ["country"]


def test_a_record_without_a_time_is_not_the_latest() -> None:
    view, bases = synced(f={"country": "FR"})
    reads = {"mc": rec("mc", f={"country": "BE"}, u=None),
             "hs": rec("hs", f={"country": "NL"}, u=T1)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.fields["country"] == "NL"


def test_several_platforms_changing_a_field_alike_is_no_conflict() -> None:
    view, bases = synced(f={"country": "FR"})
    reads = {"mc": rec("mc", f={"country": "BE"}, u=T1),
             "hs": rec("hs", f={"country": "BE"}, u=T2)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.fields["country"] == "BE"
    assert out.conflicts == []


def test_a_newly_linked_record_holding_the_known_value_changes_nothing() -> None:
    view, bases = synced(f={"country": "FR"})
    del bases["mc"]
    reads = {"mc": rec("mc", f={"country": "FR"}, u=T3),
             "hs": rec("hs", f={"country": "BE"}, u=T1)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.fields == {"country": "BE"}
    assert out.conflicts == []


def test_clearing_a_field_the_view_does_not_hold_is_harmless() -> None:
    view, bases = synced()
    bases["mc"] = rec("mc", f={"nickname": "Ada"})

    out = reconcile("a@x.com", view, bases, {"mc": rec("mc", u=T1)}, POLICY)

    assert out.view.fields == {}


def test_a_field_the_platform_holds_and_the_view_lacks_is_cleared() -> None:
    view, bases = synced()
    bases["hs"] = rec("hs", f={"nickname": "Ada"})

    out = reconcile("a@x.com", view, bases, {"mc": rec("mc", u=T1)}, POLICY)

    assert out.writes["hs"]["fields"] == {"nickname": None}


def test_a_platform_to_create_does_not_hide_the_others() -> None:
    view, bases = synced(f={"country": "FR"})
    del bases["mc"]

    out = reconcile("a@x.com", view, bases, {"hs": rec("hs", f={"country": "BE"}, u=T1)},
                    POLICY)

    assert out.writes["mc"]["create"] is True
    assert "create" not in out.writes["bv"]
    assert out.writes["bv"]["fields"] == {"country": "BE"}


def test_a_platform_deleted_on_does_not_hide_the_others() -> None:
    view, bases = synced(f={"country": "FR"})
    bases["mc"] = rec("mc", f={"country": "FR"}, d=True)

    out = reconcile("a@x.com", view, bases, {"hs": rec("hs", f={"country": "BE"}, u=T1)},
                    POLICY)

    assert set(out.writes) == {"bv"}
    assert out.writes["bv"]["fields"] == {"country": "BE"}


# -- tags -----------------------------------------------------------------------------------


def test_a_tag_added_and_removed_at_the_same_time_is_kept_and_reported() -> None:
    view, bases = synced(t=["vip"])
    reads = {"mc": rec("mc", t=[], u=T1), "hs": rec("hs", t=["vip", "new"], u=T1)}
    bases["hs"] = rec("hs", t=[])  # hs did not hold vip: it adds it

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert "vip" in out.view.tags
    assert out.conflicts == ["tag vip"]


def test_a_tag_removed_after_it_was_added_is_removed() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", t=["vip"], u=T1), "hs": rec("hs", t=[], u=T2)}
    bases["hs"] = rec("hs", t=["vip"])

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.tags == ()


def test_a_tag_added_after_it_was_removed_is_kept() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", t=["vip"], u=T2), "hs": rec("hs", t=[], u=T1)}
    bases["hs"] = rec("hs", t=["vip"])

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.tags == ("vip",)


def test_the_latest_of_several_adds_weighs_against_a_remove() -> None:
    view, bases = synced()
    bases["bv"] = rec("bv", t=["vip"])
    reads = {"mc": rec("mc", t=["vip"], u=T3), "hs": rec("hs", t=["vip"], u=T1),
             "bv": rec("bv", t=[], u=T2)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.tags == ("vip",)


def test_the_latest_of_several_removes_weighs_against_an_add() -> None:
    view, bases = synced(t=["vip"])
    bases["bv"] = rec("bv", t=[])
    reads = {"mc": rec("mc", t=[], u=T3), "hs": rec("hs", t=[], u=T1),
             "bv": rec("bv", t=["vip"], u=T2)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.tags == ()


def test_a_tag_a_platform_never_received_is_not_removed_by_it() -> None:
    view, bases = synced(t=["vip", "new"])
    bases["mc"] = rec("mc", t=["vip"])  # the last write of `new` there did not land

    out = reconcile("a@x.com", view, bases, {"mc": rec("mc", t=["vip"], u=T1)}, POLICY)

    assert out.view.tags == ("new", "vip")
    assert out.writes["mc"]["tags_add"] == ["new"]


# -- consent: offers, times and provenance -----------------------------------------------


def test_a_reading_without_evidence_does_not_hide_a_later_platforms_opt_out() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", c="subscribed", e=None, u=T1),
             "hs": rec("hs", c="unsubscribed", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.consent == "unsubscribed"


def test_a_newly_linked_non_subscribed_does_not_hide_a_later_platforms_opt_out() -> None:
    view, bases = synced()
    del bases["mc"]
    reads = {"mc": rec("mc", u=T1), "hs": rec("hs", c="unsubscribed", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view.consent == "unsubscribed"


def test_the_latest_of_two_opt_ins_wins() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", c="pending", u=T1), "hs": rec("hs", c="subscribed", u=T2)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert (out.view.consent, out.view.consent_source) == ("subscribed", "hs")


def test_two_opt_ins_at_the_same_time_go_to_the_platform_listed_first() -> None:
    view, bases = synced()
    reads = {"mc": rec("mc", c="pending", u=T1), "hs": rec("hs", c="subscribed", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert (out.view.consent, out.view.consent_source) == ("pending", "mc")


def test_the_view_and_the_events_keep_the_winners_time_basis_and_evidence() -> None:
    view, bases = synced()
    reads = {"hs": rec("hs", c="subscribed", e="statusState=SUBSCRIBED", u=T2, ca=T1,
                       lb="consent")}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.view == CanonicalView("a@x.com", {}, (), ConsentStatus.SUBSCRIBED, "hs", T1,
                                     "consent", "statusState=SUBSCRIBED")
    assert out.events == [
        ConsentEvent("hs", "non_subscribed", "subscribed", "hs", T1, "consent",
                     "statusState=SUBSCRIBED"),
        ConsentEvent("canonical", "non_subscribed", "subscribed", "hs", T1, "consent",
                     "statusState=SUBSCRIBED"),
    ]
    assert out.writes["mc"]["consent_basis"] == "consent"
    assert out.writes["mc"]["consent_source"] == "hs"
    assert out.writes["mc"]["consent_evidence"] == "statusState=SUBSCRIBED"


def test_the_consent_time_is_the_record_time_when_the_platform_gives_none() -> None:
    view, bases = synced()

    out = reconcile("a@x.com", view, bases, {"hs": rec("hs", c="subscribed", u=T2)}, POLICY)

    assert out.view.consent_at == T2


def test_a_consent_without_any_time_has_none() -> None:
    view, bases = synced()

    out = reconcile("a@x.com", view, bases, {"hs": rec("hs", c="subscribed", u=None)}, POLICY)

    assert out.view.consent == "subscribed"
    assert out.view.consent_at is None


def test_without_a_consent_offer_the_view_keeps_its_provenance() -> None:
    view, bases = synced(f={"city": "Lyon"}, c="subscribed", consent_source="hs",
                         consent_at=T1, legal_basis="consent",
                         consent_evidence="statusState=SUBSCRIBED")

    out = reconcile("a@x.com", view, bases,
                    {"mc": rec("mc", f={"city": "Paris"}, c="subscribed", u=T2)}, POLICY)

    assert out.view == CanonicalView("a@x.com", {"city": "Paris"}, (),
                                     ConsentStatus.SUBSCRIBED, "hs", T1, "consent",
                                     "statusState=SUBSCRIBED")
    assert out.events == []


def test_an_opt_in_read_again_on_new_evidence_is_no_change() -> None:
    view, bases = synced(c="subscribed")
    reads = {"mc": rec("mc", c="subscribed", e="status=subscribed; ip_opt=192.0.2.1", u=T1)}

    out = reconcile("a@x.com", view, bases, reads, POLICY)

    assert out.events == []
    assert out.writes == {}


# -- a re-read opt-out after segsync's own write: its echo, or a new act ------------------


def _after_own_opt_out(base_u: str | None, read_u: str | None) -> list[ConsentEvent]:
    """The events when mc, where segsync wrote `unsubscribed` (base at `base_u`, no
    evidence), reads `unsubscribed` on evidence at `read_u`."""
    view, bases = synced(c="unsubscribed", consent_source="hs")
    bases["mc"] = rec("mc", c="unsubscribed", e=None, u=base_u)
    reads = {"mc": rec("mc", c="unsubscribed", e="status=unsubscribed", u=read_u)}
    return reconcile("a@x.com", view, bases, reads, POLICY).events


def test_an_own_opt_out_read_back_without_a_time_is_its_echo() -> None:
    assert _after_own_opt_out(T1, None) == []


def test_an_own_opt_out_read_back_later_is_a_new_act() -> None:
    assert [e.platform for e in _after_own_opt_out(T1, T2)] == ["mc"]


def test_an_own_opt_out_of_unknown_time_read_back_is_a_new_act() -> None:
    assert [e.platform for e in _after_own_opt_out(None, T1)] == ["mc"]


def test_record_times_with_offsets_compare_as_instants() -> None:
    """10:00+02:00 is 08:00 UTC: earlier than the write at 09:00 UTC, so an echo."""
    assert _after_own_opt_out("2026-01-01T09:00:00+00:00", "2026-01-01T10:00:00+02:00") == []
    assert [e.platform for e in _after_own_opt_out(
        "2026-01-01T09:00:00+00:00", "2026-01-01T12:00:00+02:00")] == ["mc"]


def test_an_unreadable_time_is_not_after_itself() -> None:
    assert _after_own_opt_out("soon", "soon") == []


# -- a withdrawn opt-in, and opt-ins that are not one -------------------------------------


def test_an_opt_in_seen_on_one_platform_never_unsubscribes_another() -> None:
    view, bases = synced(c="subscribed", consent_source="mc")
    bases["hs"] = rec("hs")  # not yet subscribed there

    out = reconcile("a@x.com", view, bases, {"hs": rec("hs", c="subscribed", u=T1)}, POLICY)

    assert out.view.consent == "subscribed"
    assert all("consent" not in w for w in out.writes.values())


def test_an_opt_out_write_carries_the_opt_outs_own_evidence() -> None:
    view, bases = synced(c="subscribed", consent_source="mc")

    out = reconcile("a@x.com", view, bases, {"hs": rec("hs", c="unsubscribed", u=T1)}, POLICY)

    assert out.writes["mc"]["consent"] == "unsubscribed"
    assert out.writes["mc"]["consent_evidence"] == "status=unsubscribed"


def test_a_withdrawn_opt_in_is_sent_as_an_opt_out_on_the_pending_evidence() -> None:
    view, bases = synced(c="subscribed", consent_source="mc")

    out = reconcile("a@x.com", view, bases, {"mc": rec("mc", c="pending", u=T1)}, POLICY)

    assert out.view.consent == "pending"
    assert out.writes["hs"]["consent"] == "unsubscribed"
    evidence = out.writes["hs"]["consent_evidence"]
    assert evidence.startswith("status=pending")
    assert "opt-in withdrawn" in evidence
