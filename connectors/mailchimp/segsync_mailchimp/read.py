"""Reading a Mailchimp audience: members changed since a cursor, as canonical contacts.

Contract (`Connector.read`), as Mailchimp makes it: `GET /lists/{id}/members` 1000 a page,
sorted by `last_changed`, incremental through `since_last_changed` minus an overlap window;
records already seen at the same `last_changed` are skipped (the cursor remembers them), and
archived members come back as deletions. An edit made while a read pages is never lost: the
pages stay below a fixed `before_last_changed` bound, the offset steps back when members
leave the set, and the cursor moves to the read's start, never its end (see `ReadCursor`).
Tag edits may not move `last_changed` (unverified), so every `tag_refresh_seconds` a read
takes every member again, whatever it saw before: ceil(members / 1000) calls. Engagement
comes from the mapping's `engagement` entries (else `ENGAGEMENT_PATHS`), read-only, less what
Mailchimp fabricates for a member never emailed (`segsync_mailchimp.engagement`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from segsync.connector import ReadPage, RemoteContact
from segsync.http import MalformedAnswer
from segsync.mapping import PlatformMapping
from segsync.model import Consent, ConsentStatus
from segsync_mailchimp.api import iso_time, parse_time, path_segment
from segsync_mailchimp.audience import MailchimpAudience
from segsync_mailchimp.engagement import gate_member_engagement
from segsync_mailchimp.fields import (
    ENGAGEMENT_PATHS,
    EVIDENCE_STATUSES,
    OPT_IN_DETAILS,
    STATUS_TO_CONSENT,
    from_merge_value,
    to_merge_value,
)

__all__ = ["BOUND_WAIT_SECONDS", "MailchimpReads", "ReadCursor", "member_consent", "member_pid"]

ID_SCHEME = "contact_id"
"""What a record's platform id is (`member_pid`); read cursors carry it (`ReadCursor.ids`)."""

BOUND_WAIT_SECONDS = 2.0
"""How long a read of more than one page waits before paging below its bound: Mailchimp
stamps `last_changed` to the second, so after two seconds every later change is stamped
above `start + 1 s` whether `before_last_changed` is exclusive or not."""


@dataclasses.dataclass
class ReadCursor:
    """Incremental position: per stream a high-water mark, and what was seen near it.

    A read's start is the platform's `Date` of its first answer (else the injected clock).
    A read of more than one page pages members in `last_changed` order below a fixed bound,
    `start + 1 s`, after waiting `BOUND_WAIT_SECONDS`: a member changed while it pages
    leaves the set (and is read next time) instead of moving the others' offsets. When
    `total_items` drops between two pages the members after the ones that left moved back,
    so the offset steps back as many (the pages overlap; `seen` drops the repeats). The mark
    moves only over what was fully read: while paging, to the newest `last_changed` read;
    once the stream is done, to the read's start or bound (never its end: a read that takes
    longer than the overlap loses nothing). The next read starts at the mark minus the
    overlap. `full` is the start of the last read
    of every member (see `MailchimpConfig.tag_refresh_seconds`). Old cursors (without
    `full`, or a plain timestamp) decode to the same fields. `ids` names the id scheme of
    the records read (`ID_SCHEME`); a cursor of an older one reads every member once, so
    that each record is linked by its alias and moves to its new id.
    """

    members: str | None = None
    archived: str | None = None
    seen: set[str] = dataclasses.field(default_factory=set)  # "hash@last_changed"
    full: str | None = None  # the start of the last full read of the members
    ids: str | None = None  # the id scheme of the records read (None: the subscriber hash)

    def encode(self) -> str:
        data = {"m": self.members, "a": self.archived, "seen": sorted(self.seen), "f": self.full,
                "i": self.ids}
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()

    @classmethod
    def decode(cls, text: str | None) -> ReadCursor:
        if not text:
            return cls()
        try:
            data = json.loads(base64.urlsafe_b64decode(text.encode()))
            return cls(data.get("m"), data.get("a"), set(data.get("seen") or ()), data.get("f"),
                       data.get("i"))
        except (ValueError, TypeError):
            # a plain timestamp is accepted as a cursor too
            return cls(text, text)


def _platform_time(response: httpx.Response) -> dt.datetime | None:
    """The platform's clock from the HTTP `Date` header (None when absent or unreadable)."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def member_pid(record: Mapping[str, Any]) -> str:
    """A member's platform id: Mailchimp's `contact_id`, which stays when the address
    changes (its `id`, the subscriber hash, follows the address; paths take the hash of
    the address). An answer without it is malformed."""
    contact_id = record.get("contact_id")
    if not contact_id:
        raise MalformedAnswer(
            platform="mailchimp", endpoint="GET /lists/{id}/members", status=200,
            code="contact_id", message="a member without its contact_id",
        )
    return str(contact_id)


def _dig(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def member_consent(
    record: Mapping[str, Any], *, source: str, changed: dt.datetime | None = None
) -> Consent:
    """A member's consent with the evidence it rests on, as Mailchimp states it.

    Every status Mailchimp holds is evidence of itself (`status=<status>`): `subscribed`
    (with `timestamp_opt` / `ip_opt` where present, and dated by `timestamp_opt`), `pending`,
    `unsubscribed`, `cleaned` (bounced) and `transactional` (an explicit "never opted in").
    A missing or unknown status is non-subscribed without evidence; `archived` is a deletion.
    """
    status = str(record.get("status") or "")
    if status not in EVIDENCE_STATUSES:
        return Consent(status=ConsentStatus.NON_SUBSCRIBED, updated_at=changed, source=source)
    parts = [f"status={status}"]
    when = changed
    if status == "subscribed":
        parts += [f"{key}={record[key]}" for key in OPT_IN_DETAILS if record.get(key)]
        # an unreadable opt-in time keeps the member's last change as the date
        with contextlib.suppress(ValueError):
            when = parse_time(str(record["timestamp_opt"])) if record.get("timestamp_opt") else when
    return Consent(
        status=STATUS_TO_CONSENT[status],
        updated_at=when,
        source=source,
        evidence="; ".join(parts),
    )


class MailchimpReads(MailchimpAudience):
    """`read`: members changed since a cursor; see the module docstring."""

    def normalise_field(self, name: str, value: Any) -> Any:
        """`value` as Mailchimp holds it once written: a merge field through this connector's
        own encoding and decoding ("" as unset), a group as its chosen interests (none:
        unset)."""
        value = super().normalise_field(name, value)
        place = self._places().get(name)
        if place is None or value is None or place.group or place.entry is not None:
            return value
        if place.merge_tag is None:
            return value
        return from_merge_value(place.spec, to_merge_value(place.spec, value))

    def _engagement(self, record: Mapping[str, Any]) -> dict[str, Any]:
        mapping = self.mapping if isinstance(self.mapping, PlatformMapping) else None
        if mapping is not None and mapping.engagement:
            found = mapping.engagement_from_platform(record)
        else:
            found = {name: _dig(record, path) for name, path in ENGAGEMENT_PATHS.items()}
        return gate_member_engagement(record, found)

    def _to_remote(self, record: Mapping[str, Any], tags: Iterable[str]) -> RemoteContact:
        cat = self._catalog
        merge = record.get("merge_fields") or {}
        fields: dict[str, Any] = {}
        mapped: set[str] = set()
        for name, place in self._places().items():
            if place.group:
                ids = cat.interests.get(name, {})
                held = record.get("interests") or {}
                chosen = frozenset(n for n, iid in ids.items() if held.get(iid))
                if chosen:  # no group chosen reads as unset, as an empty set is written
                    fields[name] = chosen
            elif place.entry is not None:
                mapped.add(name)
            elif place.merge_tag in merge:
                fields[name] = from_merge_value(place.spec, merge[place.merge_tag])
        if isinstance(self.mapping, PlatformMapping):
            # read-only schema fields the mapping reads (location, birthday MM/DD, ip_opt)
            mapped |= {
                name
                for name, spec in self.schema.fields.items()
                if spec.read_only and name in self.mapping.fields
            }
        if mapped and isinstance(self.mapping, PlatformMapping):
            read = self.mapping.from_platform(record)
            fields.update({k: v for k, v in read.items() if k in mapped})
        for name, field_id in self.config.marketing_permissions.items():
            for perm in record.get("marketing_permissions") or []:
                if perm.get("marketing_permission_id") == field_id:
                    fields[name] = bool(perm.get("enabled"))
        engagement = self._engagement(record)
        status = str(record.get("status") or "")
        changed = parse_time(record["last_changed"]) if record.get("last_changed") else None
        consent = member_consent(record, source=self.name, changed=changed)
        return RemoteContact(
            platform_id=member_pid(record),
            aliases=frozenset({str(record["id"])}),  # its id before contact ids: the hash
            email=str(record["email_address"]),
            fields=fields,
            tags=frozenset(tags),
            consent=consent,
            engagement=engagement,
            updated_at=changed,
            deleted=status == "archived",
        )

    async def _all_tags(self, record: Mapping[str, Any]) -> list[str]:
        tags = [t["name"] for t in record.get("tags") or []]
        if int(record.get("tags_count") or 0) > len(tags):
            listed = await self._paged(
                f"/members/{path_segment(record['id'])}/tags",
                "tags",
                "GET /lists/{id}/members/{hash}/tags",
            )
            tags = [t["name"] for t in listed]
        return tags

    def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Stream members changed since `cursor` (all when None), 1000 a page, de-duplicated."""
        return self._read(cursor)

    async def _read(self, cursor: str | None) -> AsyncIterator[ReadPage]:
        await self._load_catalog()
        state = ReadCursor.decode(cursor)
        overlap = dt.timedelta(seconds=self.config.overlap_seconds)
        refresh = dt.timedelta(seconds=self.config.tag_refresh_seconds)
        for stream in ("members", "archived"):
            mark: str | None = getattr(state, stream)
            full = mark is None
            if stream == "members" and mark is not None and refresh:
                # tag edits may leave last_changed alone: read everything now and then
                last_full = parse_time(state.full or mark)
                full = self.clock.now() - last_full >= refresh
            if stream == "members" and state.ids != ID_SCHEME:
                full = True  # records known by an older id: each is read (and relinked) once
            async for page in self._read_stream(stream, state, mark, overlap, full=full):
                yield page
            state.ids = ID_SCHEME  # every member read: the archived stream's pages say so

    async def _read_stream(
        self,
        stream: str,
        state: ReadCursor,
        mark: str | None,
        overlap: dt.timedelta,
        *,
        full: bool,
    ) -> AsyncIterator[ReadPage]:
        """One stream (`members` or `archived`) read consistently: see `ReadCursor`.

        `full` reads the whole stream, including what the previous read saw (a member whose
        tags changed is the same `id@last_changed`); otherwise from `mark` minus `overlap`.
        """
        params: dict[str, Any] = {
            "count": self.capabilities.read_page_size,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "exclude_fields": "members._links,_links",
        }
        if stream == "archived":
            params["status"] = "archived"
        if mark and not full:
            params["since_last_changed"] = iso_time(parse_time(mark) - overlap)
        read_here: set[str] = set()  # what this read gave (its pages may overlap)
        skip = read_here if full else state.seen
        offset = 0
        total: int | None = None
        start: dt.datetime | None = None  # the platform's time at the first answer
        bound: dt.datetime | None = None  # set when a second page is needed: see ReadCursor
        newest: dt.datetime | None = None
        while True:
            if bound is not None:
                params["before_last_changed"] = iso_time(bound)
            asked = self.clock.now()  # replaced by the platform's own time when it tells it
            response = await self.client.request(
                "GET",
                self._list_path + "/members",
                endpoint="GET /lists/{id}/members",
                params={**params, "offset": offset},
            )
            if start is None:
                start = (_platform_time(response) or asked).replace(microsecond=0)
            page = response.json()
            records = page.get("members") or []
            now_total = int(page.get("total_items", 0))
            if bound is not None and total is not None and now_total < total:
                # members left the set while it was paged (changed after the bound, archived,
                # deleted): those before `offset` moved the unread ones back; read them again
                offset = max(0, offset - (total - now_total))
                total = now_total
                continue
            total = now_total
            offset += len(records)
            fresh = [r for r in records if f"{r['id']}@{r['last_changed']}" not in skip]
            tag_lists = await asyncio.gather(*(self._all_tags(r) for r in fresh))
            contacts: list[RemoteContact] = []
            for record, tags in zip(fresh, tag_lists, strict=True):
                contacts.append(self._to_remote(record, tags))
                self._remember(record, tags)
                changed = parse_time(record["last_changed"])
                newest = changed if newest is None or changed > newest else newest
                key = f"{record['id']}@{record['last_changed']}"
                state.seen.add(key)
                read_here.add(key)
            if not records and offset < total:  # pages that end before their own total
                raise MalformedAnswer(
                    platform=self.name,
                    endpoint="GET /lists/{id}/members",
                    status=200,
                    code="paging",
                    message=f"the pages ended at {offset} of total_items {total}",
                )
            done = not records or offset >= total
            if not done and bound is None:
                # more than one page: once the platform's clock is past `start` + 1 s, page
                # again from the first member below that bound (the first page's members
                # are skipped as seen); what anyone changes from then on stays above it
                await self.clock.sleep(BOUND_WAIT_SECONDS)
                bound = start + dt.timedelta(seconds=1)
                offset, total = 0, None
            # the mark moves only over what was fully read: while paging, to the newest
            # member read (every member before it was read); once done, to the read's start
            limit = bound or start
            previous = parse_time(mark) if mark else None
            if done:
                setattr(state, stream, iso_time(limit))
                if full and stream == "members":
                    state.full = iso_time(limit)
            elif newest is not None and (previous is None or min(newest, limit) > previous):
                setattr(state, stream, iso_time(min(newest, limit)))
            if getattr(state, stream):
                floor = parse_time(getattr(state, stream)) - overlap
                state.seen = {s for s in state.seen if parse_time(s.split("@", 1)[1]) >= floor}
            if contacts or records or done:
                yield ReadPage(contacts=contacts, cursor=state.encode())
            if done:
                return
