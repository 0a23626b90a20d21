"""Compilers and engagement: a platform's own figures are native there only; aggregates and
recurring dates are materialised with the reason (issue #15)."""

from __future__ import annotations

import pytest

from segsync.connector import registry
from segsync.engagement import ENGAGEMENT_FIELDS, qualified_fields
from segsync.model import FieldSpec, FieldType, PublishMode, Schema
from segsync.rules import load_rule
from segsync.rules.compiler import CompiledSegment, RuleCompiler

PLATFORMS = ("mailchimp", "hubspot", "brevo")


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
