"""segsync connector for Brevo: the connector, its rule compiler and a faithful emulator.

Importing the package loads the connector only; the compiler and the emulator
(`segsync_brevo.emulator`) are imported when asked for.
"""

from segsync_brevo.config import BrevoConfig, ConsentEvidence, DoubleOptIn
from segsync_brevo.connector import BrevoConnector
from segsync_brevo.write import ImportCostModel

__all__ = ["BrevoConfig", "BrevoConnector", "ConsentEvidence", "DoubleOptIn", "ImportCostModel"]
