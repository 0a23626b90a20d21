"""Canonical test data for the conformance kit: a default schema and seeded contacts."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from segsync.connector import ContactChange
from segsync.model import Consent, ConsentStatus, Contact, FieldSpec, FieldType, Schema

__all__ = ["DEFAULT_SCHEMA", "DEFAULT_TAGS", "change_for", "sample_contacts", "sample_value"]

DEFAULT_SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE", "US", "GB")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "last_purchase_at": FieldSpec(type=FieldType.DATE),
    }
)
"""The schema a suite uses unless it sets its own: text, enum, number and date fields."""

DEFAULT_TAGS: tuple[str, ...] = ("alpha", "beta", "gamma")

_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")


def sample_value(spec: FieldSpec, rng: random.Random) -> Any:
    """A value of `spec`'s type, as the canonical model holds it."""
    match spec.type:
        case FieldType.TEXT:
            return rng.choice(_NAMES)
        case FieldType.PHONE:
            return f"+33 6{rng.randrange(10**7, 10**8)}"
        case FieldType.NUMBER:
            return float(rng.randrange(0, 100000)) / 100
        case FieldType.INTEGER:
            return rng.randrange(0, 1000)
        case FieldType.BOOLEAN:
            return rng.random() < 0.5
        case FieldType.DATE:
            return dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 365))
        case FieldType.DATETIME:
            return dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                seconds=rng.randrange(0, 365 * 86400)
            )
        case FieldType.ENUM:
            return rng.choice(spec.options or ("one", "two", "three"))
        case FieldType.MULTI_ENUM:
            options = spec.options or ("one", "two", "three")
            return frozenset(rng.sample(options, rng.randrange(0, len(options) + 1)))
    raise ValueError(f"no sample for {spec.type}")  # pragma: no cover


def sample_contacts(
    schema: Schema,
    n: int,
    rng: random.Random,
    *,
    tags: Sequence[str] = DEFAULT_TAGS,
    consents: Sequence[ConsentStatus] = (ConsentStatus.SUBSCRIBED, ConsentStatus.NON_SUBSCRIBED),
    prefix: str = "contact",
) -> list[Contact]:
    """`n` contacts with every writable field set, a random subset of `tags` and a consent."""
    contacts = []
    for i in range(n):
        fields = {
            name: sample_value(spec, rng)
            for name, spec in schema.fields.items()
            if not spec.read_only
        }
        contacts.append(
            Contact(
                email=f"{prefix}{i:05d}@example.com",
                fields=fields,
                tags=frozenset(t for t in tags if rng.random() < 0.5),
                consent=Consent(status=rng.choice(list(consents))),
            )
        )
    return contacts


def change_for(contact: Contact, *, create: bool = True) -> ContactChange:
    """The write that puts `contact` on a platform: fields, tags and consent."""
    return ContactChange(
        email=contact.email,
        create=create,
        platform_id=contact.ids.get("_platform"),
        fields=dict(contact.fields),
        consent=contact.consent.status,
        tags_add=contact.tags,
    )
