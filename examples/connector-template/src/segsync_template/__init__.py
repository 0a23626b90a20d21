"""A template segsync connector for the fictional "Template" platform: copy it to start one."""

from segsync_template.compiler import TemplateCompiler
from segsync_template.connector import TemplateConfig, TemplateConnector
from segsync_template.emulator import TemplateEmulator

__all__ = ["TemplateCompiler", "TemplateConfig", "TemplateConnector", "TemplateEmulator"]
