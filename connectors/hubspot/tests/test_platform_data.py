"""What the HubSpot package declares about its platform, as class data: the emulator's demo
config, the token's shape, the shipped mapping; and the emulator stays out of the runtime."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.clock import VirtualClock
from segsync.mapping import PlatformMapping, _parse_file


@pytest.mark.slow
def test_importing_the_connector_does_not_load_the_emulator() -> None:
    """The package and every runtime module import without the emulator (a fresh process)."""
    modules = ", ".join(
        f"segsync_hubspot.{m}"
        for m in ("connector", "client", "read", "write", "segments", "compiler", "fields")
    )
    code = (
        f"import sys, segsync_hubspot, {modules}\n"
        "print(sorted(m for m in sys.modules if 'emulator' in m))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    assert done.stdout.strip() == "[]"


def test_the_emulator_client_config_reaches_the_emulator() -> None:
    """`client_config()` plus a base URL is all a connector needs to talk to the emulator."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    connector = HubSpotConnector(
        {**emulator.client_config(), "base_url": "http://127.0.0.1:9"},
        transport=emulator.transport(),
        clock=clock,
    )

    async def main() -> None:
        async with connector:
            await connector.check()

    asyncio.run(main())

    assert HubSpotEmulator.demo_port == 8002
    assert emulator.log.count(status=200) == 2  # a contact page, the subscription definitions
    assert emulator.log.count() == 2


def test_the_credential_pattern_matches_the_emulator_token_only() -> None:
    """The token shape redacted from logs matches a private-app token, not other text."""
    (pattern,) = HubSpotConnector.credential_patterns

    assert re.search(pattern, f"Bearer {HubSpotEmulator.default_api_key}")
    assert not re.search(pattern, "pat-na1-short and a plain word")


def test_the_shipped_mapping_is_a_resource_of_the_package() -> None:
    """`mapping.yaml` ships inside the package and maps onto HubSpot's own properties."""
    resource = HubSpotConnector.default_mapping_resource()
    assert resource is not None
    assert resource.is_file()

    mapping = PlatformMapping(_parse_file(resource), source=str(resource))

    assert mapping.platform_path("first_name") == "firstname"
    assert mapping.platform_path("language") == "hs_language"
