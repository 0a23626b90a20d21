"""The benchmark audience: a deterministic set of contacts, its schema, tags and segments.

Every figure in the benchmark is computed on this audience, so its shape is stated here:

- `SCHEMA`: three text fields every platform maps (first name, last name, company);
- `TAGS`: three tags, each on a contact with probability `TAG_PROBABILITY`;
- `SEGMENTS`: one rule on a tag and a field (`vip_acme`), published natively where the
  platform can (Mailchimp saved segment, HubSpot DYNAMIC list) and materialised as a list
  where it cannot (Brevo);
- consent: subscribed, except every 20th contact, who is non_subscribed (known, never opted in).

Contact `i` is a pure function of `(i, seed)`, so any process can regenerate any slice.
"""

from __future__ import annotations

from collections.abc import Iterator

from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

__all__ = [
    "COMPANIES",
    "DOMAIN",
    "SCHEMA",
    "SEGMENTS",
    "TAGS",
    "TAG_PROBABILITY",
    "BenchContact",
    "audience",
    "changed",
    "email_of",
]

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "last_name": FieldSpec(type=FieldType.TEXT),
        "company": FieldSpec(type=FieldType.TEXT),
    }
)
TAGS: tuple[str, ...] = ("vip", "newsletter", "b2b")
TAG_PROBABILITY = 0.3
COMPANIES = ("Acme", "Initech", "Globex", "Umbrella", "Hooli")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
SEGMENTS: dict[str, str] = {"vip_acme": 'tags has "vip" and company = "Acme"'}
DOMAIN = "segsync.dev"  # not a domain Mailchimp's emulator refuses as fake


def email_of(i: int) -> str:
    """The email of contact `i`."""
    return f"person{i:07d}@{DOMAIN}"


class BenchContact:
    """One contact of the audience, as plain data (cheap to build by the million)."""

    __slots__ = ("consent", "email", "fields", "tags")

    def __init__(
        self, email: str, fields: dict[str, str], tags: frozenset[str], consent: ConsentStatus
    ) -> None:
        self.email = email
        self.fields = fields
        self.tags = tags
        self.consent = consent

    def change(self) -> ContactChange:
        """The write that creates this contact on a platform."""
        return ContactChange(
            email=self.email,
            create=True,
            fields=dict(self.fields),
            consent=self.consent,
            tags_add=self.tags,
        )


_MASK = (1 << 64) - 1
_TAG_THRESHOLD = int(TAG_PROBABILITY * 1024)
_TAG_SETS: tuple[frozenset[str], ...] = tuple(
    frozenset(t for bit, t in enumerate(TAGS) if combo >> bit & 1) for combo in range(8)
)


def _mix(value: int) -> int:
    """splitmix64: a cheap, well-spread hash (contact i is a pure function of i and the seed)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _contact(i: int, seed: int) -> BenchContact:
    h = _mix(seed * 1_000_003 + i)
    fields = {
        "first_name": FIRST_NAMES[h % len(FIRST_NAMES)],
        "last_name": f"Number{i}",
        "company": COMPANIES[(h >> 8) % len(COMPANIES)],
    }
    combo = sum(
        1 << bit for bit in range(len(TAGS)) if (h >> (16 + 10 * bit)) & 1023 < _TAG_THRESHOLD
    )
    consent = ConsentStatus.NON_SUBSCRIBED if i % 20 == 0 else ConsentStatus.SUBSCRIBED
    return BenchContact(email_of(i), fields, _TAG_SETS[combo], consent)


def audience(n: int, *, seed: int = 0, start: int = 0) -> Iterator[BenchContact]:
    """Contacts `start` .. `start + n - 1` of the audience (deterministic for `seed`)."""
    for i in range(start, start + n):
        yield _contact(i, seed)


def changed(n: int, fraction: float, *, seed: int = 0) -> list[tuple[int, BenchContact]]:
    """Every `1/fraction`-th contact of `n`, edited: a new company and the `vip` tag toggled.

    Returns (index, contact as it is after the edit).
    """
    step = max(1, round(1 / fraction)) if fraction > 0 else n + 1
    edited: list[tuple[int, BenchContact]] = []
    for i in range(0, n, step):
        before = _contact(i, seed)
        company = COMPANIES[(COMPANIES.index(before.fields["company"]) + 1) % len(COMPANIES)]
        tags = before.tags ^ {"vip"}
        edited.append(
            (
                i,
                BenchContact(
                    before.email, {**before.fields, "company": company}, tags, before.consent
                ),
            )
        )
    return edited
