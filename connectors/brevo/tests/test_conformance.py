"""The conformance kit, run against the Brevo emulator.

Changes made "on the platform" and the platform's state are read from the emulator's own
records (not through the connector), so a connector bug cannot hide itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator, ContactRecord
from segsync_brevo.responsecheck import MISSING, response_validator

from segsync.connector import RemoteContact
from segsync.emulator.base import Emulator
from segsync.model import Consent, ConsentStatus, FieldType
from segsync.testing import ConnectorSuite, ResponseValidator

_VALIDATOR: ResponseValidator | None = response_validator()

CONSENT_LABELS = {
    1: "subscribed",
    2: "non_subscribed",
    3: "pending",
    4: "unsubscribed",
    5: "bounced",
}


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

    def response_validator(self) -> ResponseValidator | None:
        """Every emulator answer is checked against Brevo's description, when present."""
        return _VALIDATOR

    async def remote_state(self, emulator: Emulator) -> dict[str, RemoteContact]:
        """Every stored contact, decoded from the emulator's records by this test alone."""
        assert isinstance(emulator, BrevoEmulator)
        return {c.email: self._decode(emulator, c) for c in emulator.contacts.values() if c.email}

    async def modify_remote(self, emulator: Emulator, emails: Sequence[str]) -> None:
        """A person edits FIRSTNAME in Brevo's interface."""
        assert isinstance(emulator, BrevoEmulator)
        for i, email in enumerate(emails):
            record = emulator.contact(email)
            assert record is not None
            record.attributes["FIRSTNAME"] = f"Changed {i}"
            record.modified_at = emulator.clock.now()

    async def unsubscribe_remote(self, emulator: Emulator, email: str) -> None:
        """The person clicks Brevo's unsubscribe link: the contact is blocklisted."""
        assert isinstance(emulator, BrevoEmulator)
        emulator.blocklist(email, source="contact")

    def _decode(self, emulator: BrevoEmulator, record: ContactRecord) -> RemoteContact:
        fields: dict[str, Any] = {}
        for name, spec in self.schema.fields.items():
            attribute = "FIRSTNAME" if name == "first_name" else name.upper()
            if attribute not in record.attributes:
                continue
            raw = record.attributes[attribute]
            meta = emulator.attributes[attribute]
            if meta.category == "category":
                raw = next(e["label"] for e in meta.enumeration if e["value"] == raw)
            if spec.type is FieldType.DATE:
                raw = dt.date.fromisoformat(raw)
            fields[name] = raw
        tags = frozenset(
            emulator.lists[i]["name"].removeprefix("tag: ")
            for i in record.list_ids
            if emulator.lists[i]["name"].startswith("tag: ")
        ) | frozenset(record.attributes.get("SEGSYNC_TAGS") or ())  # contacts without opt-in
        label = CONSENT_LABELS.get(record.attributes.get("SEGSYNC_CONSENT", 0))
        if record.email_blacklisted:
            status = ConsentStatus.BOUNCED if label == "bounced" else ConsentStatus.UNSUBSCRIBED
        else:
            status = ConsentStatus(label or "non_subscribed")
        return RemoteContact(
            platform_id=str(record.id),
            email=record.email or "",
            fields=fields,
            tags=tags,
            consent=Consent(status=status),
            updated_at=record.modified_at,
        )


def test_conformance_answers_are_validated() -> None:
    """The description is present, so the kit's answers above were checked against it."""
    if _VALIDATOR is None:
        pytest.skip(MISSING)
    suite = TestBrevoConformance()
    suite.test_roundtrip_upsert()

    assert sum(t.checked for t in suite.response_checks) > 3
