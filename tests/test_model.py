"""The canonical model: email normalisation, coercion, and JSON round trips of every model."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segsync.model import (
    Consent,
    ConsentStatus,
    Contact,
    FieldSpec,
    FieldType,
    InvalidEmail,
    PublishMode,
    Schema,
    Segment,
    normalize_email,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann@Example.COM ", "ann@example.com"),
        ("ZOË@Bücher.de", "zoë@xn--bcher-kva.de"),
        ("o'brien+news@mail.example.org.", "o'brien+news@mail.example.org"),
        ("a@xn--bcher-kva.de", "a@xn--bcher-kva.de"),
    ],
)
def test_normalize_email_trims_lowercases_and_encodes_the_domain(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ann.example.com", "exactly one '@'"),
        ("ann@@example.com", "exactly one '@'"),
        ("@example.com", "nothing before '@'"),
        ("ann@", "nothing after '@'"),
        ("ann@localhost", "no dot"),
        ("an n@example.com", "whitespace"),
        (".ann@example.com", "dots"),
        ("ann..b@example.com", "dots"),
        ("ann@-bad-.com", "not valid"),
        ("ann@example.123", "numeric"),
        ("a" * 65 + "@example.com", "longer than 64"),
        ("ann@" + "a" * 250 + ".com", "longer than 254"),
        ("ann<x>@example.com", "not allowed"),
    ],
)
def test_an_invalid_email_is_an_error_that_says_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidEmail) as info:
        normalize_email(raw)

    assert reason in str(info.value)
    assert info.value.reason in str(info.value)


def test_a_contact_with_an_invalid_email_is_refused_not_dropped() -> None:
    with pytest.raises(ValidationError) as info:
        Contact(email="not-an-email")

    assert "exactly one '@'" in str(info.value)


def test_emails_differing_only_by_case_are_one_contact_key() -> None:
    assert Contact(email="Ann@Example.com").key == Contact(email="ann@example.COM").key


@pytest.mark.parametrize(
    ("ftype", "raw", "expected"),
    [
        (FieldType.TEXT, 12, "12"),
        (FieldType.NUMBER, "0.5", 0.5),
        (FieldType.INTEGER, 3.0, 3),
        (FieldType.INTEGER, " 42", 42),
        (FieldType.BOOLEAN, "TRUE", True),
        (FieldType.DATE, "2026-03-04T10:00:00Z", dt.date(2026, 3, 4)),
        (FieldType.DATETIME, "2026-03-04T10:00:00Z", dt.datetime(2026, 3, 4, 10, tzinfo=dt.UTC)),
        (FieldType.DATETIME, dt.date(2026, 3, 4), dt.datetime(2026, 3, 4, tzinfo=dt.UTC)),
        (FieldType.MULTI_ENUM, "a;b;;a", frozenset({"a", "b"})),
        (FieldType.PHONE, " +33 1 23 45 67 89 ", "+33 1 23 45 67 89"),
        (FieldType.TEXT, None, None),
    ],
)
def test_coercion_to_each_field_type(ftype: FieldType, raw: object, expected: object) -> None:
    assert FieldSpec(type=ftype).coerce(raw) == expected


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        (FieldSpec(type=FieldType.NUMBER), True, "boolean, not a number"),
        (FieldSpec(type=FieldType.INTEGER), 1.5, "not a valid integer"),
        (FieldSpec(type=FieldType.DATE), "31/12/2026", "not a valid date"),
        (FieldSpec(type=FieldType.ENUM, options=("FR", "BE")), "DE", "not one of"),
        (FieldSpec(type=FieldType.MULTI_ENUM, options=("a",)), ["a", "z"], "['z'] not among"),
        (FieldSpec(type=FieldType.PHONE), "call me", "not a phone number"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_it(
    spec: FieldSpec, raw: object, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        spec.coerce(raw)


def test_schema_coercion_lists_every_bad_field() -> None:
    schema = Schema(fields={"age": FieldSpec(type=FieldType.INTEGER)})

    with pytest.raises(ValueError, match="age: ") as info:
        schema.coerce_fields({"age": "old", "shoe": 42})

    assert "shoe: not a field of the schema" in str(info.value)


def test_builtin_names_cannot_be_declared() -> None:
    with pytest.raises(ValidationError, match="built in"):
        Schema(fields={"email": FieldSpec(type=FieldType.TEXT)})


def test_contact_value_reads_builtins_fields_then_engagement() -> None:
    contact = Contact(
        email="ann@example.com",
        fields={"country": "FR"},
        tags=frozenset({"vip"}),
        consent=Consent(status=ConsentStatus.BOUNCED),
        engagement={"open_rate": 0.4},
    )

    assert contact.value("email") == "ann@example.com"
    assert contact.value("tags") == frozenset({"vip"})
    assert contact.value("consent") is ConsentStatus.BOUNCED
    assert contact.value("country") == "FR"
    assert contact.value("open_rate") == 0.4
    assert contact.value("city") is None
    assert contact.consent.is_opt_out


def test_segment_names_and_publish_modes() -> None:
    segment = Segment(name="vip_fr", rule='country = "FR"', publish={"brevo": PublishMode.LIST})

    assert segment.mode_for("brevo") is PublishMode.LIST
    assert segment.mode_for("hubspot") is PublishMode.AUTO
    with pytest.raises(ValidationError, match="segment name"):
        Segment(name="bad/name", rule="true")


MODELS = [
    Consent(
        status=ConsentStatus.UNSUBSCRIBED,
        updated_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        source="hubspot",
        legal_basis="LEGITIMATE_INTEREST_CLIENT",
    ),
    FieldSpec(type=FieldType.ENUM, options=("FR", "BE"), description="country", read_only=True),
    Schema(
        fields={"country": FieldSpec(type=FieldType.ENUM), "ltv": FieldSpec(type=FieldType.NUMBER)}
    ),
    Segment(name="s", rule="tags has \"vip\"", publish={"mailchimp": PublishMode.NATIVE}),
    Contact(
        email="zoë@bücher.de",
        fields={"country": "FR", "ltv": 12.5},
        tags=frozenset({"vip", "b2b"}),
        consent=Consent(status=ConsentStatus.PENDING),
        ids={"hubspot": "101"},
        engagement={"open_rate": 0.5},
        updated_at=dt.datetime(2026, 5, 6, tzinfo=dt.UTC),
    ),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_every_model_round_trips_through_json(model: object) -> None:
    cls = type(model)

    again = cls.model_validate_json(model.model_dump_json())  # type: ignore[attr-defined]

    assert again == model


emails = st.from_regex(
    r"[A-Za-z0-9_%+\-]{1,20}(\.[A-Za-z0-9_%+\-]{1,5})?@[a-z0-9]{1,20}\.[A-Za-z]{2,6}",
    fullmatch=True,
)


@settings(max_examples=300, deadline=None)
@pytest.mark.slow
@given(
    email=emails,
    tags=st.frozensets(st.text(min_size=1, max_size=10), max_size=4),
    status=st.sampled_from(list(ConsentStatus)),
    country=st.none() | st.text(max_size=10),
)
def test_contacts_round_trip_through_json(
    email: str, tags: frozenset[str], status: ConsentStatus, country: str | None
) -> None:
    contact = Contact(
        email=email, tags=tags, consent=Consent(status=status), fields={"country": country}
    )

    assert Contact.model_validate_json(contact.model_dump_json()) == contact
    assert normalize_email(contact.email) == contact.email
