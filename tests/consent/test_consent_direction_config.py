"""`sync.direction` for consent, as docs/consent.md documents it (issue #13, finding 7)."""

from __future__ import annotations

import textwrap

import pytest

from segsync.config import ConfigError, FieldDirection, parse_config
from segsync.sync.policy import SyncPolicy

CONFIG = """\
state: sqlite:///.segsync/state.db
schema: {first_name: text}
platforms:
  mailchimp: {api_key: "0123456789abcdef0123456789abcdef-us21", list_id: a1b2c3d4e5}
  hubspot: {token: "pat-na1-00000000-1111-2222-3333-444444444444"}
sync:
  direction: {DIRECTION}
"""


def parsed(direction: str) -> object:
    return parse_config(textwrap.dedent(CONFIG.replace("{DIRECTION}", direction)), env={})


def test_consent_direction_is_accepted_and_reaches_the_policy() -> None:
    """`sync.direction: {consent: {...}}` loads (it was refused as an unknown field) and the
    engine's policy reads consent accordingly."""
    config = parsed("{consent: {hubspot: destination-only}, tags: {mailchimp: source-only}}")

    sync = config.sync  # type: ignore[attr-defined]
    assert sync.direction["consent"]["hubspot"] is FieldDirection.DESTINATION_ONLY
    policy = SyncPolicy.from_config(sync, ["mailchimp", "hubspot"])
    assert not policy.reads("hubspot", "consent")
    assert policy.writes("hubspot", "consent")
    assert not policy.writes("mailchimp", "tags")


def test_a_misspelt_field_in_direction_is_still_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parsed("{consnet: {hubspot: destination-only}}")

    assert "sync.direction.consnet: unknown field 'consnet'" in str(info.value.problems[0])
