"""The reference semantics: every operator, unset values, case, dates and granularity."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from segsync.model import Consent, ConsentStatus, Contact, FieldSpec, FieldType, Schema
from segsync.rules.evaluate import evaluate
from segsync.rules.parser import parse

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)

SCHEMA = Schema(fields={
    "name": FieldSpec(type=FieldType.TEXT),
    "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "fr")),
    "language": FieldSpec(type=FieldType.ENUM),
    "ltv": FieldSpec(type=FieldType.NUMBER),
    "orders": FieldSpec(type=FieldType.INTEGER),
    "vip": FieldSpec(type=FieldType.BOOLEAN),
    "birthday": FieldSpec(type=FieldType.DATE),
    "last_open": FieldSpec(type=FieldType.DATETIME, read_only=True),
    "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "News", "offers")),
})


def contact(**fields: Any) -> Contact:
    tags = fields.pop("tags", frozenset())
    consent = fields.pop("consent", ConsentStatus.NON_SUBSCRIBED)
    engagement = {k: fields.pop(k) for k in ("last_open",) if k in fields}
    return Contact(email="Anna.Smith@Example.COM", fields=fields, engagement=engagement,
                   tags=frozenset(tags), consent=Consent(status=consent))


def matches(text: str, person: Contact, *, schema: Schema | None = SCHEMA,
            now: dt.datetime = NOW) -> bool:
    return evaluate(parse(text), person, now=now, schema=schema)


UNSET_FALSE = [
    'name = "x"', 'name != "x"', 'name in ["x"]', 'name not in ["x"]', 'name contains ""',
    'name starts_with "x"', 'name ends_with "x"', "name is set",
    "ltv < 1", "ltv <= 1", "ltv > 1", "ltv >= 1", "ltv != 1", "ltv between 0 and 10",
    "vip = false", "vip != true",
    "birthday before 2030-01-01", "birthday after 1900-01-01", "birthday within 100000 days",
    "birthday between 1900-01-01 and 2100-01-01", "birthday != 2000-01-01",
    "last_open within 10 days", "last_open before 2030-01-01", "last_open after 2000-01-01",
    'interests has "news"', "interests is set", 'tags has "vip"', "tags is set",
    'country not in []',
]


@pytest.mark.parametrize("text", UNSET_FALSE)
@pytest.mark.parametrize("unset", [None, "", "absent"])
def test_every_condition_on_an_unset_field_is_false(text: str, unset: Any) -> None:
    """Unset (None, "", or absent; empty for multi-valued) makes every condition false."""

    name = parse(text).field  # type: ignore[union-attr]
    fields: dict[str, Any] = {}
    if unset != "absent" and name not in ("tags",):
        fields[name] = frozenset() if name == "interests" and unset == "" else unset

    assert matches(text, contact(**fields)) is False
    assert matches(text.replace(" is set", " is not set"), contact(**fields)) is (
        " is set" in text
    )


def test_not_is_boolean_negation_but_ne_is_false_when_unset() -> None:
    """`not country = "FR"` holds for an unset country; `country != "FR"` does not."""

    nobody = contact()

    assert matches('not country = "FR"', nobody) is True
    assert matches('country != "FR"', nobody) is False
    assert matches('not country in ["FR"]', nobody) is True
    assert matches('country not in ["FR"]', nobody) is False
    assert matches('country not in ["FR"]', contact(country="BE")) is True


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ('name = "zoë"', {"name": "ZOË"}, True),
        ('name = "strasse"', {"name": "Straße"}, True),
        ('name != "ZOË"', {"name": "zoë"}, False),
        ('name != "Zoe"', {"name": "zoë"}, True),
        ('name in ["x", "ANNA"]', {"name": "anna"}, True),
        ('name contains "NN"', {"name": "anna"}, True),
        ('name starts_with "AN"', {"name": "anna"}, True),
        ('name ends_with "NA"', {"name": "anna"}, True),
        ('name ends_with "x"', {"name": "anna"}, False),
        ('name contains ""', {"name": "anna"}, True),
        ('email = "anna.smith@example.com"', {}, True),
        ('email ends_with "@EXAMPLE.com"', {}, True),
        ('country = "FR"', {"country": "fr"}, False),
        ('country = "fr"', {"country": "fr"}, True),
        ('country in ["FR"]', {"country": "fr"}, False),
        ('language = "en"', {"language": "EN"}, False),
        ("ltv = 10", {"ltv": 10.0}, True),
        ("ltv = 10.5", {"ltv": 10.5}, True),
        ("ltv < 10", {"ltv": 9.99}, True),
        ("ltv < 10", {"ltv": 10}, False),
        ("ltv <= 10", {"ltv": 10}, True),
        ("ltv > 10", {"ltv": 10}, False),
        ("ltv >= 10", {"ltv": 10}, True),
        ("ltv != 10", {"ltv": 11}, True),
        ("ltv = 0", {"ltv": 0}, True),
        ("ltv between 10 and 20", {"ltv": 10}, True),
        ("ltv between 10 and 20", {"ltv": 20}, True),
        ("ltv between 10 and 20", {"ltv": 20.01}, False),
        ("ltv in [1, 2.5]", {"ltv": 2.5}, True),
        ("orders = 3", {"orders": 3}, True),
        ("vip = false", {"vip": False}, True),
        ("vip is set", {"vip": False}, True),
        ("vip != true", {"vip": False}, True),
        ("vip = true", {"vip": False}, False),
        ('tags has "VIP"', {"tags": {"vip"}}, True),
        ('tags has "vip"', {"tags": {"news"}}, False),
        ('not tags has "vip"', {"tags": set()}, True),
        ('interests has "news"', {"interests": {"News"}}, False),
        ('interests has "News"', {"interests": {"News", "offers"}}, True),
        ("consent = subscribed", {"consent": ConsentStatus.SUBSCRIBED}, True),
        ("consent != subscribed", {"consent": ConsentStatus.BOUNCED}, True),
        ("consent in [bounced, unsubscribed]", {"consent": ConsentStatus.BOUNCED}, True),
        ("consent is set", {}, True),
        ("consent = SUBSCRIBED", {"consent": ConsentStatus.SUBSCRIBED}, False),
        ("true", {}, True),
        ("false", {}, False),
        ("country in []", {"country": "FR"}, False),
        ("country not in []", {"country": "FR"}, True),
    ],
)
def test_operators(text: str, fields: dict[str, Any], expected: bool) -> None:
    """Each operator on a set value: text ignores case, enums and multi_enum do not."""

    assert matches(text, contact(**fields)) is expected


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        # date field against date literals: strict before/after, inclusive between
        ("birthday before 2024-01-31", {"birthday": dt.date(2024, 1, 30)}, True),
        ("birthday before 2024-01-31", {"birthday": dt.date(2024, 1, 31)}, False),
        ("birthday after 2024-01-31", {"birthday": dt.date(2024, 1, 31)}, False),
        ("birthday after 2024-01-31", {"birthday": dt.date(2024, 2, 1)}, True),
        ("birthday between 2024-01-01 and 2024-01-31", {"birthday": dt.date(2024, 1, 31)},
         True),
        ("birthday = 2024-01-31", {"birthday": dt.date(2024, 1, 31)}, True),
        ("birthday >= 2024-01-31", {"birthday": dt.date(2024, 1, 30)}, False),
        # date field against a datetime literal: the literal's UTC day
        ("birthday after 2024-01-31T23:00:00Z", {"birthday": dt.date(2024, 1, 31)}, False),
        ("birthday after 2024-01-31T23:00:00-05:00", {"birthday": dt.date(2024, 1, 31)},
         False),
        ("birthday = 2024-02-01T01:00:00+02:00", {"birthday": dt.date(2024, 1, 31)}, True),
        # datetime field against a date literal: the value's UTC day
        ("last_open before 2024-01-31", {"last_open": dt.datetime(2024, 1, 30, 23, 59,
                                                                   tzinfo=dt.UTC)}, True),
        ("last_open before 2024-01-31", {"last_open": dt.datetime(2024, 1, 31, 0, 0,
                                                                   tzinfo=dt.UTC)}, False),
        ("last_open after 2024-01-31", {"last_open": dt.datetime(2024, 1, 31, 23, 0,
                                                                  tzinfo=dt.UTC)}, False),
        ("last_open = 2024-01-31", {"last_open": dt.datetime(2024, 1, 31, 23, 0,
                                                              tzinfo=dt.UTC)}, True),
        ("last_open between 2024-01-01 and 2024-01-31",
         {"last_open": dt.datetime(2024, 1, 31, 23, 59, tzinfo=dt.UTC)}, True),
        # two datetimes: instants (offsets honoured; naive is UTC)
        ("last_open after 2024-01-31T10:00:00+02:00",
         {"last_open": dt.datetime(2024, 1, 31, 8, 0, 1, tzinfo=dt.UTC)}, True),
        ("last_open after 2024-01-31T08:00:00",
         {"last_open": dt.datetime(2024, 1, 31, 8, 0, tzinfo=dt.UTC)}, False),
        ("last_open < 2024-01-31T08:00:00Z", {"last_open": "2024-01-31T07:59:59Z"}, True),
    ],
)
def test_dates_compare_at_the_coarser_granularity(
    text: str, fields: dict[str, Any], expected: bool
) -> None:
    """A date on either side makes the comparison one of UTC days; else instants."""

    assert matches(text, contact(**fields)) is expected


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("last_open within 7 days", NOW - dt.timedelta(days=7), True),
        ("last_open within 7 days", NOW - dt.timedelta(days=7, seconds=1), False),
        ("last_open within 7 days", NOW, True),
        ("last_open within 7 days", NOW + dt.timedelta(seconds=1), False),
        ("last_open within 0 days", NOW, True),
        ("last_open within 12 hours", NOW - dt.timedelta(hours=12), True),
        ("last_open within 12 hours", NOW - dt.timedelta(hours=12, seconds=1), False),
        ("birthday within 7 days", dt.date(2026, 1, 8), True),
        ("birthday within 7 days", dt.date(2026, 1, 7), False),
        ("birthday within 7 days", dt.date(2026, 1, 15), True),
        ("birthday within 7 days", dt.date(2026, 1, 16), False),
        ("birthday within 13 hours", dt.date(2026, 1, 14), True),
        ("birthday within 12 hours", dt.date(2026, 1, 14), False),
    ],
)
def test_within(text: str, value: Any, expected: bool) -> None:
    """`within N` means now - N <= value <= now; on a date field, by UTC days."""

    field_name = parse(text).field  # type: ignore[union-attr]

    assert matches(text, contact(**{field_name: value})) is expected


def test_naive_now_is_utc() -> None:
    """A naive `now` is taken as UTC."""

    person = contact(last_open=NOW - dt.timedelta(hours=1))

    assert matches("last_open within 1 hours", person, now=NOW.replace(tzinfo=None))


def test_values_are_coerced_by_the_schema() -> None:
    """With a schema, raw values are read as the field's type; unreadable ones are unset."""

    person = contact(ltv="12.5", birthday="2024-01-31T10:00:00Z", interests="news;offers",
                     vip="oops")

    assert matches("ltv > 12", person)
    assert matches("birthday = 2024-01-31", person)
    assert matches('interests has "offers"', person)
    assert matches("vip is not set", person)
    assert not matches("vip != true", person)


def test_without_a_schema_kinds_come_from_values() -> None:
    """Without a schema, str is text (case-insensitive), numbers and dates by type."""

    person = contact(country="fr", ltv=3, birthday=dt.date(2024, 1, 31), interests={"news"})

    assert matches('country = "FR"', person, schema=None)
    assert matches("ltv between 1 and 3", person, schema=None)
    assert matches("birthday before 2024-02-01", person, schema=None)
    assert matches('interests has "news"', person, schema=None)
    assert matches("consent = non_subscribed", person, schema=None)
    assert not matches("consent = NON_SUBSCRIBED", person, schema=None)


def test_ill_typed_conditions_do_not_raise() -> None:
    """A literal that cannot be compared makes the condition false (not an exception)."""

    person = contact(ltv=3.0, birthday=dt.date(2024, 1, 31), name="x")

    assert matches('ltv < "a"', person) is False
    assert matches('birthday before "soon"', person) is False
    assert matches('name has "x"', person) is False
    assert matches("ltv within 3 days", person) is False
    assert matches('ltv contains "3"', person) is False


def test_connectives() -> None:
    """and/or/not combine verdicts."""

    person = contact(country="FR", ltv=50, tags={"vip"})

    assert matches('country = "FR" and (ltv > 100 or tags has "vip")', person)
    assert not matches('country = "FR" and not (ltv > 100 or tags has "vip")', person)
    assert matches('country = "BE" or ltv = 50', person)


def test_within_further_back_than_datetimes_go() -> None:
    """A huge `within` covers everything up to now instead of overflowing."""

    person = contact(birthday=dt.date(1, 1, 2), last_open=dt.datetime(1, 1, 2, tzinfo=dt.UTC))

    assert matches("birthday within 999999999999 days", person)
    assert matches("last_open within 999999999999 hours", person)
