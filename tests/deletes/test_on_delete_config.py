"""`sync.on_delete` in the configuration: validated, frozen, reaches the sync policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from segsync.config import ConfigError, parse_config
from segsync.sync.policy import SyncPolicy

PLATFORMS = "platforms:\n  hubspot: {token: t}\n  brevo: {api_key: k}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    return [str(p) for p in info.value.problems]


def test_on_delete_reaches_the_policy_and_defaults_to_keep() -> None:
    config = parse_config(PLATFORMS + "sync:\n  on_delete: {brevo: archive_elsewhere}\n", env={})
    policy = SyncPolicy.from_config(config.sync, ["hubspot", "brevo"])
    assert policy.archives_elsewhere("brevo")
    assert not policy.archives_elsewhere("hubspot")  # keep, by default
    assert parse_config(PLATFORMS, env={}).sync.on_delete == {}
    with pytest.raises(ValidationError, match="frozen"):
        config.sync.on_delete = {}  # type: ignore[misc]


def test_on_delete_is_checked() -> None:
    """Only `keep` or `archive_elsewhere`, and only for configured platforms."""
    [wrong] = problems(PLATFORMS + "sync:\n  on_delete: {brevo: delete}\n")
    assert "sync.on_delete.brevo" in wrong
    assert "archive_elsewhere" in wrong
    [unknown] = problems(PLATFORMS + "sync:\n  on_delete: {brevoo: keep}\n")
    assert "sync.on_delete.brevoo: 'brevoo' is not a configured platform" in unknown
    assert "did you mean 'brevo'" in unknown
