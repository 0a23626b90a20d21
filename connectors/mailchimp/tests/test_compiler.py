"""Rules -> Mailchimp saved-segment conditions, as a translation table, and the ladder."""

from __future__ import annotations

from typing import Any

import pytest
from segsync_mailchimp import MailchimpCompiler, MailchimpConnector

from segsync.model import FieldSpec, FieldType, PublishMode, Schema
from segsync.rules.compiler import PlatformCannotExpress, Step, Strictness
from segsync.rules.parser import parse

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "city": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "orders": FieldSpec(type=FieldType.INTEGER),
        "renewal_on": FieldSpec(type=FieldType.DATE),
        # mapped by the shipped mapping.yaml to a MM/DD birthday merge field
        "birthday": FieldSpec(type=FieldType.DATE),
        "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "offers")),
        "open_rate": FieldSpec(type=FieldType.NUMBER, read_only=True),
    }
)


def c(ctype: str, field: str, op: str, value: Any = None) -> dict[str, Any]:
    out = {"condition_type": ctype, "field": field, "op": op}
    if value is not None:
        out["value"] = value
    return out


NATIVE = [
    ('first_name = "Ann"', "all", [c("TextMerge", "FNAME", "is", "Ann")]),
    # `!=` never selects an unset field; Mailchimp's `not` does, hence the guard
    (
        'city != "Paris"',
        "all",
        [c("TextMerge", "CITY", "not", "Paris"), c("TextMerge", "CITY", "blank_not")],
    ),
    ('not city = "Paris"', "all", [c("TextMerge", "CITY", "not", "Paris")]),
    (
        'country in ["FR", "BE"]',
        "any",
        [c("SelectMerge", "COUNTRY", "is", "FR"), c("SelectMerge", "COUNTRY", "is", "BE")],
    ),
    (
        "lifetime_value >= 10",
        "any",
        [c("TextMerge", "LIFETIME_V", "greater", "10"), c("TextMerge", "LIFETIME_V", "is", "10")],
    ),
    (
        "orders between 2 and 5",
        "all",
        [c("TextMerge", "ORDERS", "greater", "1"), c("TextMerge", "ORDERS", "less", "6")],
    ),
    (
        'renewal_on after "2024-01-31"',
        "all",
        [c("DateMerge", "RENEWAL_ON", "greater", "01/31/2024")],
    ),
    ('renewal_on <= "2024-01-31"', "all", [c("DateMerge", "RENEWAL_ON", "less", "02/01/2024")]),
    (
        'tags has "vip" and not tags has "churned"',
        "all",
        [
            c("StaticSegment", "static_segment", "static_is", "vip"),
            c("StaticSegment", "static_segment", "static_not", "churned"),
        ],
    ),
    (
        'interests has "news"',
        "all",
        [c("Interests", "interests-interests", "interestcontains", ["news"])],
    ),
    ('email ends_with "@segsync.dev"', "all", [c("EmailAddress", "EMAIL", "ends", "@segsync.dev")]),
    ("first_name is not set", "all", [c("TextMerge", "FNAME", "blank")]),
]


@pytest.mark.parametrize(("text", "match", "conditions"), NATIVE, ids=[n[0] for n in NATIVE])
def test_native_translations(text: str, match: str, conditions: list[dict[str, Any]]) -> None:
    """Each rule compiles natively to exactly these conditions."""
    compiled = MailchimpCompiler(SCHEMA).compile("s", parse(text))

    assert compiled.mode == "native"
    assert compiled.definition == {"match": match, "conditions": conditions}


def test_negated_group_is_rewritten_through_nnf() -> None:
    """`not (a and b)` becomes `any[not a, not b]`, with a rewrite diagnostic."""
    compiled = MailchimpCompiler(SCHEMA).compile(
        "s", parse('not (first_name = "Ann" and city = "Paris")')
    )

    assert compiled.definition == {
        "match": "any",
        "conditions": [
            c("TextMerge", "FNAME", "not", "Ann"),
            c("TextMerge", "CITY", "not", "Paris"),
        ],
    }
    assert [d.step for d in compiled.diagnostics] == [Step.NATIVE, Step.REWRITE]


def test_consent_is_split_into_an_owned_residual_tag() -> None:
    """Saved segments cannot filter on status: that part becomes an owned tag, ANDed back."""
    compiled = MailchimpCompiler(SCHEMA).compile(
        "s", parse('consent = subscribed and country = "FR"')
    )

    assert compiled.mode == "split"
    assert compiled.residual == parse("consent = subscribed")
    assert compiled.residual_tag is not None
    assert compiled.residual_tag.startswith("segsync:s:")
    assert compiled.definition == {
        "match": "all",
        "conditions": [
            c("SelectMerge", "COUNTRY", "is", "FR"),
            c("StaticSegment", "static_segment", "static_is", compiled.residual_tag),
        ],
    }
    assert compiled.diagnostics[-1].step is Step.SPLIT
    assert "subscription status" in compiled.diagnostics[-1].message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("open_rate > 0.5", "read-only engagement"),
        ('country in ["FR", "BE", "DE"] or city in ["a", "b", "c"]', "6 conditions exceed"),
        ('first_name != "Ann" or city = "x"', "needs match 'all' inside 'any'"),
        ("lifetime_value between 1.5 and 2", "greater or equal"),
        ('not first_name starts_with "A"', "no 'does not starts_with'"),
        ('birthday after "2024-01-31"', "mapped to merge_fields.BIRTHDAY with a conversion"),
    ],
)
def test_what_mailchimp_cannot_express_is_materialised_with_the_reason(
    text: str, reason: str
) -> None:
    """Each of these materialises, and the diagnostic says why."""
    compiled = MailchimpCompiler(SCHEMA).compile("s", parse(text))

    assert compiled.mode == "materialised"
    assert reason in compiled.diagnostics[-1].message


def test_native_mode_refuses_instead_of_materialising() -> None:
    """With publish mode native, an inexpressible rule is an error, not a fallback."""
    with pytest.raises(PlatformCannotExpress, match="read-only"):
        MailchimpCompiler(SCHEMA).compile("s", parse("open_rate > 0.5"), PublishMode.NATIVE)


def test_strictness_raise_refuses_fallbacks() -> None:
    """Strictness raise turns a materialise step into an error."""
    compiler = MailchimpCompiler(SCHEMA, strictness=Strictness.RAISE)

    with pytest.raises(PlatformCannotExpress):
        compiler.compile("s", parse("open_rate > 0.5"))


def test_capabilities_are_data() -> None:
    """The capability matrix comes from CAPS: flat any/all, negated leaves, 5 conditions."""
    caps = MailchimpCompiler.CAPS

    assert (caps.max_depth, caps.max_conditions, caps.negated_leaves) == (1, 5, True)
    assert MailchimpCompiler.supports("has")
    assert not MailchimpCompiler.supports("within")


def test_mapped_language_uses_the_language_condition() -> None:
    """A text `language` lives on the member (shared mapping): Language is / not."""
    schema = Schema(fields={"language": FieldSpec(type=FieldType.TEXT)})
    compiler = MailchimpCompiler(schema)

    assert compiler.compile("s", parse('language = "fr"')).definition == {
        "match": "all",
        "conditions": [c("Language", "language", "is", "fr")],
    }
    assert compiler.compile("s", parse('not language = "fr"')).definition == {
        "match": "all",
        "conditions": [c("Language", "language", "not", "fr")],
    }
    assert compiler.compile("s", parse('language != "fr"')).mode == "materialised"


def test_the_connectors_compiler_uses_its_config() -> None:
    """Built by the connector, the compiler filters on the merge tag the config names, and
    materialises a rule on a marketing permission (no saved-segment condition holds it)."""
    schema = Schema(
        fields={
            "city": FieldSpec(type=FieldType.TEXT),
            "gdpr_email": FieldSpec(type=FieldType.BOOLEAN),
        }
    )
    connector = MailchimpConnector(
        {
            "api_key": "0123456789abcdef0123456789abcdef-us21",
            "list_id": "a1b2c3d4e5",
            "merge_fields": {"city": "STADT"},
            "marketing_permissions": {"gdpr_email": "perm1"},
        },
        schema=schema,
    )
    compiler = connector.compiler(Strictness.IGNORE)
    assert isinstance(compiler, MailchimpCompiler)

    assert compiler.compile("s", parse('city = "Lyon"')).definition == {
        "match": "all",
        "conditions": [c("TextMerge", "STADT", "is", "Lyon")],
    }
    assert compiler.compile("s", parse("gdpr_email = true")).mode == "materialised"
    assert MailchimpCompiler(schema).compile("s", parse('city = "Lyon"')).definition == {
        "match": "all",
        "conditions": [c("TextMerge", "CITY", "is", "Lyon")],
    }
