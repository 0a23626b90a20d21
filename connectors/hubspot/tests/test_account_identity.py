"""`HubSpotConnector.account_identity`: the portal id of `GET /account-info/<version>/details`
(v3 or a dated version); the emulator's portal is swappable."""

from __future__ import annotations

import asyncio

import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator


@pytest.mark.parametrize("version", ["v3", "2026-03"])
def test_the_identity_is_the_portal_and_costs_one_call(version: str) -> None:
    emulator = HubSpotEmulator()
    connector = HubSpotConnector(
        {"token": emulator.api_key, "api_version": version}, transport=emulator.transport()
    )

    found = asyncio.run(connector.account_identity())

    assert found.id == str(emulator.portal_id)
    assert found.label == f"portal {emulator.portal_id} (standard, app.hubspot.com)"
    assert connector.stats.calls == 1
    assert emulator.log.count("GET", f"/account-info/{version}/details", 200) == 1


def test_another_portal_is_another_identity() -> None:
    emulator = HubSpotEmulator()
    connector = HubSpotConnector({"token": emulator.api_key}, transport=emulator.transport())
    before = asyncio.run(connector.account_identity())

    emulator.portal_id = 99887766
    emulator.account_type = "SANDBOX"
    after = asyncio.run(connector.account_identity())

    assert before.id != after.id == "99887766"
    assert "sandbox" in after.label
