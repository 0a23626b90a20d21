"""`segsync check` on engagement: qualified fields of configured platforms only; the
`engagement.refresh` section (frozen, validated, default 24h)."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from pydantic import ValidationError

from segsync.config import ConfigError, EngagementConfig, parse_config

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
