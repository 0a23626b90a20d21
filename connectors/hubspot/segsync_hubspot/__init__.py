"""segsync's HubSpot connector: the connector, its rule compiler and a faithful emulator.

Registered under the `segsync.connectors` entry point as `hubspot`, exactly like a third-party
connector would be. Importing the package loads the connector only: the emulator
(`segsync_hubspot.emulator`) is imported when it is asked for, by the conformance kit,
`segsync emulate`, the demo or the benchmark (`HubSpotEmulator` here imports it on first
access).
"""

from typing import TYPE_CHECKING, Any

from segsync_hubspot.compiler import HubSpotCompiler
from segsync_hubspot.config import HubSpotConfig
from segsync_hubspot.connector import HubSpotConnector

if TYPE_CHECKING:
    from segsync_hubspot.emulator import HubSpotEmulator

__all__ = ["HubSpotCompiler", "HubSpotConfig", "HubSpotConnector", "HubSpotEmulator"]


def __getattr__(name: str) -> Any:
    """`HubSpotEmulator`, imported on first access (the emulator is not a runtime need)."""
    if name == "HubSpotEmulator":
        from segsync_hubspot.emulator import HubSpotEmulator

        return HubSpotEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
