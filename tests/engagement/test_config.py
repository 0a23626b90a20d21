"""`segsync check` on engagement: qualified fields of configured platforms only; the
`engagement.refresh` section (frozen, validated, default 24h)."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from pydantic import ValidationError

from segsync.config import ConfigError, EngagementConfig, parse_config
from segsync.connector import registry
from segsync.engagement import engagement_view, split_qualified
from segsync.model import Contact, PublishMode
from segsync.rules import evaluate

KEY = "sk-FAKE-segsync-0123456789abcdef-us1"
ENV = {"MC": KEY, "HS": "pat-eu1-0123456789abcdef0123456789abcdef"}


def config(rule: str, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        platforms:
          mailchimp: {{api_key: ${{MC}}, list_id: "a1b2c3"}}
          hubspot: {{token: ${{HS}}}}
        segments:
          s: {{rule: '{rule}'}}
        """) + extra


def test_qualified_engagement_of_configured_platforms_loads() -> None:
    loaded = parse_config(config("mailchimp.open_rate > 0.5 and hubspot.opens >= 2"), env=ENV)
    assert loaded.rule("s").items[0].field == "mailchimp.open_rate"
    assert "brevo.opens" not in loaded.canonical_schema().fields
    assert loaded.engagement.refresh == dt.timedelta(hours=24)


def test_a_platform_not_configured_is_a_check_error_at_the_rule() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config("brevo.opens > 2"), env=ENV)
    (problem,) = [str(p) for p in caught.value.problems]
    assert "segments.s.rule" in problem
    assert "platform 'brevo', which is not configured" in problem
    assert "configured: hubspot, mailchimp" in problem


def test_a_rate_above_1_is_a_check_error_with_its_position() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config("hubspot.open_rate > 80"), env=ENV)
    (problem,) = [str(p) for p in caught.value.problems]
    assert "segments.s.rule: 1:21 " in problem
    assert "is outside" in problem


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("7d", 604800), (3600, 3600)])
def test_the_refresh_period_parses(text: object, seconds: int) -> None:
    assert EngagementConfig.model_validate({"refresh": text}).refresh.total_seconds() == seconds


@pytest.mark.parametrize("bad", ["10s", "soon", -5])
def test_a_refresh_under_a_minute_or_unreadable_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError):
        EngagementConfig.model_validate({"refresh": bad})


def test_the_section_is_frozen_and_closed() -> None:
    section = EngagementConfig()
    with pytest.raises(ValidationError):
        section.refresh = dt.timedelta(hours=1)  # type: ignore[misc]
    with pytest.raises(ValidationError):
        EngagementConfig.model_validate({"refesh": "1h"})
    loaded = parse_config(config("opens > 1", "engagement: {refresh: 6h}\n"), env=ENV)
    assert loaded.engagement.refresh == dt.timedelta(hours=6)


def test_a_dear_refresh_runs_only_where_asked_and_a_period_can_be_set_per_platform() -> None:
    """A connector whose refresh costs one call per contact (`engagement_refresh_by_default`
    False) is refreshed only when `engagement.platforms` names it; `off` turns one off."""
    loaded = parse_config(config("tags has \"vip\"", textwrap.dedent("""\
        engagement:
          refresh: 12h
          platforms: {hubspot: "off"}
        """)), env=ENV)
    periods = loaded.engagement
    assert periods.period("mailchimp", True) == dt.timedelta(hours=12)
    assert periods.period("hubspot", True) is None
    assert periods.period("mailchimp", False) is None  # a dear refresh, not asked for

    asked = EngagementConfig(platforms={"mailchimp": "7d"})
    assert asked.period("mailchimp", False) == dt.timedelta(days=7)


def test_engagement_platforms_must_be_configured_ones() -> None:
    with pytest.raises(ConfigError, match=r"engagement\.platforms\.brevo"):
        parse_config(config("tags has \"vip\"", "engagement: {platforms: {brevo: 24h}}\n"),
                     env=ENV)


def test_the_brevo_refresh_is_asked_for_not_default() -> None:
    from segsync_brevo.connector import BrevoConnector
    from segsync_hubspot.connector import HubSpotConnector
    from segsync_mailchimp.connector import MailchimpConnector

    assert BrevoConnector.engagement_refresh_by_default is False
    assert MailchimpConnector.engagement_refresh_by_default is True
    assert HubSpotConnector.engagement_refresh_by_default is True


BREVO = textwrap.dedent("""\
    platforms:
      mailchimp: {api_key: ${MC}, list_id: "a1b2c3"}
      hubspot: {token: ${HS}}
      brevo: {api_key: ${BV}}
    segments:
      actif: {rule: 'open_rate > 0.5 and last_interaction within 7 days'}
      france: {rule: 'country = "FR"'}
    schema:
      country: text
    """)
BREVO_ENV = {**ENV, "BV": "xkeysib-" + "0" * 64 + "-AbCdEfGhIjKlMnOp"}


def test_engagement_brevo_does_not_read_by_default_is_said_by_check_and_compilers() -> None:
    """With no `engagement:` section Brevo's engagement is not read: `check` warns at each
    segment reading engagement (the key to turn it on and the cost) and the compilers'
    diagnostics name only the platforms whose engagement is read."""
    loaded = parse_config(BREVO, env=BREVO_ENV)
    assert loaded.unread_engagement() == ["brevo"]
    (warning,) = [w for w in loaded.warnings if "brevo" in w]
    assert warning.startswith("segments.actif: 'last_interaction', 'open_rate' read no brevo")
    assert "engagement.platforms.brevo: 24h" in warning
    assert "100,000 contacts" in warning  # the cost of turning it on
    compiler = registry.get("hubspot").build_compiler(loaded.canonical_schema(),
                                                       strictness="ignore")
    assert compiler is not None
    compiled = compiler.compile("actif", loaded.rule("actif"), PublishMode.AUTO)
    said = " | ".join(d.message for d in compiled.diagnostics)
    assert "aggregates the engagement of hubspot, mailchimp; brevo's is not read" in said
    assert "brevo, hubspot" not in said

    on = parse_config(BREVO + "engagement: {platforms: {brevo: 24h}}\n", env=BREVO_ENV)
    assert on.unread_engagement() == []
    assert not [w for w in on.warnings if "brevo" in w]
    compiler = registry.get("hubspot").build_compiler(on.canonical_schema(), strictness="ignore")
    assert compiler is not None
    compiled = compiler.compile("actif", on.rule("actif"), PublishMode.AUTO)
    assert any("engagement of brevo, hubspot, mailchimp;" in d.message
               for d in compiled.diagnostics)


@pytest.mark.parametrize("name", ["open_rate", "lifecycle_stage", "emails_opened"])
def test_a_schema_field_named_like_an_engagement_fact_is_refused(name: str) -> None:
    """A declared field may not take an engagement name: it would shadow the platforms'
    figure in rules and segsync would write it (a merge field, a property)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(config(f"{name} is set", f"schema:\n  {name}: text\n"), env=ENV)
    (problem,) = [str(p) for p in caught.value.problems]
    assert f"schema.{name}" in problem
    assert "engagement fact" in problem
    assert f"'crm_{name}'" in problem


def test_an_older_engagement_name_qualified_by_platform_is_that_platform_s_figure() -> None:
    """`hubspot.emails_opened` is `hubspot.opens`, as the bare `emails_opened` is `opens`
    (it was an unknown field, with "did you mean 'hubspot.emails_delivered'")."""
    loaded = parse_config(config("hubspot.emails_opened >= 2"), env=ENV)
    rule = loaded.rule("s")
    view = engagement_view({"hubspot": {"opens": 3, "emails_delivered": 4},
                            "mailchimp": {"opens": 1, "emails_delivered": 1}})
    assert view["hubspot.emails_opened"] == 3
    assert evaluate(rule, Contact(email="a@x.example", engagement=view),
                    now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), schema=loaded.canonical_schema())
    assert split_qualified("hubspot.emails_opened") == ("hubspot", "opens")
