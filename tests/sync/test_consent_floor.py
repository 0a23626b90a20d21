"""The consent floor in the merge (`segsync.sync.reconcile`): offers from evidence only,
`pending` surviving platforms that cannot hold it, and opt-outs winning under every
direction setting, on the read and the write side."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.model import ConsentStatus
from segsync.sync import Direction, SyncPolicy, reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

PLATFORMS = ("mc", "hs", "bv")
POLICY = SyncPolicy(platforms=PLATFORMS)
OPT_OUTS = ("unsubscribed", "bounced")
LATER = "2026-03-01T00:00:00"


def rec(pid: str, c: str, *, e: str | None = "", u: str = "2026-01-01T00:00:00") -> PlatformRecord:
    """A record of a@x.com holding `c`, on evidence `e` ("": `consent=<c>`; None: none)."""
    return PlatformRecord(platform_id=pid, email="a@x.com", email_key="a@x.com",
                          consent=ConsentStatus(c), updated_at=u,
                          consent_evidence=f"consent={c}" if e == "" else e)


def view(c: str, source: str | None = None) -> CanonicalView:
    return CanonicalView(email="a@x.com", consent=ConsentStatus(c), consent_source=source,
                         consent_evidence=f"consent={c}" if source else None)


def bases(c: str, *, written: str | None = None) -> dict[str, PlatformRecord]:
    """Each platform holding `c` (as read, with evidence); `written` ones hold segsync's own
    write (no evidence)."""
    return {p: rec(f"{p}-1", c, e=None if p == written else "") for p in PLATFORMS}


# -- offers from evidence only ------------------------------------------------------------


def test_list_membership_without_evidence_is_no_opt_in() -> None:
    """Brevo reads `subscribed` from mere list membership (no evidence): nothing changes."""
    out = reconcile("a", view("non_subscribed"), bases("non_subscribed"),
                    {"bv": rec("bv-1", "subscribed", e=None, u=LATER)}, POLICY)

    assert out.view.consent == "non_subscribed"
    assert all(w.get("consent") != "subscribed" for w in out.writes.values())
    assert out.events == []


def test_the_same_reading_with_evidence_is_an_opt_in() -> None:
    """With evidence (a declared consent list) the same reading is copied everywhere."""
    out = reconcile("a", view("non_subscribed"), bases("non_subscribed"),
                    {"bv": rec("bv-1", "subscribed", e="listIds=12", u=LATER)}, POLICY)

    assert out.view.consent == "subscribed"
    assert out.view.consent_evidence == "listIds=12"
    assert {p: (w["consent"], w["consent_source"], w["consent_evidence"])
            for p, w in out.writes.items()} == {
        "mc": ("subscribed", "bv", "listIds=12"), "hs": ("subscribed", "bv", "listIds=12"),
    }


def test_unknown_everywhere_on_first_sight_is_non_subscribed() -> None:
    """A new person read `subscribed` without evidence is created nowhere as subscribed,
    their view is non_subscribed, and the unproven readings are brought to it (an echo of
    segsync's own attribute, say, is corrected once, not copied)."""
    reads = {"mc": rec("mc-9", "subscribed", e=None), "bv": rec("bv-9", "pending", e=None)}

    out = reconcile("a", None, {}, reads, POLICY)

    assert out.view.consent == "non_subscribed"
    assert {p: w["consent"] for p, w in out.writes.items()} == dict.fromkeys(
        PLATFORMS, "non_subscribed")


def test_a_newly_linked_record_offers_an_opt_in_only_with_evidence() -> None:
    view_, bases_ = view("non_subscribed"), bases("non_subscribed")
    del bases_["bv"]

    bare = reconcile("a", view_, bases_, {"bv": rec("bv-7", "subscribed", e=None)}, POLICY)
    proven = reconcile("a", view_, bases_, {"bv": rec("bv-7", "subscribed")}, POLICY)

    assert bare.view.consent == "non_subscribed"
    assert proven.view.consent == "subscribed"


def test_a_downgrade_without_evidence_is_no_change() -> None:
    """HubSpot reads back "not specified" (no evidence) where segsync wrote subscribed: the
    view stays subscribed and segsync does not write it again."""
    out = reconcile("a", view("subscribed", "mc"), bases("subscribed", written="hs"),
                    {"hs": rec("hs-1", "non_subscribed", e=None, u=LATER)}, POLICY)

    assert out.view.consent == "subscribed"
    assert out.writes == {}
    assert out.events == []


def test_an_opt_out_without_evidence_still_counts() -> None:
    """Opt-outs must carry evidence, but one that does not is never ignored (the floor)."""
    out = reconcile("a", view("subscribed", "mc"), bases("subscribed"),
                    {"hs": rec("hs-1", "unsubscribed", e=None, u=LATER)}, POLICY)

    assert out.view.consent == "unsubscribed"
    assert {p: w["consent"] for p, w in out.writes.items()} == {
        "mc": "unsubscribed", "bv": "unsubscribed"}


def test_the_legal_basis_is_the_winners_own() -> None:
    """A new opt-in without a basis does not inherit the basis of an older, other one."""
    old = CanonicalView(email="a@x.com", consent=ConsentStatus.UNSUBSCRIBED,
                        consent_source="hs", legal_basis="CONSENT_WITH_NOTICE")
    out = reconcile("a", old, bases("unsubscribed"),
                    {"mc": rec("mc-1", "subscribed", u=LATER)}, POLICY)

    assert out.view.consent == "subscribed"
    assert out.view.legal_basis is None


# -- pending survives ---------------------------------------------------------------------


def test_pending_survives_a_platform_that_reads_it_back_as_unknown() -> None:
    """Mailchimp pending; HubSpot (which cannot hold pending) reads back "not specified":
    the view stays pending, nothing is written, over two runs (no flapping)."""
    canonical, bases_ = view("pending", "mc"), bases("pending", written="hs")
    reads = {"hs": rec("hs-1", "non_subscribed", e=None, u=LATER)}

    first = reconcile("a", canonical, bases_, reads, POLICY)
    second = reconcile("a", first.view, bases_, reads, POLICY)

    assert first.view.consent == second.view.consent == "pending"
    assert first.writes == second.writes == {}


def test_a_reconfirmation_pending_is_left_for_the_person() -> None:
    """Where re-confirmation is configured, a platform holding `pending` is never sent
    `subscribed`: only the person completes it."""
    policy = SyncPolicy(platforms=PLATFORMS, reconfirm=frozenset({"mc"}))
    out = reconcile("a", view("subscribed", "hs"),
                    {"mc": rec("mc-1", "pending"), "hs": rec("hs-1", "subscribed"),
                     "bv": rec("bv-1", "subscribed")}, {}, policy)

    assert "mc" not in out.writes


# -- the floor under every direction setting ----------------------------------------------

DIRECTIONS = st.sampled_from([None, *Direction])


def _policy(choice: dict[str, Direction | None], key: str) -> SyncPolicy:
    per = {p: d for p, d in choice.items() if d is not None}
    return SyncPolicy(platforms=PLATFORMS, directions={key: per} if per else {})


@settings(max_examples=150, deadline=None)
@given(
    choice=st.fixed_dictionaries(dict.fromkeys(PLATFORMS, DIRECTIONS)),
    key=st.sampled_from(["consent", "*"]),
    where=st.sampled_from(PLATFORMS),
    out=st.sampled_from(OPT_OUTS),
    before=st.sampled_from(["subscribed", "pending", "non_subscribed"]),
    fresh=st.booleans(),
    rival=st.booleans(),
)
def test_an_opt_out_wins_everywhere_under_any_directions(
    choice: dict[str, Direction | None], key: str, where: str, out: str, before: str,
    fresh: bool, rival: bool,
) -> None:
    """Read side: an opt-out read on any platform, whatever its direction (destination-only
    too), newly linked or not, against a newer opt-in elsewhere, becomes the view. Write
    side: every other platform not holding an opt-out is written it (source-only too)."""
    policy = _policy(choice, key)
    bases_ = bases(before)
    if fresh:
        del bases_[where]
    reads = {where: rec(f"{where}-2", out, u="2026-02-01T00:00:00")}
    if rival:  # a newer opt-in on another platform of the same run
        other = next(p for p in PLATFORMS if p != where)
        reads[other] = rec(f"{other}-1", "subscribed", u=LATER)

    result = reconcile("a", view(before, "mc"), bases_, reads, policy)

    assert result.view.consent == out
    for p in PLATFORMS:
        if p != where:
            assert result.writes[p].get("consent") == out, (p, result.writes)


@pytest.mark.parametrize(
    ("where", "direction"),
    list(itertools.product(PLATFORMS, [Direction.SOURCE_ONLY, Direction.DESTINATION_ONLY])),
)
def test_an_opt_out_is_created_with_the_person_under_any_direction(
    where: str, direction: Direction
) -> None:
    """A person first seen opted out is created opted out everywhere, even on a
    source-only platform (which is otherwise never written)."""
    policy = SyncPolicy(platforms=PLATFORMS,
                        directions={"consent": dict.fromkeys(PLATFORMS, direction)})
    out = reconcile("a", None, {}, {where: rec(f"{where}-9", "bounced")}, policy)

    assert out.view.consent == "bounced"
    assert {p: w["consent"] for p, w in out.writes.items()} == {
        p: "bounced" for p in PLATFORMS if p != where}


@settings(max_examples=150, deadline=None)
@given(
    choice=st.fixed_dictionaries(dict.fromkeys(PLATFORMS, DIRECTIONS)),
    held=st.fixed_dictionaries(
        {p: st.sampled_from(["subscribed", "pending", "non_subscribed", *OPT_OUTS])
         for p in PLATFORMS}),
    offer=st.sampled_from(PLATFORMS),
    reconfirm=st.frozensets(st.sampled_from(PLATFORMS)),
)
def test_never_subscribed_over_an_opt_out_under_any_directions(
    choice: dict[str, Direction | None], held: dict[str, str], offer: str,
    reconfirm: frozenset[str],
) -> None:
    """Write side: whatever the directions, no platform holding an opt-out is written
    `subscribed`, and `pending` only where re-confirmation is configured."""
    per = {p: d for p, d in choice.items() if d is not None}
    policy = SyncPolicy(platforms=PLATFORMS, directions={"consent": per} if per else {},
                        reconfirm=reconfirm)
    bases_ = {p: rec(f"{p}-1", s) for p, s in held.items()}
    reads = {offer: rec(f"{offer}-1", "subscribed", u=LATER)}

    result = reconcile("a", view("unsubscribed", "mc"), bases_, reads, policy)

    for p, w in result.writes.items():
        if (reads.get(p) or bases_[p]).consent in OPT_OUTS:
            assert w.get("consent") in (None, "pending", *OPT_OUTS), (p, w)
            if w.get("consent") == "pending":
                assert p in reconfirm


# -- an opt-out everywhere, its own platform included -------------------------------------


def test_an_opt_out_that_leaves_the_person_reachable_is_sent_to_its_own_platform() -> None:
    """Brevo reads `listUnsubscribed` on a consent list (an opt-out) but the contact is not
    blocklisted (`reachable`): the opt-out goes everywhere, Brevo included, although its
    status already compares equal (issue 13, A)."""
    reach = dataclasses.replace(rec("bv-1", "unsubscribed", e="listUnsubscribed=12", u=LATER),
                                reachable=True)

    out = reconcile("a", view("subscribed", "mc"), bases("subscribed"), {"bv": reach}, POLICY)

    assert out.view.consent == "unsubscribed"
    assert {p: w["consent"] for p, w in out.writes.items()} == dict.fromkeys(
        PLATFORMS, "unsubscribed")
    # the same on a later run, where Brevo is not read again but its base is still reachable
    again = reconcile("a", out.view, {**bases("unsubscribed"), "bv": reach}, {}, POLICY)
    assert again.writes["bv"]["consent"] == "unsubscribed"


def test_an_unreachable_opt_out_is_not_written_again() -> None:
    """Once blocklisted (the record no longer says reachable) nothing more is sent."""
    blocked = rec("bv-1", "unsubscribed", e="emailBlacklisted=true", u=LATER)

    out = reconcile("a", view("unsubscribed", "bv"), bases("unsubscribed"), {"bv": blocked},
                    POLICY)

    assert out.writes == {}


def test_a_new_opt_out_act_that_keeps_the_status_is_an_offer() -> None:
    """HubSpot already read unsubscribed; the person now opts out of all email there
    (`hs_email_optout=true` added: same status, new evidence). The view had become pending
    (a new Mailchimp sign-up): the new opt-out wins and reaches Mailchimp (issue 13, B)."""
    bases_ = {"mc": rec("mc-1", "pending"), "bv": rec("bv-1", "unsubscribed"),
              "hs": rec("hs-1", "unsubscribed", e="statusState=UNSUBSCRIBED")}
    reads = {"hs": rec("hs-1", "unsubscribed", u=LATER,
                       e="hs_email_optout=true; statusState=UNSUBSCRIBED")}

    out = reconcile("a", view("pending", "mc"), bases_, reads, POLICY)

    assert out.view.consent == "unsubscribed"
    assert out.writes["mc"]["consent"] == "unsubscribed"
    assert out.view.consent_evidence == "hs_email_optout=true; statusState=UNSUBSCRIBED"


def test_a_new_opt_out_act_after_segsyncs_own_write_is_an_offer() -> None:
    """Where the base is segsync's own write (no evidence), a reading changed after the
    write is a new act; the reading back of the write itself (same time) is its echo."""
    bases_ = {"mc": rec("mc-1", "pending"), "bv": rec("bv-1", "unsubscribed"),
              "hs": rec("hs-1", "unsubscribed", e=None)}
    act = rec("hs-1", "unsubscribed", u=LATER, e="hs_email_optout=true")
    echo = rec("hs-1", "unsubscribed", e="statusState=UNSUBSCRIBED")  # the write's own time

    acted = reconcile("a", view("pending", "mc"), bases_, {"hs": act}, POLICY)
    echoed = reconcile("a", view("pending", "mc"), bases_, {"hs": echo}, POLICY)

    assert acted.writes["mc"]["consent"] == "unsubscribed"
    assert echoed.view.consent == "pending"
    assert "mc" not in echoed.writes


def test_a_confirmed_opt_in_that_turns_pending_is_withdrawn_everywhere() -> None:
    """Mailchimp held `subscribed` (copied to the others) and now reads `pending`: the
    person unsubscribed and signed up again between two runs. The view is pending, and the
    platforms holding the copied opt-in get the opt-out a run in between would have sent."""
    out = reconcile("a", view("subscribed", "mc"), bases("subscribed"),
                    {"mc": rec("mc-1", "pending", u=LATER)}, POLICY)

    assert out.view.consent == "pending"
    assert {p: w["consent"] for p, w in out.writes.items()} == {
        "hs": "unsubscribed", "bv": "unsubscribed"}
    assert "withdrawn" in (out.writes["hs"].get("consent_evidence") or "")
