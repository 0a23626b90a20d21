"""segsync's HubSpot connector: the connector, its rule compiler and a faithful emulator."""

from segsync_hubspot.compiler import HubSpotCompiler
from segsync_hubspot.connector import HubSpotConfig, HubSpotConnector
from segsync_hubspot.emulator import HubSpotEmulator

__all__ = ["HubSpotCompiler", "HubSpotConfig", "HubSpotConnector", "HubSpotEmulator"]
