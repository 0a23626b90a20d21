"""Reading Brevo contacts changed since a cursor, as canonical contacts.

Contract (`Connector.read`), as Brevo makes it: `GET /contacts` 1000 a page, oldest created
first, incremental on `modifiedSince` minus an overlap window, de-duplicated through the
cursor, which keeps the (id, modifiedAt) pairs inside the window. A completed read moves the
mark to its start (the platform's `Date` header, else the injected clock) when that is newer
than anything read. SMS-only contacts are skipped. Consent is evidence (`consent_of`):
every contact's `Consent.evidence` says what it rests on, None for segsync's own echo or
unknown. Tags are the owned tag lists plus the tags attribute (which holds the tags of
contacts that may not be in lists). A contact read as not `subscribed` that is still in a
list segsync writes is taken out of it before the read ends (`_delist`), its tags moved to
the tags attribute, so nobody without opt-in stays reachable through segsync's lists.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from segsync.connector import ReadPage, RemoteContact
from segsync.http import MalformedAnswer
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType
from segsync_brevo.account import KnownContact
from segsync_brevo.fields import category_label, iso_time, parse_time, transformed
from segsync_brevo.segments import BrevoSegments

__all__ = ["BrevoReads", "decode_cursor", "encode_cursor", "platform_time", "reachable_despite"]

log = logging.getLogger("segsync.brevo")


class BrevoReads(BrevoSegments):
    """`read`: contacts page by page, mapped to canonical names and types (a connector part)."""

    def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Contacts modified since the cursor, oldest-created first, page by page."""
        return self._read(cursor)

    async def _read(self, cursor: str | None) -> AsyncIterator[ReadPage]:
        since, seen = decode_cursor(cursor)
        overlap = dt.timedelta(seconds=self.config.read_overlap_seconds)
        attributes = await self._load_attributes()
        tag_ids = await self._tag_ids()
        owned = {i: n for n, i in (await self._lists()).items()}
        unreachable: list[tuple[str, KnownContact]] = []
        params: dict[str, Any] = {"limit": self.capabilities.read_page_size, "sort": "asc"}
        if since is not None:
            params["modifiedSince"] = iso_time(since - overlap)
        high = since
        emitted: set[str] = set()
        fresh: dict[str, str] = {}
        offset = 0
        started = self.clock.now()  # replaced by the platform's own time when it tells it
        while True:
            response = await self._call(
                "GET", "/contacts", "/contacts", params={**params, "offset": offset}
            )
            if offset == 0:
                started = platform_time(response) or started
            data = response.json()
            raw_contacts = data.get("contacts") or []
            page: list[RemoteContact] = []
            for raw in raw_contacts:
                cid, stamp = str(raw["id"]), str(raw["modifiedAt"])
                modified = parse_time(stamp)
                if high is None or modified > high:
                    high = modified
                if modified >= high - overlap:  # only these can go into the next cursor
                    fresh[cid] = stamp
                if cid in emitted or seen.get(cid) == stamp:
                    continue
                emitted.add(cid)
                remote = self._to_remote(raw, attributes, tag_ids)
                if remote is not None:
                    page.append(remote)
                    email = remote.email.lower()
                    known = self._known.get(email)
                    if known is not None and self._held_unconsented(known, owned):
                        unreachable.append((email, known))
            offset += len(raw_contacts)
            count = int(data.get("count") or 0)
            if not raw_contacts and offset < count:  # pages that end before their own count
                raise MalformedAnswer(
                    platform=self.name,
                    endpoint="GET /contacts",
                    status=200,
                    code="paging",
                    message=f"the pages ended at {offset} of count {count}",
                )
            last = not raw_contacts or offset >= count
            next_cursor = None
            if last:  # everything up to the start of the read is read: the mark may move there
                mark = started if high is None else max(high, started)
                next_cursor = encode_cursor(mark, {**seen, **fresh}, overlap)
            if last and unreachable:
                await self._delist(unreachable, owned)
            if page or last:
                yield ReadPage(contacts=page, cursor=next_cursor)
            if last:
                return

    def _to_remote(
        self,
        raw: Mapping[str, Any],
        attributes: Mapping[str, Mapping[str, Any]],
        tag_ids: Mapping[int, str],
    ) -> RemoteContact | None:
        email = raw.get("email")
        if not email or str(email).endswith("@mailin-sms.com"):
            return None  # SMS-only contacts have no (real) email
        values = raw.get("attributes") or {}
        fields: dict[str, Any] = {}
        for name, spec in self.schema.fields.items():
            attribute = self.attribute_name(name)
            entry = self._mapped(name)
            if attribute not in values or (entry is not None and not entry.readable):
                continue
            try:
                value = self._decode(spec, attributes.get(attribute), values[attribute])
                fields[name] = transformed(entry, value)
            except (ValueError, TypeError) as exc:
                log.warning("brevo contact %s: %s not read: %s", raw.get("id"), attribute, exc)
        known = self.known_from(raw, attributes, tag_ids, fields)
        self._remember(str(email).lower(), known)
        updated = parse_time(str(raw["modifiedAt"]))
        consent = self.consent_of(raw, attributes)
        return RemoteContact(
            platform_id=str(raw["id"]),
            email=str(email),
            fields=fields,
            tags=known.tags,
            consent=consent,
            updated_at=updated,
            reachable=reachable_despite(consent, raw),
        )

    def _held_unconsented(self, known: KnownContact, owned: Mapping[int, str]) -> bool:
        """True when a contact without `subscribed` is in a segsync list it may not be in."""
        if known.consent is ConsentStatus.SUBSCRIBED:
            return False
        return any(i in owned and not self.allowed_unconsented(i, owned[i]) for i in known.lists)

    async def _delist(
        self, contacts: list[tuple[str, KnownContact]], owned: Mapping[int, str]
    ) -> None:
        """Take contacts without opt-in out of segsync's lists; tags move to the attribute.

        Contacts in tag lists get one update each (tags attribute set, lists unlinked);
        the others leave each list by membership calls, 150 a call."""
        tags_attribute = self.config.tags_attribute.upper()
        by_list: dict[int, list[str]] = collections.defaultdict(list)
        tag_ids = await self._tag_ids()
        for email, known in contacts:
            leave = sorted(
                i for i in known.lists if i in owned and not self.allowed_unconsented(i, owned[i])
            )
            if any(i in tag_ids for i in leave):
                await self._ensure_tags_attribute(known.tags)
                await self._call(
                    "PUT",
                    f"/contacts/{known.id}",
                    "/contacts/{identifier}",
                    params={"identifierType": "contact_id"},
                    json_body={
                        "attributes": {tags_attribute: sorted(known.tags)},
                        "unlinkListIds": leave,
                    },
                )
                known.attribute_tags = known.tags
            else:
                for list_id in leave:
                    by_list[list_id].append(email)
            known.lists = known.lists - set(leave)
        for list_id, emails in by_list.items():
            await self._membership(list_id, emails, "remove")
        log.info("brevo: %d contact(s) without opt-in taken out of segsync's lists", len(contacts))

    @staticmethod
    def _decode(spec: FieldSpec, attribute: Mapping[str, Any] | None, raw: Any) -> Any:
        if attribute is not None and attribute.get("category") == "category":
            label = category_label(attribute, raw)
            if label is None:
                raise ValueError(f"{raw!r} is not a value of the category")
            return spec.coerce(label)
        if spec.type is FieldType.INTEGER and isinstance(raw, float) and raw.is_integer():
            return int(raw)
        return spec.coerce(raw)


def reachable_despite(consent: Consent, raw: Mapping[str, Any]) -> bool | None:
    """True for an opt-out that leaves the contact un-blocklisted (`listUnsubscribed` on a
    consent list): Brevo campaigns to its other lists still reach them, so the engine
    sends the opt-out, which blocklists them. None otherwise (the status tells it all)."""
    if consent.is_opt_out and not raw.get("emailBlacklisted"):
        return True
    return None


def platform_time(response: httpx.Response) -> dt.datetime | None:
    """The platform's clock from the HTTP `Date` header (None when absent or unreadable)."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def encode_cursor(high: dt.datetime | None, seen: Mapping[str, str], overlap: dt.timedelta) -> str:
    """since + the (id, modifiedAt) pairs inside the overlap window, grouped by stamp."""
    if high is None:
        return "v1:"
    floor = high - overlap
    by_stamp: dict[str, list[str]] = collections.defaultdict(list)
    for cid, stamp in seen.items():
        if parse_time(stamp) >= floor:
            by_stamp[stamp].append(cid)
    payload = {"since": iso_time(high), "seen": {s: sorted(ids) for s, ids in by_stamp.items()}}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return "v1:" + base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str | None) -> tuple[dt.datetime | None, dict[str, str]]:
    if not cursor or cursor == "v1:":
        return None, {}
    if not cursor.startswith("v1:"):
        raise ValueError(f"not a brevo cursor: {cursor[:20]!r}")
    payload = json.loads(base64.urlsafe_b64decode(cursor[3:].encode()))
    seen = {cid: stamp for stamp, ids in payload.get("seen", {}).items() for cid in ids}
    return parse_time(payload["since"]), seen
