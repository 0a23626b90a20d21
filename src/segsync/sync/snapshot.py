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
import marshal
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
    "read_hash",
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
    if value.tzinfo is dt.UTC:  # already UTC (most platforms' times): as is
        return value.isoformat()
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
        """The stored JSON text: `dumps(self.encode())`, written key by key in the order
        `dumps` sorts them (the merge writes one for every contact it reconciles)."""
        try:
            return self._dumps()
        except TypeError:  # a tag or a value of another kind: as `dumps` writes it
            return dumps(self.encode())

    def _dumps(self) -> str:
        # the keys in sorted order: c ca ce cs email f lb t
        text = '{"c":' + _text(self.consent.value)
        if self.consent_at:
            text += ',"ca":' + _value(self.consent_at)
        if self.consent_evidence:
            text += ',"ce":' + _value(self.consent_evidence)
        if self.consent_source:
            text += ',"cs":' + _value(self.consent_source)
        fields = self.fields
        text += (',"email":' + _value(self.email) + ',"f":'
                 + _ENCODER.encode(fields if type(fields) is dict else dict(fields)))
        if self.legal_basis:
            text += ',"lb":' + _value(self.legal_basis)
        return text + ',"t":[' + ",".join(map(_text, self.tags)) + "]}"

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
    (the pull encodes every record it reads): the same text, written key by key in the
    order `dumps` sorts them (`_stored_read` names the keys), each value by the encoder
    `dumps` uses; a record of another shape (a field name that is not text) is encoded
    through `_stored_read`."""
    try:
        return _encode_read(remote, email_key)
    except TypeError:
        return _encoded(_stored_read(remote, email_key))


def _encode_read(remote: RemoteContact, email_key: str) -> tuple[str, str]:
    consent = remote.consent
    # the keys in sorted order: c ca ce d e email f id k lb n r t u (ca and u, times, are
    # left out of the hashed text)
    head = '{"c":' + _text(consent.status.value)
    parts: list[str] = []
    if consent.evidence:
        parts.append('"ce":' + _value(consent.evidence))
    if remote.deleted:
        parts.append('"d":true')
    engagement = {k: jsonify(v) for k, v in remote.engagement.items() if v is not None}
    if engagement:
        parts.append('"e":' + _ENCODER.encode(engagement))
    parts.append('"email":' + _value(remote.email))
    parts.append('"f":' + _fields_text(remote.fields))
    parts.append('"id":' + _value(remote.platform_id))
    parts.append('"k":' + _value(email_key))
    if consent.legal_basis:
        parts.append('"lb":' + _value(consent.legal_basis))
    if remote.unread:
        parts.append('"n":' + _ENCODER.encode(sorted(remote.unread)))
    if remote.reachable is not None:
        parts.append('"r":' + _ENCODER.encode(remote.reachable))
    parts.append('"t":[' + ",".join(map(_text, sorted(remote.tags))) + "]")
    rest = ",".join(parts)
    body = f"{head},{rest}}}"
    digest = _hash(body)
    updated = _iso(remote.updated_at)
    if consent.updated_at is None and updated is None:
        return body, digest
    text = head
    if consent.updated_at is not None:
        text += ',"ca":' + _value(_iso(consent.updated_at))
    text += "," + rest
    if updated is not None:
        text += ',"u":' + _text(updated)
    return text + "}", digest


_text = json.encoder.encode_basestring  # what `dumps` writes a text as (not ASCII-escaped)


def _value(value: Any) -> str:
    """A value as `dumps` writes it."""
    return _text(value) if type(value) is str else _ENCODER.encode(value)


def _fields_text(fields: Mapping[str, Any]) -> str:
    """`dumps` of a record's set fields (their values in JSON form, as `_stored_read`);
    TypeError for a name that is not text."""
    return "{" + ",".join(
        f"{_text(k)}:{_text(v) if type(v) is str else _ENCODER.encode(jsonify(v))}"
        for k, v in sorted(fields.items()) if v is not None
    ) + "}"


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


_PLAIN = frozenset({str, int, float, bool, type(None)})
"""Value types `marshal` writes the same way in every process (not sets: their order is
the process's hash seed's)."""


def _plain_items(values: Mapping[str, Any]) -> Any:
    """A mapping as `read_hash` takes it: sorted pairs of plain values, else its JSON."""
    if not values:
        return ()
    items = sorted(values.items())
    for _, value in items:
        if type(value) not in _PLAIN:
            return _ENCODER.encode({k: jsonify(v) for k, v in items})
    return tuple(items)


def read_hash(remote: RemoteContact) -> str:
    """A digest of everything of a record as read that its stored form holds (times
    included, unlike `content_hash`), cheaper to take than the stored form: two reads of a
    record with the same `read_hash` store the same text (`encode_read`, under one email
    key). The pull compares it with the one kept with the base to leave a record read
    unchanged as it is. It changes with `_READ_HASH_SALT`, with `encode_read`'s writing of
    a sample record, and from one Python version to another (`marshal`): a record is then
    only read again in full, once."""
    record = remote.__dict__  # the model's fields, read as the hot loop of a pull reads them
    consent = record["consent"].__dict__
    tags, unread, fields, engagement = (
        record["tags"], record["unread"], record["fields"], record["engagement"])
    updated, consented = record["updated_at"], consent["updated_at"]
    try:
        packed = marshal.dumps((
            _READ_HASH_SALT, record["platform_id"], record["email"],
            _plain_items(fields) if fields else (),
            tuple(sorted(tags)) if len(tags) > 1 else tuple(tags),
            consent["status"].value,
            None if consented is None else (
                consented.__reduce__()[1][0] if consented.tzinfo is dt.UTC
                else consented.isoformat()),
            consent["legal_basis"], consent["evidence"],
            _plain_items(engagement) if engagement else (),
            None if updated is None else (
                updated.__reduce__()[1][0] if updated.tzinfo is dt.UTC
                else updated.isoformat()),
            record["deleted"], record["reachable"],
            tuple(sorted(unread)) if unread else (),
        ), 2)  # version 2: no back-references, whose use follows reference counts
    except (TypeError, ValueError):  # a value `marshal` does not write: the stored form's
        return _hash(_READ_HASH_SALT + encode_read(remote, "")[0])
    return hashlib.blake2b(packed, digest_size=16).hexdigest()


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


def _sample_encoding() -> str:
    """What `encode_read` writes of a sample record: part of `read_hash`'s salt, so that a
    change of the stored form is a change of every read hash."""
    from segsync.model import Consent

    sample = RemoteContact.model_construct(
        platform_id="id", email="A@x.dev", fields={"f": "v", "n": 1.5, "d": dt.date(2020, 1, 2)},
        tags=frozenset({"t", "u"}), engagement={"opens": 1},
        consent=Consent(status=ConsentStatus.SUBSCRIBED, evidence="e", legal_basis="b",
                        updated_at=dt.datetime(2020, 1, 2, tzinfo=dt.UTC)),
        updated_at=dt.datetime(2020, 1, 3, tzinfo=dt.UTC), deleted=False, reachable=True,
        unread=frozenset({"x"}), aliases=frozenset())
    return _hash(encode_read(sample, "a@x.dev")[0])


_READ_HASH_SALT = "read-hash 1 " + _sample_encoding()
"""Bump the number when what a read hash covers changes."""
