"""Compilers and engagement: a platform's own figures are native there only; aggregates and
recurring dates are materialised with the reason (issue #15)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from segsync.connector import registry
from segsync.engagement import (
    ENGAGEMENT_FIELDS,
    engagement_view,
    qualified_fields,
    split_qualified,
)
from segsync.model import Contact, FieldSpec, FieldType, PublishMode, Schema
from segsync.rules import ast, evaluate, load_rule, normalize
from segsync.rules.compiler import CompiledSegment, RuleCompiler

PLATFORMS = ("mailchimp", "hubspot", "brevo")
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def schema_for(platforms: tuple[str, ...]) -> Schema:
    return Schema(fields={**ENGAGEMENT_FIELDS, **qualified_fields(platforms),
                          "birthday": FieldSpec(type=FieldType.DATE, recurring=True)})


def compiler(platform: str, platforms: tuple[str, ...] = PLATFORMS) -> RuleCompiler:
    built = registry.get(platform).build_compiler(schema_for(platforms), strictness="ignore")
    assert built is not None
    return built


def compile_on(platform: str, text: str, platforms: tuple[str, ...] = PLATFORMS) -> CompiledSegment:
    rule = load_rule(text, schema_for(platforms))
    return compiler(platform, platforms).compile("s", rule, PublishMode.AUTO)


def reasons(compiled: CompiledSegment) -> str:
    return " | ".join(d.message for d in compiled.diagnostics)


def test_a_platform_s_own_figure_is_native_there_as_its_own_field() -> None:
    own = compile_on("hubspot", "hubspot.last_open within 7 days")
    alone = compile_on("hubspot", "last_open within 7 days", ("hubspot",))

    assert own.mode == "native"
    assert own.definition == alone.definition


@pytest.mark.parametrize("platform", ["hubspot", "brevo"])
def test_another_platform_s_figure_is_materialised_with_the_reason(platform: str) -> None:
    compiled = compile_on(platform, "mailchimp.open_rate > 0.5")

    assert compiled.mode == "materialised"
    if platform != "brevo":  # brevo has no native segments at all: that is its reason
        assert f"'mailchimp.open_rate' is mailchimp's own engagement, which {platform} " \
               "does not hold" in reasons(compiled)


@pytest.mark.parametrize("platform", ["mailchimp", "hubspot"])
def test_an_aggregate_over_several_platforms_is_materialised_with_the_reason(
    platform: str,
) -> None:
    compiled = compile_on(platform, "open_rate > 0.5 and last_interaction within 7 days")

    assert compiled.mode == "materialised"
    assert "aggregates the engagement of brevo, hubspot, mailchimp" in reasons(compiled)


def test_an_aggregate_with_one_platform_configured_is_that_platform_s_own() -> None:
    assert compile_on("hubspot", "last_open within 7 days", ("hubspot",)).mode == "native"


def test_the_native_part_of_an_and_stays_native_the_rest_is_split_off() -> None:
    compiled = compile_on("hubspot", "hubspot.emails_delivered > 3 and mailchimp.open_rate > 0.5")

    assert compiled.mode == "split"
    assert compiled.residual is not None
    assert compiled.residual.field == "mailchimp.open_rate"


@pytest.mark.parametrize(("platform", "reason"), [
    ("mailchimp", "BirthdayMerge) matches one fixed MM/DD"),
    ("hubspot", "compare the full date"),
])
def test_a_birthday_window_is_materialised_with_the_platform_s_reason(
    platform: str, reason: str
) -> None:
    compiled = compile_on(platform, "birthday within 7 days")

    assert compiled.mode == "materialised"
    assert "yearly anniversary window moving with today" in reasons(compiled)
    assert reason in reasons(compiled)


# -- differential: native only where the platform holds every figure the rule reads -------


_LEAVES = [
    *(f"{p}.{name} > 0.5" for p in PLATFORMS for name in ("open_rate", "click_rate")),
    *(f"{p}.{name} >= 3" for p in PLATFORMS for name in ("opens", "emails_delivered")),
    *(f"{p}.last_open within 7 days" for p in PLATFORMS),
    "open_rate > 0.5", "last_interaction within 7 days", "opens >= 3", "member_rating = 5",
    "last_open within 7 days", "emails_delivered >= 3",
    "clicks is set", "birthday within 7 days", "tags has \"vip\"",
]
_RULE_TEXT = st.recursive(
    st.sampled_from(_LEAVES),
    lambda inner: st.tuples(st.sampled_from((" and ", " or ")),
                            st.lists(inner, min_size=2, max_size=3)).map(
        lambda t: "(" + t[0].join(t[1]) + ")"),
    max_leaves=4,
)


def _leaf_fields(rule: ast.Rule) -> list[str]:
    if isinstance(rule, ast.And | ast.Or):
        return [f for item in rule.items for f in _leaf_fields(item)]
    if isinstance(rule, ast.Not):
        return _leaf_fields(rule.item)
    return [getattr(rule, "field", "")]


@settings(max_examples=150, deadline=None)
@given(_RULE_TEXT, st.sampled_from(PLATFORMS))
@example("last_open within 7 days", "hubspot")
@example("(emails_delivered >= 3 and mailchimp.open_rate > 0.5)", "hubspot")
@example("(mailchimp.open_rate > 0.5 and (hubspot.open_rate > 0.5 and tags has \"vip\"))",
         "mailchimp")
@example("(tags has \"vip\" or (hubspot.open_rate > 0.5 and tags has \"vip\"))", "mailchimp")
def test_a_compiled_engagement_rule_is_native_only_on_figures_the_platform_holds(
    text: str, platform: str
) -> None:
    """Native (or the native part of a split) reads only the platform's own figures, which
    are what the evaluator reads under `<platform>.<name>` on the aggregated view; anything
    else is materialised (evaluated on the aggregated view), with a reason."""
    schema = schema_for(PLATFORMS)
    rule = load_rule(text, schema)
    compiled = compiler(platform).compile("s", rule, PublishMode.AUTO)

    native_part: ast.Rule | None = None
    if compiled.mode == "native":  # what the compiler published: the simplified DNF (a
        # term absorbed by another, e.g. `a or (b and a)`, is not read at all)
        native_part = normalize.dnf(rule)
    elif compiled.mode == "split":  # the ladder splits the top-level AND of the NNF
        assert compiled.residual is not None
        base = normalize.nnf(rule)
        assert isinstance(base, ast.And)
        residual = (compiled.residual.items if isinstance(compiled.residual, ast.And)
                    and compiled.residual not in base.items else (compiled.residual,))
        native_part = ast.And(items=tuple(i for i in base.items if i not in residual))
    else:
        assert compiled.mode == "materialised"
        assert reasons(compiled)
    for name in _leaf_fields(native_part) if native_part is not None else []:
        qualified = split_qualified(name)
        assert qualified is None or qualified[0] == platform, (text, compiled.mode)
        assert name not in ("open_rate", "last_interaction", "opens", "clicks", "birthday",
                            "last_open", "emails_delivered"), (text, compiled.mode)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(PLATFORMS), st.fixed_dictionaries({}, optional={
    "opens": st.integers(0, 20), "emails_delivered": st.integers(1, 20),
    "open_rate": st.floats(0, 1)}), max_size=3), st.sampled_from(PLATFORMS))
def test_a_qualified_figure_on_the_aggregated_view_is_the_platform_s_own(
    per: dict[str, dict[str, float]], platform: str
) -> None:
    """What a native filter on the platform's own property sees is what the evaluator reads
    for `<platform>.<name>`: the two select the same people."""
    schema = schema_for(PLATFORMS)
    contact = Contact(email="p@example.com", engagement=engagement_view(per))
    own = per.get(platform, {})
    for name, bound in (("opens", 3), ("open_rate", 0.5)):
        rule = load_rule(f"{platform}.{name} > {bound}", schema)
        expected = name in own and own[name] > bound
        assert evaluate(rule, contact, now=NOW, schema=schema) is expected
