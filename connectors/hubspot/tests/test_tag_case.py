"""Tags keep their case through HubSpot's checkbox property.

HubSpot stores option values in lower case; the label keeps the case written. A fresh
connector (a new run: nothing cached from the writes) reads the labels back, so a tag written
as `VIP` is read as `VIP`, not `vip` (which would rewrite every tag on the next run).
"""

from __future__ import annotations

import asyncio

from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange


def connector(emulator: HubSpotEmulator, clock: VirtualClock) -> HubSpotConnector:
    return HubSpotConnector({"token": emulator.default_api_key, "base_url": "http://127.0.0.1:9"},
                            transport=emulator.transport(), clock=clock)


def test_a_fresh_connector_reads_tags_in_the_case_written() -> None:
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)

    async def main() -> dict[str, frozenset[str]]:
        writer = connector(emulator, clock)
        results = await writer.write([
            ContactChange(email="ada@case.dev", create=True,
                          tags_add=frozenset({"VIP", "Customers 2023"})),
        ])
        assert all(r.ok for r in results), results
        await writer.aclose()
        clock.advance(emulator.read_lag_seconds)  # until search finds the write
        reader = connector(emulator, clock)
        seen = {c.email: c.tags async for page in reader.read(None) for c in page.contacts}
        await reader.aclose()
        return seen

    assert asyncio.run(main()) == {"ada@case.dev": frozenset({"VIP", "Customers 2023"})}
