"""Compact snapshots: how a platform record and a canonical contact are held by the engine.

The hot path works on plain dicts with short keys, JSON-ready, never on pydantic models:

- a *record snapshot* (what a platform holds): `id` platform id, `email` as the platform
  holds it, `k` its normalised key, `f` fields (unset ones absent), `t` sorted tags, `c`
  consent status, `ca` consent time, `lb` legal basis, `u` last-modified time, `d` deleted,
  `e` read-only engagement;
- a *canonical view* (the reconciled contact): `email` (normalised), `f`, `t`, `c`, `ca`,
  `cs` (the platform the consent came from), `lb`.

`content_hash` ignores `u` and `ca`, so a record that segsync wrote and reads back unchanged hashes
the same as what it wrote (echo suppression without decoding).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from segsync.connector import ContactChange, RemoteContact

__all__ = [
    "apply_change",
    "content_hash",
    "dumps",
    "encode_record",
    "jsonify",
    "record_snapshot",
]


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


def content_hash(snapshot: Mapping[str, Any]) -> str:
    """A hash of a record snapshot without its modification and consent times."""
    body = {k: v for k, v in snapshot.items() if k not in ("u", "ca")}
    return hashlib.blake2b(dumps(body).encode(), digest_size=12).hexdigest()


def encode_record(snapshot: Mapping[str, Any]) -> tuple[str, str]:
    """`(dumps(snapshot), content_hash(snapshot))`, encoding the snapshot once where it can."""
    body = {k: v for k, v in snapshot.items() if k not in ("u", "ca")}
    text = dumps(body)
    digest = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    if len(body) == len(snapshot):
        return text, digest
    if "ca" not in snapshot and body and max(body) < "u":  # "u" is the last key: append it
        return f'{text[:-1]},"u":{_ENCODER.encode(snapshot["u"])}}}', digest
    return dumps(snapshot), digest


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()


def record_snapshot(remote: RemoteContact, key: str) -> dict[str, Any]:
    """The snapshot of a record as read, `key` being its normalised email."""
    snap: dict[str, Any] = {
        "id": remote.platform_id,
        "email": remote.email,
        "k": key,
        "f": {
            k: v if type(v) is str else jsonify(v)  # most values are text: no call
            for k, v in remote.fields.items()
            if v is not None
        },
        "t": sorted(remote.tags),
        "c": remote.consent.status.value,
    }
    if remote.engagement:
        snap["e"] = {k: jsonify(v) for k, v in remote.engagement.items() if v is not None}
    if remote.consent.updated_at is not None:
        snap["ca"] = _iso(remote.consent.updated_at)
    if remote.consent.legal_basis:
        snap["lb"] = remote.consent.legal_basis
    if remote.updated_at is not None:
        snap["u"] = _iso(remote.updated_at)
    if remote.deleted:
        snap["d"] = True
    return snap


def apply_change(
    before: Mapping[str, Any] | None,
    change: ContactChange | Mapping[str, Any],
    platform_id: str,
    *,
    key: str,
    at: str | None = None,
) -> dict[str, Any]:
    """The snapshot a record has once `change` is applied to `before` (None: a creation)."""
    data = change.model_dump() if isinstance(change, ContactChange) else dict(change)
    snap: dict[str, Any] = (
        {k: v for k, v in before.items() if k != "d"}
        if before is not None and not before.get("d")
        else {"email": data["email"], "k": key, "f": {}, "t": [], "c": "non_subscribed"}
    )
    snap["id"] = platform_id
    fields = dict(snap.get("f", {}))
    for name, value in (data.get("fields") or {}).items():
        value = jsonify(value)
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    snap["f"] = fields
    tags = (set(snap.get("t", ())) | set(data.get("tags_add") or ())) - set(
        data.get("tags_remove") or ()
    )
    snap["t"] = sorted(tags)
    consent = data.get("consent")
    if consent is not None:
        snap["c"] = str(consent)
        if at is not None:
            snap["ca"] = at
        if data.get("consent_basis"):
            snap["lb"] = data["consent_basis"]
    if data.get("new_email"):
        snap["email"] = data["new_email"]
        snap["k"] = key
    if at is not None:
        snap["u"] = at
    return snap
