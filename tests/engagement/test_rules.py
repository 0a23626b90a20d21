"""Engagement in the rule language: qualified fields, bad input, recurring dates."""

from __future__ import annotations

import datetime as dt

import pytest

from segsync.engagement import ENGAGEMENT_FIELDS, qualified_fields
from segsync.model import Contact, FieldSpec, FieldType, Schema
from segsync.rules import RuleTypeError, evaluate, load_rule
from segsync.rules.evaluate import anniversary

SCHEMA = Schema(fields={
    **ENGAGEMENT_FIELDS, **qualified_fields(["mailchimp", "hubspot"]),
    "birthday": FieldSpec(type=FieldType.DATE, recurring=True),
    "signup_day": FieldSpec(type=FieldType.DATE),
})


def test_a_qualified_field_of_a_configured_platform_loads() -> None:
    rule = load_rule("mailchimp.open_rate > 0.5 and hubspot.last_open within 3 days", SCHEMA)
    assert rule.items[0].field == "mailchimp.open_rate"


def test_a_platform_not_configured_is_an_error_naming_the_configured_ones() -> None:
    with pytest.raises(RuleTypeError) as caught:
        load_rule("brevo.opens > 2", SCHEMA)
    message = str(caught.value)
    assert "platform 'brevo', which is not configured" in message
    assert "configured: hubspot, mailchimp" in message
    assert caught.value.line == 1
    assert caught.value.column == 1


def test_an_unknown_engagement_field_gets_did_you_mean() -> None:
    with pytest.raises(RuleTypeError, match=r"did you mean 'mailchimp\.open_rate'"):
        load_rule("mailchimp.open_rat > 0.5", SCHEMA)
    with pytest.raises(RuleTypeError, match="did you mean 'last_interaction'"):
        load_rule("last_interation within 7 days", SCHEMA)


@pytest.mark.parametrize(("text", "column"), [
    ("open_rate > 50", 13),
    ("country = \"FR\" or hubspot.click_rate between 0 and 1.5", 52),
    ("mailchimp.open_rate in [0.2, -0.1]", 30),
])
def test_a_rate_outside_0_1_is_a_type_error_with_its_position(text: str, column: int) -> None:
    schema = Schema(fields={**SCHEMA.fields, "country": FieldSpec(type=FieldType.TEXT)})
    with pytest.raises(RuleTypeError, match="is outside") as caught:
        load_rule(text, schema)
    assert (caught.value.line, caught.value.column) == (1, column)


def test_fifty_percent_written_as_50_says_how_to_write_it() -> None:
    with pytest.raises(RuleTypeError, match=r"for 50 % write 0.5"):
        load_rule("open_rate > 50", SCHEMA)


def test_rates_at_the_bounds_load() -> None:
    load_rule("open_rate >= 0 and click_rate <= 1", SCHEMA)


# -- recurring dates ----------------------------------------------------------------------

def _born(day: str) -> Contact:
    return Contact(email="b@example.com", fields={"birthday": day, "signup_day": day})


BIRTHDAY = load_rule("birthday within 7 days", SCHEMA)
at = dt.datetime(2026, 12, 28, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("born", "inside"), [
    ("1980-12-28", True),  # today
    ("1990-01-04", True),  # 7 days ahead, across the new year
    ("1990-01-05", False),  # 8 days ahead
    ("1975-12-27", False),  # yesterday: this year's is past, next year's too far
    ("2001-06-01", False),
])
def test_birthday_within_matches_the_anniversary_year_ignored(born: str, inside: bool) -> None:
    assert evaluate(BIRTHDAY, _born(born), now=at, schema=SCHEMA) is inside


def test_a_non_recurring_date_within_stays_in_the_past() -> None:
    rule = load_rule("signup_day within 7 days", SCHEMA)
    assert not evaluate(rule, _born("1990-01-04"), now=at, schema=SCHEMA)
    assert evaluate(rule, _born("2026-12-25"), now=at, schema=SCHEMA)


def test_29_february_is_celebrated_on_28_february_in_other_years() -> None:
    leap = _born("2000-02-29")
    today = load_rule("birthday within 0 days", SCHEMA)
    assert anniversary(dt.date(2000, 2, 29), 2027) == dt.date(2027, 2, 28)
    assert evaluate(today, leap, now=dt.datetime(2027, 2, 28, tzinfo=dt.UTC), schema=SCHEMA)
    assert not evaluate(today, leap, now=dt.datetime(2027, 3, 1, tzinfo=dt.UTC), schema=SCHEMA)
    assert evaluate(today, leap, now=dt.datetime(2028, 2, 29, tzinfo=dt.UTC), schema=SCHEMA)
    assert not evaluate(today, leap, now=dt.datetime(2028, 2, 28, tzinfo=dt.UTC), schema=SCHEMA)


def test_a_year_or_more_holds_every_birthday() -> None:
    rule = load_rule("birthday within 400 days", SCHEMA)
    assert evaluate(rule, _born("1990-05-05"), now=at, schema=SCHEMA)


def test_hours_on_a_recurring_date_is_a_type_error() -> None:
    with pytest.raises(RuleTypeError, match=r"recurring date.*takes days"):
        load_rule("birthday within 48 hours", SCHEMA)
