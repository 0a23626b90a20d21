"""segsync connector for Brevo: the connector, its rule compiler and a faithful emulator."""

from segsync_brevo.connector import BrevoConfig, BrevoConnector, DoubleOptIn, ImportCostModel

__all__ = ["BrevoConfig", "BrevoConnector", "DoubleOptIn", "ImportCostModel"]
