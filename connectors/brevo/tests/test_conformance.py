"""The conformance kit, run against the Brevo emulator."""

from __future__ import annotations

from segsync.connector import ContactChange
from segsync.testing import ConnectorSuite
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator


class TestBrevoConformance(ConnectorSuite):
    connector_cls = BrevoConnector
    emulator_cls = BrevoEmulator
    config = {"api_key": BrevoEmulator.default_api_key}
    page_size = 100
    skip = {
        "test_partial_batch_failure": (
            "Brevo writes small change sets one contact per call, so no batch can fail in "
            "part; partial import and list-membership failures are tested in test_connector.py"
        ),
        "test_native_segments": (
            "Brevo's API cannot create segments: every rule is materialised as an owned list "
            "(tested against the reference evaluator in test_differential.py)"
        ),
    }

    def invalid_change(self) -> ContactChange:
        """An update of a contact Brevo does not have: 404 document_not_found."""
        return ContactChange(
            email="ghost@example.com", platform_id="999999", fields={"first_name": "Nobody"}
        )
