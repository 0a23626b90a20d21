"""Snapshots: a platform record and a canonical contact as the engine holds them, and their
compact stored form (the one place the short keys live).

The engine works on two frozen values, never on pydantic models:

- `PlatformRecord`: what a platform holds (what segsync last saw or wrote there);
- `CanonicalView`: the reconciled contact.

Both are stored as compact JSON objects with short keys:

=====  ==================  =====================================================
key    record              view
=====  ==================  =====================================================
id     platform_id         -
email  email (as held)     email (normalised)
k      email_key           -
f      fields              fields (unset ones absent in both)
t      tags (sorted)       tags (sorted)
c      consent             consent
ca     consent_at          consent_at
cs     -                   consent_source (the platform the consent came from)
lb     legal_basis         legal_basis
ce     consent_evidence    consent_evidence
u      updated_at          -
d      deleted (if true)   -
e      engagement          -
er     refreshed           -
ra     refreshed_at        -
r      reachable (if set)  -
n      unread (if any)     -
=====  ==================  =====================================================

`e` is the engagement the platform's read carried; `er` what its engagement refresh
(`segsync.sync.engagement`) read later for the keys the read does not carry or carried
older; `facts` is the two merged (the newest observation of each key wins).

Optional keys are absent when unset. `content_hash` ignores `u`, `ca`, `ra` and `er`, so a
record that segsync wrote and reads back unchanged hashes the same as what it wrote (echo
suppression without decoding).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import types
from collections.abc import Mapping
from typing import Any

from segsync.connector import RemoteContact
from segsync.model import ConsentStatus
from segsync.sync.plan import ChangeRow

__all__ = [
    "CanonicalView",
    "PlatformRecord",
    "apply_change",
    "content_hash",
    "dumps",
    "encode_read",
    "encode_record",
    "jsonify",
]

_NO_VALUES: Mapping[str, Any] = types.MappingProxyType({})
_STATUS = {status.value: status for status in ConsentStatus}  # a lookup, not a call
_NON_SUBSCRIBED = ConsentStatus.NON_SUBSCRIBED
# left out of the content hash: times, and the refreshed engagement (no read carries it, so
# a record read again unchanged hashes as the one staged; segsync.sync.recheck compares them)
_TIMES = ("u", "ca", "ra", "er")


def jsonify(value: Any) -> Any:
    """A field value in its JSON form: dates ISO-8601, sets sorted lists, the rest as is."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, frozenset | set | tuple | list):
        return sorted(str(v) for v in value)
    return value


# built once: `json.dumps` with options builds an encoder on every call
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dumps(data: Mapping[str, Any]) -> str:
    """Compact, key-sorted JSON (stable, so equal snapshots give equal text)."""
    return _ENCODER.encode(data)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()


def _loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("a stored snapshot is a JSON object")
    return value


def _stored_read(remote: RemoteContact, email_key: str) -> dict[str, Any]:
    """The stored form of a record as read (what `PlatformRecord.of(...).encode()` gives)."""
    consent = remote.consent
    data: dict[str, Any] = {
        "id": remote.platform_id,
        "email": remote.email,
        "k": email_key,
        "f": {
            k: v if type(v) is str else jsonify(v)  # most values are text: no call
            for k, v in remote.fields.items()
            if v is not None
        },
        "t": sorted(remote.tags),
        "c": consent.status.value,
    }
    engagement = {k: jsonify(v) for k, v in remote.engagement.items() if v is not None}
    if engagement:
        data["e"] = engagement
    if consent.updated_at is not None:
        data["ca"] = _iso(consent.updated_at)
    if consent.legal_basis:
        data["lb"] = consent.legal_basis
    if consent.evidence:
        data["ce"] = consent.evidence
    if remote.updated_at is not None:
        data["u"] = _iso(remote.updated_at)
    if remote.deleted:
        data["d"] = True
    if remote.reachable is not None:
        data["r"] = remote.reachable
    if remote.unread:
        data["n"] = sorted(remote.unread)
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class PlatformRecord:
    """One record on a platform: its id, its email as held and normalised (`email_key`),
    fields (unset ones absent, values in JSON form), sorted tags, consent and the read-only
    engagement. Times are ISO-8601 text; `deleted` records are kept to be left alone.
    `reachable` is `RemoteContact.reachable` (None: the consent status tells it all);
    `unread` is `RemoteContact.unread` (what the platform could not hold when read).

    The record's consent source is its platform, so it is not held here.
    """

    platform_id: str
    email: str
    email_key: str
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    consent: ConsentStatus = _NON_SUBSCRIBED
    consent_at: str | None = None
    legal_basis: str | None = None
    consent_evidence: str | None = None
    updated_at: str | None = None
    deleted: bool = False
    engagement: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reachable: bool | None = None
    unread: tuple[str, ...] = ()
    refreshed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    refreshed_at: str | None = None

    @property
    def facts(self) -> Mapping[str, Any]:
        """The record's engagement: what the read carried, overlaid with what a later
        refresh read (`refreshed` only holds keys newer than the read)."""
        return {**self.engagement, **self.refreshed} if self.refreshed else self.engagement

    @classmethod
    def of(cls, remote: RemoteContact, email_key: str) -> PlatformRecord:
        """The record as read, `email_key` being its normalised email."""
        return cls.decode(_stored_read(remote, email_key))

    def encode(self) -> dict[str, Any]:
        """The stored form (short keys; see the module docstring)."""
        data: dict[str, Any] = {
            "id": self.platform_id,
            "email": self.email,
            "k": self.email_key,
            "f": dict(self.fields),
            "t": list(self.tags),
            "c": self.consent.value,
        }
        if self.engagement:
            data["e"] = dict(self.engagement)
        if self.refreshed:
            data["er"] = dict(self.refreshed)
        if self.refreshed_at is not None:
            data["ra"] = self.refreshed_at
        if self.consent_at is not None:
            data["ca"] = self.consent_at
        if self.legal_basis:
            data["lb"] = self.legal_basis
        if self.consent_evidence:
            data["ce"] = self.consent_evidence
        if self.updated_at is not None:
            data["u"] = self.updated_at
        if self.deleted:
            data["d"] = True
        if self.reachable is not None:
            data["r"] = self.reachable
        if self.unread:
            data["n"] = list(self.unread)
        return data

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> PlatformRecord:
        """A record from its stored form (keys absent from older snapshots default)."""
        get = data.get
        return cls(
            get("id", ""),
            get("email") or "",
            get("k") or "",
            get("f") or _NO_VALUES,
            tuple(get("t") or ()),
            _STATUS[get("c") or _NON_SUBSCRIBED],
            get("ca"),
            get("lb"),
            get("ce"),
            get("u"),
            bool(get("d")),
            get("e") or _NO_VALUES,
            get("r"),
            tuple(get("n") or ()),
            get("er") or _NO_VALUES,
            get("ra"),
        )

    @classmethod
    def loads(cls, payload: str) -> PlatformRecord:
        """A record from its stored JSON text."""
        return cls.decode(_loads(payload))


@dataclasses.dataclass(frozen=True, slots=True)
class CanonicalView:
    """The reconciled contact: normalised email, fields (unset ones absent), sorted tags,
    and its consent with the platform it came from (`consent_source`), its time, legal
    basis and evidence."""

    email: str
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    consent: ConsentStatus = _NON_SUBSCRIBED
    consent_source: str | None = None
    consent_at: str | None = None
    legal_basis: str | None = None
    consent_evidence: str | None = None

    def encode(self) -> dict[str, Any]:
        """The stored form (short keys; see the module docstring)."""
        data: dict[str, Any] = {
            "email": self.email,
            "f": dict(self.fields),
            "t": list(self.tags),
            "c": self.consent.value,
        }
        if self.consent_source:
            data["cs"] = self.consent_source
        if self.consent_at:
            data["ca"] = self.consent_at
        if self.legal_basis:
            data["lb"] = self.legal_basis
        if self.consent_evidence:
            data["ce"] = self.consent_evidence
        return data

    def dumps(self) -> str:
        """The stored JSON text."""
        return dumps(self.encode())

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> CanonicalView:
        """A view from its stored form."""
        get = data.get
        return cls(
            get("email") or "",
            get("f") or _NO_VALUES,
            tuple(get("t") or ()),
            _STATUS[get("c") or _NON_SUBSCRIBED],
            get("cs"),
            get("ca"),
            get("lb"),
            get("ce"),
        )

    @classmethod
    def loads(cls, payload: str) -> CanonicalView:
        """A view from its stored JSON text."""
        return cls.decode(_loads(payload))


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def content_hash(record: PlatformRecord) -> str:
    """A hash of a record's stored form without its modification and consent times."""
    return _hash(dumps({k: v for k, v in record.encode().items() if k not in _TIMES}))


def encode_record(record: PlatformRecord) -> tuple[str, str]:
    """`(stored text, content_hash(record))`, encoding the record once where it can."""
    return _encoded(record.encode())


def encode_read(remote: RemoteContact, email_key: str) -> tuple[str, str]:
    """`encode_record(PlatformRecord.of(remote, email_key))`, without building the record
    (the pull encodes every record it reads)."""
    return _encoded(_stored_read(remote, email_key))


def _encoded(data: Mapping[str, Any]) -> tuple[str, str]:
    body = {k: v for k, v in data.items() if k not in _TIMES}
    text = dumps(body)
    digest = _hash(text)
    if len(body) == len(data):
        return text, digest
    # only "u" left out, and it is the last key: append it
    if len(data) - len(body) == 1 and "u" in data and body and max(body) < "u":
        return f'{text[:-1]},"u":{_ENCODER.encode(data["u"])}}}', digest
    return dumps(data), digest


def apply_change(
    before: PlatformRecord | None,
    change: ChangeRow,
    platform_id: str,
    *,
    email_key: str,
    at: str | None = None,
) -> PlatformRecord:
    """The record a platform holds once `change` is applied to `before` (None or deleted:
    a creation). A written consent rests on segsync's own write: it has no evidence, and
    the platform's own word on reachability (`reachable`) is no longer known."""
    if before is None or before.deleted:
        before = PlatformRecord(platform_id, change["email"], email_key)
    fields = dict(before.fields)
    for name, value in (change.get("fields") or {}).items():
        value = jsonify(value)
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    tags = (set(before.tags) | set(change.get("tags_add") or ())) - set(
        change.get("tags_remove") or ()
    )
    consent, consent_at = before.consent, before.consent_at
    basis, evidence = before.legal_basis, before.consent_evidence
    reachable = before.reachable
    if change.get("consent") is not None:
        consent, evidence, reachable = _STATUS[str(change["consent"])], None, None
        if at is not None:
            consent_at = at
        basis = change.get("consent_basis") or basis
    email, key = before.email, before.email_key
    if change.get("new_email"):
        email, key = change["new_email"], email_key
    return PlatformRecord(
        platform_id, email, key, fields, tuple(sorted(tags)), consent, consent_at, basis,
        evidence, at if at is not None else before.updated_at, False, before.engagement,
        reachable, (), before.refreshed, before.refreshed_at,
    )
