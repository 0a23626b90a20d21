"""Mailchimp read cursors: they advance to the start of a completed read, minus the overlap."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import ReadPage

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
BULK = 1200  # more than one page of 1000


class ListReads(httpx.AsyncBaseTransport):
    """Counts `GET .../members` list requests (active stream); optionally adds a `Date` header."""

    def __init__(self, inner: httpx.AsyncBaseTransport, date_from: VirtualClock | None) -> None:
        self.inner = inner
        self.date_from = date_from
        self.pages = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if (
            request.method == "GET"
            and path.endswith("/members")
            and "status" not in request.url.params
        ):
            self.pages += 1
        response = await self.inner.handle_async_request(request)
        if self.date_from is not None:
            response.headers["date"] = email.utils.format_datetime(
                self.date_from.now(), usegmt=True
            )
        return response


World = tuple[MailchimpEmulator, MailchimpConnector, ListReads, VirtualClock]


def run(body: Callable[[World], Awaitable[None]], *, platform_behind: float | None = None) -> None:
    """Run `body` against a fresh emulator; with `platform_behind`, the platform's clock (and
    its `Date` header) runs that many seconds behind the connector's."""
    clock = VirtualClock()
    platform_clock = clock
    if platform_behind is not None:
        platform_clock = VirtualClock(start=clock.now() - dt.timedelta(seconds=platform_behind))
    emulator = MailchimpEmulator(clock=platform_clock)
    counter = ListReads(
        emulator.transport(), platform_clock if platform_behind is not None else None
    )
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST}, transport=counter, clock=clock
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, counter, clock))

    asyncio.run(main())


async def read_all(connector: MailchimpConnector, cursor: str | None) -> tuple[list[str], str]:
    """Emails read from `cursor` and the last cursor given (the input one when none)."""
    pages: list[ReadPage] = [p async for p in connector.read(cursor)]
    emails = [c.email for p in pages for c in p.contacts]
    last = next((p.cursor for p in reversed(pages) if p.cursor), cursor)
    assert last is not None
    return emails, last


def seed(emulator: MailchimpEmulator, count: int) -> None:
    for i in range(count):
        emulator.seed_member(f"bulk{i:05d}@segsync.dev", merge_fields={"FNAME": f"B{i}"})


def test_read_an_hour_after_a_bulk_write_rereads_nothing_next_time() -> None:
    """After a sync that read the bulk write, the next read is one (empty) page."""

    async def body(world: World) -> None:
        emulator, connector, counter, clock = world
        seed(emulator, BULK)
        clock.advance(3600)
        first, cursor = await read_all(connector, None)
        clock.advance(3600)
        counter.pages = 0
        again, _ = await read_all(connector, cursor)

        assert len(first) == BULK
        assert again == []
        assert counter.pages <= 1, f"re-read {counter.pages} pages of the old bulk write"

    run(body)


def test_syncs_right_after_a_bulk_write_stop_rereading_it() -> None:
    """A read inside the overlap re-reads the bulk write once (de-duplicated), then never."""

    async def body(world: World) -> None:
        emulator, connector, counter, clock = world
        seed(emulator, BULK)
        clock.advance(5)  # the first sync follows the bulk write within the overlap
        first, cursor = await read_all(connector, None)
        clock.advance(3600)
        second, cursor = await read_all(connector, cursor)
        clock.advance(3600)
        counter.pages = 0
        third, _ = await read_all(connector, cursor)

        assert len(first) == BULK
        assert second == []
        assert third == []
        assert counter.pages <= 1, f"the third read re-read {counter.pages} pages"

    run(body)


def test_a_change_after_the_read_started_is_read_next_time() -> None:
    """A member changed while a read runs (after the pages it would have been on) comes in
    the next read."""

    async def body(world: World) -> None:
        emulator, connector, _, clock = world
        seed(emulator, BULK)
        clock.advance(3600)
        cursor: str | None = None
        first: list[str] = []
        async for page in connector.read(None):
            cursor = page.cursor or cursor
            first += [c.email for c in page.contacts]
            if len(first) == BULK:  # the active members are all read; archived ones follow
                clock.advance(1)
                emulator.get_member("bulk00007@segsync.dev").merge_fields["FNAME"] = "Late"  # type: ignore[union-attr]
                emulator.get_member("bulk00007@segsync.dev").last_changed = clock.now()  # type: ignore[union-attr]
        clock.advance(3600)
        again, _ = await read_all(connector, cursor)

        assert first.count("bulk00007@segsync.dev") == 1
        assert again == ["bulk00007@segsync.dev"]

    run(body)


def test_a_late_commit_inside_the_overlap_is_read_next_time() -> None:
    """A member that appears after a read, stamped before its start, is read next time."""

    async def body(world: World) -> None:
        emulator, connector, _, clock = world
        seed(emulator, 3)
        clock.advance(3600)
        started = clock.now()
        _, cursor = await read_all(connector, None)
        emulator.seed_member("skewed@segsync.dev", last_changed=started - dt.timedelta(seconds=120))
        clock.advance(3600)
        again, cursor = await read_all(connector, cursor)
        clock.advance(3600)
        after, _ = await read_all(connector, cursor)

        assert again == ["skewed@segsync.dev"]
        assert after == []

    run(body)


def test_the_platform_date_header_anchors_the_cursor() -> None:
    """With the platform's clock behind the connector's, its `Date` sets the mark, so a
    member it stamps right after the read is still read."""

    async def body(world: World) -> None:
        emulator, connector, _, clock = world
        seed(emulator, 3)
        _, cursor = await read_all(connector, None)
        platform = emulator.clock
        assert isinstance(platform, VirtualClock)
        platform.advance(30)
        clock.advance(30)
        emulator.seed_member("after@segsync.dev")
        again, _ = await read_all(connector, cursor)

        assert again == ["after@segsync.dev"]

    run(body, platform_behind=3 * 3600)


def _old_cursor(mark: dt.datetime, seen: list[str]) -> str:
    """A cursor as the earlier connector wrote it (newest `last_changed` per stream)."""
    stamp = mark.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    data: dict[str, Any] = {"m": stamp, "a": stamp, "seen": sorted(seen)}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def test_old_format_cursors_still_load_and_advance() -> None:
    """An old cursor (and a plain timestamp) loads; being of the subscriber-hash ids, its
    first read takes every member once (each record is relinked by its alias), then the
    cursor advances as ever."""

    async def body(world: World) -> None:
        emulator, connector, counter, clock = world
        old = emulator.seed_member("old@segsync.dev")
        clock.advance(60)
        emulator.seed_member("new@segsync.dev")
        stamp = old.last_changed.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        cursor = _old_cursor(old.last_changed, [f"{old.id}@{stamp}"])
        from_old, advanced = await read_all(connector, cursor)
        from_plain, _ = await read_all(connector, stamp)
        clock.advance(3600)
        counter.pages = 0
        after, _ = await read_all(connector, advanced)

        assert sorted(from_old) == ["new@segsync.dev", "old@segsync.dev"]
        assert sorted(from_plain) == ["new@segsync.dev", "old@segsync.dev"]
        assert after == []
        assert counter.pages <= 1

    run(body)
