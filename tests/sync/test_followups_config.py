"""Follow-ups on configuration: `sync.reconfirm` and one rate budget per account per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from segsync.config import ConfigError, parse_config
from segsync.http import RateBudget
from segsync.state import SQLiteStateStore
from segsync.sync.build import account_key, build_connectors, build_engine
from segsync.sync.policy import SyncPolicy

CONFIG = """
platforms:
  mailchimp:
    api_key: FAKE-0123456789abcdef-us1
    list_id: L1
  hubspot:
    token: FAKE-hubspot-token
sync:
  reconfirm: [mailchimp]
"""


def test_reconfirm_is_configurable_and_reaches_the_policy() -> None:
    config = parse_config(CONFIG)
    assert config.sync.reconfirm == ["mailchimp"]
    policy = SyncPolicy.from_config(config.sync, ["hubspot", "mailchimp"])
    assert policy.reconfirm == frozenset({"mailchimp"})


def test_reconfirm_names_only_configured_platforms() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.replace("[mailchimp]", "[mailchimpp]"))
    (problem,) = caught.value.problems
    assert "sync.reconfirm" in str(problem)
    assert "did you mean 'mailchimp'" in str(problem)


def test_connectors_of_one_account_share_one_budget(tmp_path: Path) -> None:
    config = parse_config(CONFIG)
    budgets: dict[str, RateBudget] = {}
    first = build_connectors(config, budgets=budgets)
    second = build_connectors(config, budgets=budgets)
    engine = build_engine(config, store=SQLiteStateStore(tmp_path / "s.db"), budgets=budgets)
    try:
        for name in ("hubspot", "mailchimp"):
            shared = first[name].budget
            assert second[name].budget is shared
            assert engine.connectors[name].budget is shared
            assert engine.connectors[name].client.budget is shared  # type: ignore[attr-defined]
        # two accounts, two budgets; the shared one keeps the platform's own limits
        assert first["hubspot"].budget is not first["mailchimp"].budget
        assert first["hubspot"].budget.windows, "HubSpot's budget has its rate windows"
        assert set(budgets) == {
            account_key(n, config.platforms[n]) for n in ("hubspot", "mailchimp")
        }
    finally:
        engine.store.close()


def test_another_account_of_a_platform_gets_its_own_budget() -> None:
    budgets: dict[str, RateBudget] = {}
    mine = build_connectors(parse_config(CONFIG), budgets=budgets)
    theirs = build_connectors(
        parse_config(CONFIG.replace("FAKE-hubspot-token", "FAKE-other-token")),
        budgets=budgets,
    )
    assert theirs["hubspot"].budget is not mine["hubspot"].budget
    assert theirs["mailchimp"].budget is mine["mailchimp"].budget


def test_account_key_keeps_no_secret_in_clear() -> None:
    config = parse_config(CONFIG)
    key = account_key("hubspot", config.platforms["hubspot"])
    assert "FAKE-hubspot-token" not in key
    assert key.startswith("hubspot:")
