"""The conformance kit, run against the HubSpot emulator."""

from __future__ import annotations

from typing import Any, ClassVar

from segsync.testing import ConnectorSuite

from segsync_hubspot import HubSpotConnector, HubSpotEmulator


class TestHubSpotConformance(ConnectorSuite):
    connector_cls = HubSpotConnector
    emulator_cls = HubSpotEmulator
    config: ClassVar[dict[str, Any]] = {"token": HubSpotEmulator.default_api_key}
