"""Canonical engagement = documented aggregates of each platform's own values (issue #15)."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.engagement import (
    AGGREGATES,
    ENGAGEMENT_FIELDS,
    aggregate,
    engagement_view,
    platform_values,
    qualified_fields,
)
from segsync.model import Contact, FieldSpec, FieldType, Schema
from segsync.rules import evaluate, load_rule

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
PLATFORMS = ("mailchimp", "hubspot", "brevo")
SCHEMA = Schema(fields={**ENGAGEMENT_FIELDS, **qualified_fields(PLATFORMS),
                        "birthday": FieldSpec(type=FieldType.DATE, recurring=True)})
ACTIF = load_rule("open_rate > 0.5 and last_interaction within 7 days", SCHEMA)


def person(**per_platform: dict[str, Any]) -> Contact:
    return Contact(email="p@example.com", engagement=engagement_view(per_platform))


def days_ago(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def test_a_reader_on_any_single_platform_is_actif() -> None:
    """The seeds' example selects the same people whichever platform emails them."""
    hubspot_only = person(hubspot={"emails_delivered": 10, "opens": 8, "last_open": days_ago(2)})
    mailchimp_only = person(mailchimp={"open_rate": 0.8, "last_open": days_ago(1)})
    brevo_only = person(brevo={"emails_delivered": 4, "opens": 3, "last_click": days_ago(3)})
    several = person(mailchimp={"open_rate": 0.9}, hubspot={"emails_delivered": 2, "opens": 1,
                                                             "last_open": days_ago(6)})

    for who in (hubspot_only, mailchimp_only, brevo_only, several):
        assert evaluate(ACTIF, who, now=NOW, schema=SCHEMA)


def test_a_reader_with_nothing_recent_or_a_low_rate_is_not_actif() -> None:
    stale = person(hubspot={"emails_delivered": 10, "opens": 8, "last_open": days_ago(8)})
    low = person(brevo={"emails_delivered": 10, "opens": 5, "last_open": days_ago(1)})
    nothing = person()

    assert not any(evaluate(ACTIF, who, now=NOW, schema=SCHEMA) for who in (stale, low, nothing))


def test_absent_everywhere_is_unset_never_zero() -> None:
    who = person(mailchimp={}, hubspot={"last_open": days_ago(1)})
    unset = load_rule("open_rate is not set and opens is not set", SCHEMA)
    zero = load_rule("opens = 0", SCHEMA)

    assert evaluate(unset, who, now=NOW, schema=SCHEMA)
    assert not evaluate(zero, who, now=NOW, schema=SCHEMA)


def test_rates_are_derived_from_the_sums_not_averaged() -> None:
    """8/10 on one platform and 0/90 on another is 8 %, not the 40 % of a plain mean."""
    view = engagement_view({"hubspot": {"emails_delivered": 10, "opens": 8},
                            "brevo": {"emails_delivered": 90, "opens": 0}})
    assert view["open_rate"] == 0.08
    assert view["opens"] == 8
    assert view["emails_delivered"] == 100


def test_a_rate_without_sends_weighs_as_the_mean_of_the_others() -> None:
    """Mailchimp gives a rate only: it counts as many sends as the platforms with counts do on
    average (docs/rules.md); alone, rates without sends are averaged."""
    mixed = engagement_view({"mailchimp": {"open_rate": 0.2},
                             "hubspot": {"emails_delivered": 10, "opens": 8}})
    assert mixed["open_rate"] == (8 + 0.2 * 10) / 20
    alone = engagement_view({"mailchimp": {"open_rate": 0.2}, "brevo": {"open_rate": 0.6}})
    assert abs(alone["open_rate"] - 0.4) < 1e-12


def test_signup_source_is_the_one_of_the_earliest_signup() -> None:
    view = engagement_view({
        "mailchimp": {"signup_source": "API", "signup_at": days_ago(10)},
        "hubspot": {"signup_source": "FORM", "signup_at": days_ago(400)},
    })
    assert view["signup_source"] == "FORM"
    assert view["signup_at"] == days_ago(400)


def test_opted_in_at_is_the_earliest_and_last_dates_the_latest() -> None:
    view = engagement_view({
        "mailchimp": {"opted_in_at": days_ago(5), "last_open": days_ago(9)},
        "brevo": {"opted_in_at": days_ago(50), "last_click": days_ago(3)},
    })
    assert view["opted_in_at"] == days_ago(50)
    assert view["last_open"] == days_ago(9)
    assert view["last_interaction"] == days_ago(3)
    assert view["mailchimp.last_interaction"] == days_ago(9)


def test_member_rating_stays_the_platform_s_own() -> None:
    view = engagement_view({"hubspot": {}, "mailchimp": {"member_rating": 4}})
    assert view["member_rating"] == 4
    assert view["mailchimp.member_rating"] == 4
    assert "hubspot.member_rating" not in view


def test_older_mapping_names_are_read_as_the_new_ones() -> None:
    assert platform_values({"rating": 3, "emails_opened": "7"}) == {"member_rating": 3, "opens": 7}


def test_a_rate_outside_0_1_read_from_a_platform_is_no_figure() -> None:
    assert platform_values({"open_rate": 55}) == {}


# -- differential: the aggregates against an independent reference computation ------------

_DATES = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2027, 1, 1),
                      timezones=st.just(dt.UTC))
_COUNTS = st.integers(min_value=0, max_value=10_000)
_ONE_PLATFORM = st.fixed_dictionaries({}, optional={
    "emails_delivered": _COUNTS, "opens": _COUNTS, "clicks": _COUNTS,
    "open_rate": st.floats(0, 1), "click_rate": st.floats(0, 1),
    "last_open": _DATES, "last_click": _DATES, "signup_at": _DATES, "opted_in_at": _DATES,
    "signup_source": st.sampled_from(["API", "FORM", "IMPORT"]),
    "member_rating": st.integers(1, 5),
})
_PER_PLATFORM = st.dictionaries(st.sampled_from(PLATFORMS), _ONE_PLATFORM, max_size=3)


def _reference(per: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The documented functions, written out again, with exact fractions for rates."""
    def values(key: str) -> list[Any]:
        return [v[key] for v in per.values() if key in v]

    out: dict[str, Any] = {}
    for key in ("last_open", "last_click"):
        if values(key):
            out[key] = max(values(key))
    if values("last_open") + values("last_click"):
        out["last_interaction"] = max(values("last_open") + values("last_click"))
    for key in ("emails_delivered", "opens", "clicks"):
        if values(key):
            out[key] = sum(values(key))
    for key in ("opted_in_at", "signup_at"):
        if values(key):
            out[key] = min(values(key))
    for rate, count in (("open_rate", "opens"), ("click_rate", "clicks")):
        exact: list[tuple[Fraction, Fraction]] = []
        loose: list[Fraction] = []
        for v in per.values():
            sent = v.get("emails_delivered", 0)
            if sent > 0 and count in v:
                exact.append((Fraction(min(v[count], sent)), Fraction(sent)))
            elif sent > 0 and rate in v:
                exact.append((Fraction(v[rate]) * sent, Fraction(sent)))
            elif rate in v:
                loose.append(Fraction(v[rate]))
        if exact or loose:
            weight = sum(s for _, s in exact) / len(exact) if exact else Fraction(1)
            total = sum(s for _, s in exact) + weight * len(loose)
            out[rate] = (sum(c for c, _ in exact) + weight * sum(loose)) / total
    signed = [(v["signup_at"], i) for i, v in enumerate(per.values())
              if "signup_at" in v and "signup_source" in v]
    if signed:
        out["signup_source"] = list(per.values())[min(signed)[1]]["signup_source"]
    elif values("signup_source"):
        out["signup_source"] = values("signup_source")[0]
    if values("member_rating"):
        out["member_rating"] = values("member_rating")[0]
    return out


@settings(max_examples=300, deadline=None)
@given(_PER_PLATFORM)
def test_aggregates_equal_the_reference_computation(per: dict[str, dict[str, Any]]) -> None:
    got = aggregate({p: platform_values(v) for p, v in per.items()})
    want = _reference(per)

    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, Fraction):
            assert abs(got[key] - float(value)) < 1e-9, key
        else:
            assert got[key] == value, key
    assert set(got) <= set(AGGREGATES)


_RULES = [
    "open_rate > 0.5 and last_interaction within 7 days",
    "not last_interaction within 90 days",
    "opens >= 3 or clicks >= 1",
    "click_rate between 0.1 and 0.9",
    "opted_in_at before 2025-01-01",
    "signup_source = \"FORM\"",
    "member_rating >= 4",
    "open_rate is not set",
    "mailchimp.open_rate > 0.5 or hubspot.opens > 2",
]


@settings(max_examples=200, deadline=None)
@given(_PER_PLATFORM, st.sampled_from(PLATFORMS))
def test_a_created_copy_never_changes_anyones_membership(
    per: dict[str, dict[str, Any]], copy_on: str
) -> None:
    """A record segsync created carries no engagement until the platform emails the person:
    it adds nothing to the aggregates, so no segment gains or loses anyone."""
    with_copy = {**per, copy_on: per.get(copy_on, {})}
    before = Contact(email="p@example.com", engagement=engagement_view(per))
    after = Contact(email="p@example.com", engagement=engagement_view(with_copy))
    for text in _RULES:
        rule = load_rule(text, SCHEMA)
        assert evaluate(rule, before, now=NOW, schema=SCHEMA) == evaluate(
            rule, after, now=NOW, schema=SCHEMA), text
