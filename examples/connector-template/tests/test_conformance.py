"""The Template connector passes segsync's conformance kit.

The three attributes are all a connector needs; the hooks below seed and read the platform
through the emulator's own state, so a connector bug cannot hide behind itself.
"""

from collections.abc import Sequence

from segsync_template import TemplateConnector, TemplateEmulator
from segsync_template.connector import FIELD_TYPES, to_platform

from segsync.connector import RemoteContact
from segsync.model import Consent, ConsentStatus, Contact
from segsync.testing import ConnectorSuite


class TestTemplateConformance(ConnectorSuite):
    connector_cls = TemplateConnector
    emulator_cls = TemplateEmulator
    config = {"api_key": TemplateEmulator.default_api_key}
    page_size = 20  # the platform pages by 100; 20 keeps the paging test small

    def seed_remote(self, emulator: TemplateEmulator, contacts: Sequence[Contact]) -> None:
        for name, spec in self.schema.fields.items():
            emulator.fields.setdefault(name, FIELD_TYPES.get(spec.type, "text"))
        for contact in contacts:
            emulator.put_contact(
                contact.email,
                attributes={k: to_platform(v) for k, v in contact.fields.items() if v is not None},
                tags=set(contact.tags),
                consent=contact.consent.status.value,
            )

    def remote_state(self, emulator: TemplateEmulator) -> dict[str, RemoteContact]:
        return {
            key: RemoteContact(
                platform_id=stored.id,
                email=stored.email,
                fields=self.schema.coerce_fields(
                    {k: v for k, v in stored.attributes.items() if v != ""}
                ),
                tags=frozenset(stored.tags),
                consent=Consent(status=ConsentStatus(stored.consent)),
                updated_at=stored.updated_at,
            )
            for key, stored in emulator.contacts.items()
        }

    def unsubscribe_remote(self, emulator: TemplateEmulator, email: str) -> None:
        emulator.contacts[email.lower()].consent = "unsubscribed"

    def modify_remote(self, emulator: TemplateEmulator, emails: Sequence[str]) -> None:
        for i, email in enumerate(emails):
            emulator.touch(email, **{self.modify_field: f"Changed {i}"})
