"""The Template connector passes segsync's conformance kit.

`connector_cls` and `config` are all a connector needs (the kit imports the emulator its
`emulator_path` names); the hooks below seed and read the platform through the emulator's
own state, so a connector bug cannot hide behind itself. A second run renames attributes in
the mapping: the native segments filter on the renamed attributes and still select exactly
what the evaluator selects.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

from segsync_template import TemplateConnector
from segsync_template.connector import FIELD_TYPES, to_platform
from segsync_template.emulator import TemplateEmulator

from segsync.connector import RemoteContact
from segsync.mapping import FieldMapping, MappingFile, PlatformMapping
from segsync.model import Consent, ConsentStatus, Contact
from segsync.rules import load_rule
from segsync.rules.compiler import Strictness
from segsync.testing import ConnectorSuite

_NO_HOOK = (
    "the template emulator cannot edit between pages (its listing does not call "
    "read_page_served), and its read pages by offset over updated_at with no upper bound"
)
#: a connector without the emulator hook opts out of the kit's edits-while-paging tests
PAGING_OPT_OUTS = {
    "test_edits_between_pages_are_read": _NO_HOOK,
    "test_edits_during_a_slow_read_are_read": _NO_HOOK,
}


class TestTemplateConformance(ConnectorSuite):
    connector_cls = TemplateConnector
    config = {"api_key": TemplateEmulator.default_api_key}
    page_size = 20  # the platform pages by 100; 20 keeps the paging test small
    skip = PAGING_OPT_OUTS

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


#: a user's mapping renaming two attributes
RENAMED = PlatformMapping(
    MappingFile(
        platform="template",
        fields={"country": FieldMapping(path="land"), "first_name": FieldMapping(path="given")},
    )
)


class TestTemplateWithRenamedAttributes(ConnectorSuite):
    """The kit's default hooks (through the connector), with attributes renamed."""

    connector_cls = TemplateConnector
    config = {"api_key": TemplateEmulator.default_api_key}
    mapping: ClassVar[Any] = RENAMED
    page_size = 20
    skip = PAGING_OPT_OUTS


def test_the_compiler_filters_on_the_attribute_the_mapping_names() -> None:
    """Built by the connector, the compiler names the mapping's attribute, not the field."""
    schema = TestTemplateConformance.schema
    rule = load_rule('country = "FR" and first_name = "Ann"', schema)

    shipped = TemplateConnector.build_compiler(schema, strictness=Strictness.RAISE)
    renamed = TemplateConnector.build_compiler(
        schema, strictness=Strictness.RAISE, mapping=RENAMED
    )

    assert shipped is not None
    assert renamed is not None
    assert [c["field"] for c in shipped.compile("s", rule).definition["conditions"]] == [
        "country", "first_name"
    ]
    assert [c["field"] for c in renamed.compile("s", rule).definition["conditions"]] == [
        "land", "given"
    ]
