"""Rules -> HubSpot DYNAMIC list filter branches: translations, and what falls back and why."""

from __future__ import annotations

from typing import Any

import pytest
from segsync_hubspot import HubSpotCompiler

from segsync.model import FieldSpec, FieldType, Schema
from segsync.rules import ast
from segsync.rules.compiler import PlatformCannotExpress, Step

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "plan": FieldSpec(type=FieldType.ENUM, options=("free", "pro")),
        "orders": FieldSpec(type=FieldType.INTEGER),
        "vip": FieldSpec(type=FieldType.BOOLEAN),
        "signup": FieldSpec(type=FieldType.DATE),
        "last_seen": FieldSpec(type=FieldType.DATETIME),
        "birthday": FieldSpec(type=FieldType.DATE),
    }
)


def branches(rule: ast.Rule) -> list[list[dict[str, Any]]]:
    definition = HubSpotCompiler(SCHEMA).emit(rule)
    root = definition["filterBranch"]
    assert (root["filterBranchType"], root["filters"]) == ("OR", [])
    assert {b["filterBranchType"] for b in root["filterBranches"]} == {"AND"}
    return [b["filters"] for b in root["filterBranches"]]


def op(filters: list[dict[str, Any]]) -> list[tuple[str, str, str, bool]]:
    return [
        (
            f["property"],
            f["operation"]["operationType"],
            f["operation"]["operator"],
            f["operation"]["includeObjectsWithNoValueSet"],
        )
        for f in filters
    ]


def test_or_of_ands_becomes_one_and_branch_per_term() -> None:
    """(a and b) or c is two AND branches, typed by property type."""
    rule = ((ast.field("first_name") == "Ada") & ast.has_tag("VIP")) | (ast.field("orders") > 3)

    assert [op(b) for b in branches(rule)] == [
        [
            ("firstname", "MULTISTRING", "IS_EQUAL_TO", False),
            ("segsync_tags", "ENUMERATION", "IS_ANY_OF", False),
        ],
        [("orders", "NUMBER", "IS_GREATER_THAN", False)],
    ]
    assert branches(ast.has_tag("VIP"))[0][0]["operation"]["values"] == ["vip"]


def test_not_is_pushed_down_and_negated_leaves_include_unset() -> None:
    """not (a or b) is one AND of negated operators that include records with no value."""
    rule = ~((ast.field("plan") == "pro") | ast.field("first_name").contains("x"))

    assert [op(b) for b in branches(rule)] == [
        [
            ("plan", "ENUMERATION", "IS_NONE_OF", True),
            ("firstname", "MULTISTRING", "DOES_NOT_CONTAIN", True),
        ]
    ]


def test_not_equal_excludes_unset_like_the_evaluator() -> None:
    """`!=` is false on unset (include false), `not =` true on unset (include true)."""
    assert op(branches(ast.field("first_name") != "Ada")[0]) == [
        ("firstname", "MULTISTRING", "IS_NOT_EQUAL_TO", False)
    ]
    assert op(branches(~(ast.field("first_name") == "Ada"))[0]) == [
        ("firstname", "MULTISTRING", "IS_NOT_EQUAL_TO", True)
    ]


def test_number_in_and_between_expand_into_filters() -> None:
    """Numbers have no multi-value filter: `in` is one branch per value, `between` two bounds."""
    assert [op(b) for b in branches(ast.field("orders").in_(1, 2))] == [
        [("orders", "NUMBER", "IS_EQUAL_TO", False)],
        [("orders", "NUMBER", "IS_EQUAL_TO", False)],
    ]
    assert op(branches(ast.field("orders").between(1, 5))[0]) == [
        ("orders", "NUMBER", "IS_GREATER_THAN_OR_EQUAL_TO", False),
        ("orders", "NUMBER", "IS_LESS_THAN_OR_EQUAL_TO", False),
    ]


def test_dates_follow_the_evaluators_granularity() -> None:
    """A date literal means whole UTC days; a datetime literal an instant; within is NOW-based."""
    [[after]] = branches(ast.field("last_seen").after("2025-03-01"))
    [[at]] = branches(ast.field("last_seen") == "2025-03-01T08:00:00Z")
    [[recent]] = branches(ast.field("last_seen").within(7))

    assert after["operation"]["operator"] == "IS_AFTER"
    assert after["operation"]["endpointBehavior"] == "INCLUSIVE"
    assert (after["operation"]["timePoint"]["day"], after["operation"]["timePoint"]["hour"]) == (
        2,
        0,
    )
    assert at["operation"]["operator"] == "IS_BETWEEN"
    assert at["operation"]["lowerBoundTimePoint"] == at["operation"]["upperBoundTimePoint"]
    assert recent["operation"]["lowerBoundTimePoint"]["offset"] == {"days": -7}
    assert recent["operation"]["upperBoundTimePoint"]["indexReference"] == {"referenceType": "NOW"}


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (~ast.field("first_name").starts_with("A"), "no negated starts_with"),
        (ast.field("first_name") < "M", "cannot order or range text"),
        (ast.field("consent") == "pending", "consent conditions other than 'subscribed'"),
        (ast.field("consent") != "subscribed", "statuses other than OPT_IN"),
        (ast.field("signup").within(2, ast.TimeUnit.HOURS), "within 2 hours"),
        (ast.field("birthday").before("2000-01-01"), "string property date_of_birth"),
    ],
)
def test_what_hubspot_cannot_say_is_refused_with_a_reason(rule: ast.Rule, reason: str) -> None:
    """Constructs HubSpot's list filters lack raise PlatformCannotExpress saying why."""
    with pytest.raises(PlatformCannotExpress, match=reason):
        HubSpotCompiler(SCHEMA).emit(rule)


def test_the_ladder_splits_or_materialises_with_a_diagnostic() -> None:
    """A partly native AND splits (residual as an owned tag); the rest is materialised."""
    compiler = HubSpotCompiler(SCHEMA)
    split = compiler.compile(
        "s", (ast.field("orders") > 1) & ~ast.field("first_name").ends_with("x")
    )
    whole = compiler.compile("m", ~ast.field("first_name").ends_with("x"))

    assert split.mode == "split"
    assert split.residual == ~ast.field("first_name").ends_with("x")
    assert split.diagnostics[-1].step is Step.SPLIT
    assert "no negated ends_with" in split.diagnostics[-1].message
    assert whole.mode == "materialised"
    assert whole.diagnostics[-1].step is Step.MATERIALISE


def test_consent_subscribed_is_an_email_subscription_filter_minus_bounces() -> None:
    """`consent = subscribed` is OPT_IN on the synced subscription type and not bounced."""
    [[subscribed, not_bounced]] = branches(ast.field("consent").in_("subscribed"))

    assert subscribed == {
        "filterType": "EMAIL_SUBSCRIPTION",
        "subscriptionIds": [HubSpotCompiler.SUBSCRIPTION],
        "acceptedStatuses": ["OPT_IN"],
    }
    assert op([not_bounced]) == [("hs_email_bad_address", "BOOL", "IS_NOT_EQUAL_TO", True)]


def test_empty_in_lists_and_constants() -> None:
    """`in []` selects nobody (a CONSTANT filter); `not in []` every record with a value."""
    [[nobody]] = branches(ast.field("orders").in_())
    [[known]] = branches(ast.field("orders").not_in())

    assert nobody == {"filterType": "CONSTANT", "shouldAccept": False}
    assert known["operation"]["operator"] == "IS_KNOWN"
