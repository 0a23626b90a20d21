"""Reading Brevo contacts changed since a cursor, as canonical contacts.

Contract (`Connector.read`), as Brevo makes it: `GET /contacts` 1000 a page, oldest created
first, incremental on `modifiedSince` minus an overlap window, de-duplicated through the
cursor, which keeps the (id, modifiedAt) pairs inside the window. An edit made while a read
pages is never lost: Brevo has no upper bound on `modifiedAt`, but creation order keeps an
edited contact in its place (new ones come last), each page after the first starts at the
previous page's last contact and steps back while that anchor is not there (contacts before
it were deleted), and a completed read moves the mark to its start (the platform's `Date`
header, else the injected clock), never its end, so what changed while it paged is re-read.
SMS-only contacts are skipped. A value Brevo cannot hold (its attribute is missing from the
account: deleted by an admin, or never created; the attributes are read afresh each read)
is not read (`RemoteContact.unread`), never read as cleared; the tags attribute missing
makes `tags` unread. Consent is evidence (`consent_of`):
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

from segsync.connector import ReadPage, RemoteContact, unset_if_empty
from segsync.http import MalformedAnswer
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType
from segsync_brevo.account import KnownContact
from segsync_brevo.fields import category_label, iso_time, parse_time, transformed
from segsync_brevo.segments import BrevoSegments

__all__ = ["BrevoReads", "decode_cursor", "encode_cursor", "platform_time", "reachable_despite"]

log = logging.getLogger("segsync.brevo")


class BrevoReads(BrevoSegments):
    """`read`: contacts page by page, mapped to canonical names and types (a connector part)."""

    def normalise_field(self, name: str, value: Any) -> Any:
        """`value` as Brevo holds it once written: with the mapping's text transforms (trim,
        case) this connector applies on write, blank text and empty sets unset."""
        value = super().normalise_field(name, value)
        if value is None:
            return None
        return unset_if_empty(transformed(self._mapped(name), value))

    def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Contacts modified since the cursor, oldest-created first, page by page."""
        return self._read(cursor)

    async def _read(self, cursor: str | None) -> AsyncIterator[ReadPage]:
        since, seen = decode_cursor(cursor)
        overlap = dt.timedelta(seconds=self.config.read_overlap_seconds)
        # afresh each read: an admin may have deleted one (its values are then not read);
        # one read in the last seconds (`check`, or the pull before a re-check) is afresh
        attributes = await self._load_attributes(refresh_after=self.ATTRIBUTES_FRESH_SECONDS)
        tag_ids = await self._tag_ids()
        owned = await self._segsync_lists()  # never a list a person made (segments.py)
        unreachable: list[tuple[str, KnownContact]] = []
        params: dict[str, Any] = {"limit": self.capabilities.read_page_size, "sort": "asc"}
        if since is not None:
            params["modifiedSince"] = iso_time(since - overlap)
        emitted: set[str] = set()
        read_here: set[str] = set()  # every id this read was served (emitted or skipped)
        fresh: dict[str, str] = {}
        ask, back = 0, 1
        started: dt.datetime | None = None
        while True:
            asked = self.clock.now()  # replaced by the platform's own time when it tells it
            response = await self._call(
                "GET", "/contacts", "/contacts", params={**params, "offset": ask}
            )
            if started is None:
                started = (platform_time(response) or asked).replace(microsecond=0)
            data = response.json()
            raw_contacts = data.get("contacts") or []
            count = int(data.get("count") or 0)
            if ask > 0 and (
                (raw_contacts and str(raw_contacts[0]["id"]) not in read_here)
                or (not raw_contacts and count <= ask)
            ):
                # the page no longer starts at a contact already read: contacts before it
                # were deleted and moved unread ones back; step back until one anchors it
                ask, back = max(0, ask - back), back * 2
                continue
            back = 1
            page: list[RemoteContact] = []
            for raw in raw_contacts:
                cid, stamp = str(raw["id"]), str(raw["modifiedAt"])
                read_here.add(cid)
                if parse_time(stamp) >= started - overlap:  # may go into the next cursor
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
            end = ask + len(raw_contacts)
            limit = self.capabilities.read_page_size
            if len(raw_contacts) < limit and end < count:  # pages that end before their count
                raise MalformedAnswer(
                    platform=self.name,
                    endpoint="GET /contacts",
                    status=200,
                    code="paging",
                    message=f"the pages ended at {end} of count {count}",
                )
            last = not raw_contacts or end >= count
            # the next page starts at this page's last contact, which anchors it
            ask = end - 1
            next_cursor = None
            if last:  # everything changed before the read's start is read: the mark goes there
                next_cursor = encode_cursor(started, {**seen, **fresh}, overlap)
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
        # a value Brevo cannot hold (its attribute is missing: deleted by an admin, or never
        # created) is not read: unknown, never cleared (`prepare` re-creates the attribute)
        unread = {
            name for name in self.schema.fields
            if self.attribute_name(name) not in attributes
        }
        if self.config.tags_attribute.upper() not in attributes:
            unread.add("tags")  # the tags that lived in the attribute went with it
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
            unread=frozenset(unread),
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
    """True for every contact that is not blocklisted: Brevo campaigns reach it, whatever
    its consent reads (an opt-out read from a `listUnsubscribed`, or one segsync wrote and an
    admin lifted, reads as no opt-out), so the engine sends a canonical opt-out there, which
    blocklists it. None for a blocklisted contact (the status tells it all). The engine uses
    it only for a person whose canonical consent is an opt-out: nobody else is written."""
    del consent  # reachability is the blocklist's alone
    if not raw.get("emailBlacklisted"):
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
