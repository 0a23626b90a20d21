"""A template segsync connector for the fictional "Template" platform: copy it to start one.

Importing the package loads the connector only; the emulator (`segsync_template.emulator`)
is imported when asked for, through `TemplateConnector.emulator_path`.
"""

from segsync_template.connector import TemplateConfig, TemplateConnector

__all__ = ["TemplateConfig", "TemplateConnector"]
