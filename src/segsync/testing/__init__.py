"""The connector conformance kit, shipped with segsync.

A connector's test module subclasses `ConnectorSuite`, sets the connector class and a config
(the emulator is the one the connector's `emulator_path` names, imported by the kit), and
inherits one test per behaviour every connector must have (see
`segsync.testing.suite`). The pytest plugin (`segsync.testing.plugin`, registered through the
`pytest11` entry point) turns a suite's stated opt-outs into strict xfails.
"""

from segsync.testing.data import DEFAULT_SCHEMA, change_for, sample_contacts
from segsync.testing.harness import (
    Exchange,
    FirstRequestsFault,
    Harness,
    RecordingTransport,
    between_pages,
)
from segsync.testing.responses import ResponseCheckingTransport, ResponseValidator
from segsync.testing.suite import ConnectorSuite, SuiteTest

__all__ = [
    "DEFAULT_SCHEMA",
    "ConnectorSuite",
    "Exchange",
    "FirstRequestsFault",
    "Harness",
    "RecordingTransport",
    "ResponseCheckingTransport",
    "ResponseValidator",
    "SuiteTest",
    "between_pages",
    "change_for",
    "sample_contacts",
]
