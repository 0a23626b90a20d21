"""Reading HubSpot contacts changed since a cursor, as canonical contacts.

Contract (`Connector.read`), as HubSpot makes it: CRM search on `lastmodifieddate`, 200 a
page, in time windows that are split in two while a window holds more than the 10,000 results
search can page through, so no change is dropped. An edit made while a read pages is never
lost: each page after the first starts at the previous page's last record and steps back while
that anchor is not there (records before it were archived or left a bounded window), and the
cursor moves at most to the read's start, so what changed while it paged is read next time.
Incremental reads start `read_overlap_seconds` before the cursor (search is eventually
consistent), and the cursor remembers the records read near it, so each change is read once.
Tags come from the tag checkbox property (option values mapped back to the labels first
written) or from the tag lists; consent as `HubSpotAccount` reads it, the subscription
statuses in whole calls of 100 across pages (a finished window sends the rest); engagement
from HubSpot's read-only email properties, once HubSpot has emailed the contact
(`segsync_hubspot.engagement`).

Search lags writes (its index is eventually consistent), so an edit made seconds before a
search is not in its answer. `read_by_id` reads given records directly (batch read by id),
which the re-check before writing uses for the records a plan writes
(`HubSpotConnector.listing_lags`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

from segsync.connector import EngagementPage, ReadPage, RemoteContact
from segsync.http import MalformedAnswer
from segsync_hubspot.account import log, parse_time
from segsync_hubspot.engagement import (
    ENGAGEMENT_READ_PROPERTIES,
    contact_engagement,
    read_engagement_pages,
)
from segsync_hubspot.fields import ENGAGEMENT_TARGETS, decode_value, encode_value
from segsync_hubspot.limits import BATCH_INPUTS, SEARCH_CAP
from segsync_hubspot.segments import HubSpotSegments

__all__ = ["HubSpotReads"]


def _ms(when: dt.datetime) -> int:
    return round(when.timestamp() * 1000)


def _encode_cursor(mark: int, recent: Mapping[str, int]) -> str:
    """`<ms>` or `<ms>;<id>:<ms>,...`: the high-water mark and the records read near it."""
    if not recent:
        return str(mark)
    return f"{mark};" + ",".join(f"{k}:{v}" for k, v in sorted(recent.items()))


def _decode_cursor(cursor: str | None) -> tuple[int, dict[str, int]]:
    if not cursor:
        return 0, {}
    head, _, tail = cursor.partition(";")
    recent = {}
    for item in filter(None, tail.split(",")):
        key, _, value = item.partition(":")
        recent[key] = int(value)
    return int(head), recent


class HubSpotReads(HubSpotSegments):
    """`read`: windowed searches on `lastmodifieddate`; see the module docstring."""

    #: results one search query pages through (HubSpot: 10,000; a 400 beyond)
    search_cap: ClassVar[int] = SEARCH_CAP

    def normalise_field(self, name: str, value: Any) -> Any:
        """`value` as HubSpot holds it once written: through this connector's own encoding
        and decoding (case transforms such as `country` in upper case, date precision,
        numbers, `;`-joined multi-selects, "" as unset)."""
        value = super().normalise_field(name, value)
        found = self._targets().get(name)
        if found is None or value is None:
            return value
        target, spec = found
        return decode_value(target, spec, encode_value(target, spec, value))

    def _read_properties(self) -> list[str]:
        names = {
            "email",
            "lastmodifieddate",
            "hs_object_id",
            "hs_email_optout",
            "hs_email_bad_address",
        }
        names |= {t.name for t, _ in self._targets().values()}
        names |= {t.name for t in ENGAGEMENT_TARGETS.values()}
        names |= set(ENGAGEMENT_READ_PROPERTIES)
        if self.cfg.tags_as == "property":
            names.add(self.cfg.tags_property)
        if self._subscription is not None:
            names.add(f"hs_email_optout_{self._subscription}")
        return sorted(names)

    def _search_body(
        self, low: int, high: int | None, after: int, limit: int | None = None
    ) -> dict[str, Any]:
        filters = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)}]
        if high is not None:
            filters.append(
                {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(high)}
            )
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [],
            "properties": self._read_properties(),
            "limit": limit or self.capabilities.read_page_size,
            "after": str(after),
        }

    async def _search(
        self, low: int, high: int | None, after: int, *, limit: int | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "POST",
            f"{self.paths['contacts']}/search",
            "POST contacts/search",
            json=self._search_body(low, high, after, limit),
            scope="search",
            idempotent=True,
        )
        return result

    async def read_engagement(self, cursor: str | None) -> AsyncIterator[EngagementPage]:
        """Contacts emailed, opening or clicking since `cursor` (every emailed contact when
        None); see `segsync_hubspot.engagement`."""

        async def search(body: dict[str, Any]) -> dict[str, Any]:
            answer: dict[str, Any] = await self._json(
                "POST",
                f"{self.paths['contacts']}/search",
                "POST contacts/search",
                json=body,
                scope="search",
                idempotent=True,
            )
            return answer

        overlap = int(self.cfg.read_overlap_seconds * 1000)
        async for page in read_engagement_pages(
            search, cursor, self.clock.now(), self.capabilities.read_page_size, overlap
        ):
            yield page

    async def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Contacts modified since `cursor` (all when None), window by window; see the module."""
        await self._subscription_id()  # the hs_email_optout_<id> property read with each page
        if self.cfg.tags_as == "lists":
            await self._load_tag_lists()
        else:  # the option labels: HubSpot stores option values in lower case
            await self._load_properties()
        mark, already = _decode_cursor(cursor)
        overlap = int(self.cfg.read_overlap_seconds * 1000)
        low = max(0, mark - overlap) if cursor else 0
        started = _ms(self.clock.now())
        windows: list[tuple[int, int | None]] = [(low, None)]
        seen: set[str] = set()
        stamps: dict[str, int] = {}
        held: list[Mapping[str, Any]] = []  # records read, waiting to fill a status read
        tag_members = await self._tag_memberships() if self.cfg.tags_as == "lists" else {}
        while windows:
            lo, hi = windows.pop(0)
            page = await self._search(lo, hi, 0)
            total = int(page.get("total") or 0)
            if total > self.search_cap:
                top = hi if hi is not None else max(started, lo) + 1
                earliest = min(
                    (
                        _ms(t)
                        for r in page.get("results") or []
                        if (t := parse_time((r.get("properties") or {}).get("lastmodifieddate")))
                    ),
                    default=lo,
                )
                if lo < earliest < top and not int(
                    (await self._search(lo, earliest, 0, limit=1)).get("total") or 0
                ):
                    lo = earliest  # nothing changed before the page's oldest: start there
                if top - lo > 1:
                    middle = lo + (top - lo) // 2
                    windows[0:0] = [(lo, middle), (middle, hi)]
                    continue
                log.warning(
                    "hubspot: over %d contacts changed in one millisecond (%d); "
                    "the rest is read on a later run",
                    self.search_cap,
                    lo,
                )
            in_window: set[str] = set()  # every id this window was served
            least = total  # the window's smallest total: the index may add records as it pages
            after, back = 0, 1
            while True:
                results = page.get("results") or []
                if after > 0 and results and str(results[0]["id"]) not in in_window:
                    # the page no longer starts at a record already read: records before it
                    # left the set (archived, or edited out of a bounded window) and moved
                    # unread ones back; step back until a record read anchors it
                    after, back = max(0, after - back), back * 2
                    page = await self._search(lo, hi, after, limit=self._limit(after))
                    continue
                back = 1
                total = int(page.get("total") or 0)
                least = min(least, total)
                fresh = []
                for record in results:
                    stamp = parse_time((record.get("properties") or {}).get("lastmodifieddate"))
                    ms = _ms(stamp) if stamp is not None else 0
                    in_window.add(str(record["id"]))
                    if record["id"] in seen or already.get(str(record["id"])) == ms:
                        continue  # read in this run, or in the overlap of the last one
                    seen.add(record["id"])
                    stamps[str(record["id"])] = ms
                    mark = max(mark, ms)
                    fresh.append(record)
                held += fresh
                nxt = (page.get("paging") or {}).get("next", {}).get("after")
                if nxt is not None and int(nxt) <= after:  # a cursor that repeats: pages never end
                    raise MalformedAnswer(
                        platform=self.name,
                        endpoint="POST contacts/search",
                        status=200,
                        code="paging",
                        message=f"the next-page cursor {nxt!r} does not advance past {after}",
                    )
                end = after + len(results)
                last = nxt is None or end >= self.search_cap
                if nxt is None and hi is None and len(in_window) < least <= self.search_cap:
                    raise MalformedAnswer(  # pages that end before their own total
                        platform=self.name,
                        endpoint="POST contacts/search",
                        status=200,
                        code="paging",
                        message=f"the pages ended after {len(in_window)} of total {least}",
                    )
                # a finished window is a safe resume point: later windows start after it; the
                # mark never passes the read's start, so changes made during it are re-read
                resume = None
                if last:
                    point = min(mark, started)
                    recent = {
                        k: v for k, v in {**already, **stamps}.items() if v >= point - overlap
                    }
                    resume = _encode_cursor(point, recent)
                # statuses are read 100 a call: what does not fill a call waits for the next
                # page, and a finished window (the only resume point) sends everything
                ready, held = (held, []) if last else self._status_batches(held)
                yield ReadPage(await self._to_remote(ready, tag_members), resume)
                if last:
                    break
                after = end - 1  # the next page starts at this one's last record: its anchor
                page = await self._search(lo, hi, after, limit=self._limit(after))

    async def read_by_id(self, platform_ids: Sequence[str]) -> list[RemoteContact]:
        """The contacts `platform_ids` as HubSpot holds them now: `POST contacts/batch/read`
        by id (`archived=false`, 100 a call, side by side within the pacing), which reads the
        records themselves, not the search index that lags writes; the search read's
        properties and conversion (statuses 100 a call; with `tags_as: lists`, the tag lists'
        memberships, as `read` reads them). An id HubSpot names missing (archived or deleted,
        `OBJECT_NOT_FOUND`), or that is no HubSpot id, comes back `deleted` with no email; a
        merged record answers an old id under its own."""
        await self._subscription_id()  # the hs_email_optout_<id> property read with each record
        if self.cfg.tags_as == "lists":
            await self._load_tag_lists()
        else:  # the option labels: HubSpot stores option values in lower case
            await self._load_properties()
        asked = sorted(set(platform_ids))
        ids = [pid for pid in asked if pid.isdigit()]
        gone = {pid for pid in asked if not pid.isdigit()}
        records: list[Mapping[str, Any]] = []
        properties = self._read_properties()

        async def one(chunk: Sequence[str]) -> None:
            response = await self.client.request(
                "POST", f"{self.paths['contacts']}/batch/read",
                endpoint="POST contacts/batch/read",
                json={"inputs": [{"id": i} for i in chunk], "properties": properties,
                      "propertiesWithHistory": []},
                params={"archived": "false"}, idempotent=True, ok=(207, 404),
            )
            body = response.json() if response.content else {}
            found = [r for r in body.get("results") or [] if not r.get("archived")]
            records.extend(found)
            answered = {str(r.get("id")) for r in found}
            if response.status_code == 404 and body.get("category") == "OBJECT_NOT_FOUND":
                gone.update(i for i in chunk if i not in answered)  # none of them is held
            for error in body.get("errors") or []:  # only the ids HubSpot names as missing
                if error.get("category") == "OBJECT_NOT_FOUND":
                    named = (error.get("context") or {}).get("ids") or ()
                    gone.update(str(i) for i in named if str(i) in chunk and str(i) not in answered)

        await asyncio.gather(*(one(ids[k : k + BATCH_INPUTS])
                               for k in range(0, len(ids), BATCH_INPUTS)))
        tag_members = await self._tag_memberships() if self.cfg.tags_as == "lists" else {}
        out = await self._to_remote(records, tag_members)
        out += [RemoteContact(platform_id=pid, email="", deleted=True) for pid in sorted(gone)]
        return out

    def _limit(self, after: int) -> int:
        """A page's size: `read_page_size`, less near the search cap."""
        return max(1, min(self.capabilities.read_page_size, self.search_cap - after))

    def _needs_status(self, record: Mapping[str, Any]) -> bool:
        """Whether a record's subscription status is read: every record with an address
        while the batch reads are available. An opt-out in its properties already decides
        its status, but the status read still gives that opt-out its time (and is the only
        opt-in evidence for the others), which the ledger shows."""
        return bool((record.get("properties") or {}).get("email")) and self._batch_consent

    def _status_batches(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        """(records ready now, records held): those needing a status read go in whole
        calls of 100; the rest wait for the next page."""
        needing = [r for r in records if self._needs_status(r)]
        keep = len(needing) % BATCH_INPUTS
        held_ids = {id(r) for r in needing[len(needing) - keep:]} if keep else set()
        ready = [r for r in records if id(r) not in held_ids]
        return ready, [r for r in records if id(r) in held_ids]

    async def _to_remote(
        self, results: Sequence[Mapping[str, Any]], tag_members: Mapping[str, set[str]]
    ) -> list[RemoteContact]:
        statuses = await self._statuses(
            [r["properties"]["email"] for r in results if self._needs_status(r)]
        )
        out = []
        for record in results:
            props = record.get("properties") or {}
            email = props.get("email")
            if not email:
                continue
            fields = {}
            for name, (target, spec) in self._targets().items():
                if name == "email":
                    continue
                fields[name] = decode_value(target, spec, props.get(target.name))
            engagement = contact_engagement(props)
            if self.cfg.tags_as == "property":
                raw = props.get(self.cfg.tags_property) or ""
                tags = frozenset(self._tag_labels.get(v, v) for v in raw.split(";") if v)
            else:
                tags = frozenset(tag_members.get(record["id"], set()))
            out.append(
                RemoteContact(
                    platform_id=str(record["id"]),
                    email=email,
                    fields=fields,
                    tags=tags,
                    consent=self._consent(props, statuses.get(email.lower())),
                    engagement=engagement,
                    updated_at=parse_time(props.get("lastmodifieddate")),
                )
            )
        return out
